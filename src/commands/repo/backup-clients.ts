// `pgmam repo backup-clients [<stanza>…] [--all] [--type T]`, on a repository host: backups of the apps
// that other hosts registered in this host's repository (repo attach of a --tls-host repository there),
// through their hosts' pgBackRest servers — pgBackRest 2.45 backs up only where the repository is local.
// This host's retention applies (rule 4: expire runs here, for every backup in the repository).
import { z } from 'zod';
import { retentionOf, type Config } from '../../config/schema.js';
import type { Context } from '../../context.js';
import { UsageError } from '../../errors.js';
import { runsAsRoot } from '../../guards/host.js';
import { postgresOwner, readMainConfig, repoPathFrom } from '../../host/facts.js';
import { flag, type CliBatch } from '../../plan/cli-spec.js';
import { checkGuards } from '../../plan/executor.js';
import { runBatch, runFlagsSchema, type CommandModule, type PlanBody, type PlanEnv } from '../../plan/command.js';
import { fail, pass, required, type Guard, type Step } from '../../plan/types.js';
import { backupsIn, parseInfo, archiveMax, type BackupInfo, type StanzaInfo } from '../../pgbackrest/info.js';
import { renderClientConfig } from '../../pgbackrest/server.js';
import type { Cmd } from '../../runner/types.js';
import { renderArgv } from '../../runner/types.js';
import { clientConfigPath, CLIENTS_DIR, detachedSchema, readServe, registrationPath, registrationSchema, type Detached, serveCaPath, serveCertPath, serveDir, serveKeyPath, type Registration, type ServeRecord } from '../../state/serve.js';

type BackupType = 'full' | 'diff' | 'incr';

/** pgBackRest on this host's local repository alone, as postgres (no configuration file read). */
const localRepoCmd = (repoPath: string, args: string[], effect: Cmd['effect'] = 'read'): Cmd => ({
  argv: ['pgbackrest', '--config=/dev/null', '--log-level-console=warn', '--log-level-file=off', `--repo1-path=${repoPath}`, ...args],
  asUser: 'postgres',
  effect,
});

export const servedBackupOptionsSchema = runFlagsSchema.extend({ stanza: z.string(), type: z.enum(['full', 'diff', 'incr', 'auto']) });
export type ServedBackupOptions = z.infer<typeof servedBackupOptionsSchema>;

export type ServedDecision = { action: 'backup'; type: BackupType; why: string } | { action: 'skip'; why: string };

export interface ServedBackupFacts {
  uid: number;
  now: Date;
  serve: ServeRecord | undefined;
  repoPath: string;
  registration: Registration | undefined;
  /** Why the registration could not be read. */
  problem: string | undefined;
  stanza: StanzaInfo | undefined;
  postgresGid: number | undefined;
  decision: ServedDecision | undefined;
  /** Filled in by the backup step. */
  done: { label: string | undefined; durationMs: number } | undefined;
}

const age = (b: BackupInfo, now: Date) => now.getTime() / 1000 - b.timestamp.stop;

/** Auto: a full when none is newer than full-interval, a diff past diff-interval, else an incr — skipped when no WAL was archived since the last backup (nothing was written). */
export function decideServed(s: StanzaInfo | undefined, type: ServedBackupOptions['type'], cfg: Pick<Config, 'full-interval' | 'diff-interval'>, now: Date): ServedDecision {
  const backups = backupsIn(s, 1).filter((b) => !b.error);
  if (type !== 'auto') return { action: 'backup', type, why: `--type ${type}` };
  const lastFull = backups.filter((b) => b.type === 'full').at(-1);
  if (!lastFull || age(lastFull, now) > cfg['full-interval']) return { action: 'backup', type: 'full', why: lastFull ? `the last full (${lastFull.label}) is older than full-interval` : 'no full backup yet' };
  const last = backups.at(-1)!;
  const newest = s ? archiveMax(s)?.wal : undefined;
  if (newest && last.archive?.stop && newest <= last.archive.stop) return { action: 'skip', why: `no WAL archived since ${last.label}` };
  const lastDiffOrFull = backups.filter((b) => b.type !== 'incr').at(-1)!;
  return age(lastDiffOrFull, now) > cfg['diff-interval'] ? { action: 'backup', type: 'diff', why: 'the last full or diff is older than diff-interval' } : { action: 'backup', type: 'incr', why: 'full and diff are recent' };
}

/** One registration file, read through pgBackRest as postgres (the app's host wrote it over TLS: root never follows it). */
async function readRegistration(ctx: Context, repoPath: string, stanza: string): Promise<{ registration?: Registration; detached?: Detached; problem?: string }> {
  const where = `${repoPath}/${registrationPath(stanza)}`;
  const get = await ctx.runner.run(localRepoCmd(repoPath, ['repo-get', registrationPath(stanza)]), { check: false });
  if (get.exitCode !== 0) return { problem: `${where} cannot be read (exit code ${get.exitCode})` };
  let json: unknown;
  try {
    json = JSON.parse(get.stdout);
  } catch {
    return { problem: `${where} is not JSON` };
  }
  const full = registrationSchema.safeParse(json);
  if (full.success && full.data.stanza === stanza) return { registration: full.data };
  const gone = detachedSchema.safeParse(json);
  if (gone.success && gone.data.stanza === stanza) return { detached: gone.data };
  return { problem: `${where} is not a registration of stanza ${stanza}` };
}

/** The apps registered in this host's repository and not detached since (root only). */
export async function listRegistrations(ctx: Context, repoPath: string): Promise<string[]> {
  const r = await ctx.runner.run(localRepoCmd(repoPath, ['--output=json', 'repo-ls', CLIENTS_DIR]), { check: false });
  if (r.exitCode !== 0) return [];
  const names = Object.keys(JSON.parse(r.stdout || '{}') as Record<string, unknown>).filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -'.json'.length)).sort();
  const live: string[] = [];
  for (const n of names) if (!(await readRegistration(ctx, repoPath, n)).detached) live.push(n);
  return live;
}

export async function gatherServedBackup(ctx: Context, o: ServedBackupOptions): Promise<ServedBackupFacts> {
  const repoPath = repoPathFrom(ctx.config['repo-path'], await readMainConfig(ctx.fs));
  const f: ServedBackupFacts = { uid: ctx.host.uid, now: ctx.clock.now(), serve: undefined, repoPath, registration: undefined, problem: undefined, stanza: undefined, postgresGid: undefined, decision: undefined, done: undefined };
  if (ctx.host.uid !== 0) return f;
  f.serve = await readServe(ctx.fs, ctx.paths.stateDir);
  f.postgresGid = (await postgresOwner(ctx.fs))?.gid;
  const reg = await readRegistration(ctx, repoPath, o.stanza);
  f.registration = reg.registration;
  f.problem = reg.detached ? `its host detached it at ${reg.detached.detachedAt}` : reg.problem;
  const info = await ctx.runner.run(localRepoCmd(repoPath, [`--stanza=${o.stanza}`, '--output=json', 'info']), { check: false });
  f.stanza = info.exitCode === 0 ? parseInfo(info.stdout)[0] : undefined;
  f.decision = decideServed(f.stanza, o.type, ctx.config, f.now);
  return f;
}

export function servedBackupGuards(f: ServedBackupFacts, o: ServedBackupOptions): Guard[] {
  const root = f.uid === 0;
  return [
    runsAsRoot(f.uid, 'back up served apps'),
    { id: 'host-serves', check: () => (!root || f.serve ? pass : fail('this host runs no pgBackRest server of pgmam’s: its apps’ hosts cannot reach its repository', 'pgmam repo serve --ca-file … --cert-file … --key-file … --allow <each app host’s certificate CN>')) },
    { id: 'app-is-registered', check: () => (!root || f.registration ? pass : fail(`stanza ${o.stanza} is not registered here: ${f.problem ?? '?'}`, 'on the app’s host: pgmam repo attach <this repository> <app>')) },
    { id: 'stanza-is-in-repo', check: () => (!root || !f.registration || (f.stanza && f.stanza.status.code !== 1) ? pass : fail(`the repository ${f.repoPath} holds no stanza ${o.stanza}`, 'the app’s host creates it when it attaches the repository')) },
  ];
}

export function planServedBackup(f: ServedBackupFacts, o: ServedBackupOptions, env: PlanEnv): PlanBody {
  const target = servedTarget(o.stanza);
  const d = f.decision;
  if (!d || d.action !== 'backup') return { target, steps: [], journal: false, quiet: true };
  const reg = required(f.registration, 'the registration');
  const stateDir = env.paths.stateDir;
  const conf = clientConfigPath(stateDir, o.stanza);
  const retention = retentionOf(env.config);
  const text = renderClientConfig(reg, { ca: serveCaPath(stateDir), cert: serveCertPath(stateDir), key: serveKeyPath(stateDir) }, { repoPath: f.repoPath, retention, compressType: env.config['compress-type'], processMax: env.config['process-max'] }, { host: reg.host, app: reg.app, role: reg.role });
  const backup: Cmd = {
    // Retention on the command line too: this host's configuration applies whatever an older file says.
    argv: ['pgbackrest', `--config=${conf}`, '--log-level-console=info', `--stanza=${o.stanza}`, `--repo1-retention-full=${retention.full}`, `--repo1-retention-full-type=${retention.fullType}`, `--type=${d.type}`, 'backup'],
    asUser: 'postgres',
    effect: 'write',
  };
  const steps: Step[] = [
    {
      id: 'write-client-config',
      title: `write ${conf}: ${reg.app} on ${reg.host} through its server ${reg.address}:${reg.port}`,
      effect: 'write',
      run: async (c) => {
        await c.fs.mkdirp(`${serveDir(stateDir)}/clients`, { mode: 0o755, owner: { uid: 0, gid: 0 } });
        await c.fs.writeFileAtomic(conf, text, { mode: 0o640, owner: { uid: 0, gid: required(f.postgresGid, 'the postgres group') } });
      },
      show: text.trimEnd().split('\n').map((l) => `  | ${l}`),
    },
    {
      id: `backup-${d.type}`,
      title: `${d.type} backup of ${reg.app} (stanza ${o.stanza}, on ${reg.host}) into this host's repository (${d.why})`,
      effect: 'write',
      run: async (c) => {
        const t0 = performance.now();
        const out = await c.runner.run(backup);
        f.done = { label: /new backup label = (\S+)/.exec(out.stdout)?.[1], durationMs: Math.round(performance.now() - t0) };
      },
      show: [`$ ${renderArgv(backup.argv)}`],
    },
  ];
  // pgBackRest resumes or refuses an interrupted backup by itself: no journal of pgmam's.
  return { target, steps, journal: false, quiet: true };
}

/** Locks and targets of served apps: a name no cluster can have. */
export const servedTarget = (stanza: string) => `_served_${stanza}`;

export const servedBackupCommand: CommandModule<ServedBackupOptions, ServedBackupFacts> = {
  spec: {
    name: 'repo backup-clients',
    summary: 'back up the apps other hosts registered in this host’s repository',
    options: servedBackupOptionsSchema,
    examples: [],
    target: (o) => servedTarget(o.stanza),
    destructive: false,
    waitsForLock: true,
    settles: false,
  },
  gather: gatherServedBackup,
  guards: servedBackupGuards,
  plan: planServedBackup,
  report: async () => undefined,
};

interface BackupClientsOptions {
  stanzas: string[];
  all: boolean;
  type: ServedBackupOptions['type'];
  dryRun: boolean;
  json: boolean;
}

export interface ServedOutcome {
  stanza: string;
  app: string | null;
  host: string | null;
  result: 'backed-up' | 'skipped' | 'failed';
  type?: BackupType;
  label?: string;
  reason: string;
  durationMs?: number;
}

export const backupClientsBatch: CliBatch<BackupClientsOptions> = {
  name: 'repo backup-clients',
  summary: 'on a repository host: back up the apps other hosts attached to its repository, through their pgBackRest servers',
  examples: ['pgmam repo backup-clients --all          # from cron, beside pgmam backup --all', 'pgmam repo backup-clients app1 --type full'],
  cli: {
    args: [{ syntax: '[stanzas...]', key: 'stanzas', help: 'registered stanzas (or --all)' }],
    flags: [
      { flags: '--all', help: 'every app registered in this host’s repository' },
      { flags: '--type <type>', help: 'backup type; auto: full when due, else diff when due, else incr (skipped when no WAL came since the last)', choices: ['full', 'diff', 'incr', 'auto'], default: 'auto' },
    ],
    input: z.object({ stanzas: z.array(z.string()).default([]), all: flag, type: z.enum(['full', 'diff', 'incr', 'auto']).default('auto') }).transform((o) => {
      if (!o.stanzas.length && !o.all) throw new UsageError('repo backup-clients needs stanza names or --all');
      if (o.stanzas.length && o.all) throw new UsageError('repo backup-clients takes stanza names or --all, not both');
      if (o.stanzas.some((s) => !/^[a-z][a-z0-9_]{0,47}$/.test(s))) throw new UsageError(`not a stanza name: ${o.stanzas.join(', ')}`);
      return o;
    }),
  },
  run: async (ctx, o) => {
    checkGuards({ command: 'repo backup-clients', guards: [runsAsRoot(ctx.host.uid, 'back up served apps')] });
    // From the schedule on every host: one that serves no repository has nothing to do, and says nothing.
    if (o.all && !(await readServe(ctx.fs, ctx.paths.stateDir))) return o.json ? ctx.io.out('[]\n') : undefined;
    const repoPath = repoPathFrom(ctx.config['repo-path'], await readMainConfig(ctx.fs));
    const stanzas = o.all ? await listRegistrations(ctx, repoPath) : o.stanzas;
    if (!stanzas.length) return ctx.io.out(o.json ? '[]\n' : `no app is registered in ${repoPath}\n`);
    const runs = stanzas.map((stanza) => ({ stanza, type: o.type, json: o.json, dryRun: o.dryRun, yes: true, keepOnError: false }));
    await runBatch(ctx, servedBackupCommand, runs, {
      report: async (batch) => {
        if (o.dryRun) return;
        const outcomes = batch.map((b): ServedOutcome => {
          const f = b.run?.facts;
          const base = { stanza: b.options.stanza, app: f?.registration?.app ?? null, host: f?.registration?.host ?? null };
          if (b.result !== 'done' || !f) return { ...base, result: 'failed', reason: b.lines.filter((l) => l.startsWith('pgmam: ')).map((l) => l.replace(/^pgmam: (repo backup-clients refused: )?/, '')).join('; ') };
          if (f.decision?.action === 'skip') return { ...base, result: 'skipped', reason: f.decision.why };
          const d = f.decision as Extract<ServedDecision, { action: 'backup' }>;
          return { ...base, result: 'backed-up', type: d.type, label: f.done?.label, reason: d.why, durationMs: f.done?.durationMs };
        });
        if (o.json) return ctx.io.out(`${JSON.stringify(outcomes, null, 2)}\n`);
        const bad = outcomes.filter((x) => x.result === 'failed').length;
        const lines = outcomes.map((x) => `${x.stanza}${x.host ? ` (${x.host})` : ''}: ${x.result === 'backed-up' ? `${x.type} backup ${x.label ?? ''}` : `${x.result}: ${x.reason}`}`);
        const summary = `repo backup-clients: ${outcomes.filter((x) => x.result === 'backed-up').length} backed up, ${outcomes.filter((x) => x.result === 'skipped').length} skipped, ${bad} failed`;
        ctx.io.out(`${ctx.io.interactive || bad ? `${lines.join('\n')}\n` : ''}${summary}\n`);
      },
    });
  },
};
