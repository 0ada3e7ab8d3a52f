// `pgmam adopt VERSION/NAME`: bring an existing, unmanaged cluster under pgmam — WAL archiving to its
// own stanza, the stanza file, the first full backup, the record, autostart. The cluster is restarted
// only when archive_mode must change (the plan says so, and it needs confirmation or --yes); an
// archive_command that already sends WAL somewhere else is refused unless --replace-archive-command.
import { flag } from '../../plan/cli-spec.js';
import { z } from 'zod';
import { repoSchema } from '../../state/repos.js';
import type { Context } from '../../context.js';
import { UsageError } from '../../errors.js';
import { clusterIsNotLocked, nameIsFree, repoIsWritable } from '../../guards/cluster.js';
import { enoughDisk, pgVersionIsSupported, runsAsRoot } from '../../guards/host.js';
import { clusterTlsDir, TLS_CONF_NAME } from '../../steps/tls.js';
import { archiveCommandFor, ARCHIVE_CONF_NAME } from '../../pg/archive-conf.js';
import type { HostCluster } from '../../pg/clusters.js';
import * as pg from '../../pg/commands.js';
import { runFlagsSchema, type CommandModule, type PlanBody, type PlanEnv, type Recovery } from '../../plan/command.js';
import { fail, pass, required, type Guard, type Step } from '../../plan/types.js';
import { readJournal, describeJournal, type Journal } from '../../state/journal.js';
import { NAME_PATTERN } from '../../names.js';
import { managedClusters, pgbackrestVersion, postgresOwner, readClusters, readMainConfig, installedPgVersions } from '../../host/facts.js';
import { gatherNewCluster, newClusterSteps, reposAreUsable, type NewClusterFacts } from '../../steps/new-cluster.js';

export const adoptOptionsSchema = runFlagsSchema.extend({ version: z.string().regex(/^\d{1,2}$/), name: z.string().min(1), replaceArchiveCommand: z.boolean() });
export type AdoptOptions = z.infer<typeof adoptOptionsSchema>;

export interface AdoptFacts extends NewClusterFacts {
  uid: number;
  now: Date;
  cluster: HostCluster | undefined;
  managed: boolean;
  pgbackrestVersion: string | undefined;
  /** As PostgreSQL reads its configuration files (what the next start uses). */
  settings: { archiveMode: string; archiveCommand: string; walLevel: string } | undefined;
  /** Archive settings pinned by ALTER SYSTEM (postgresql.auto.conf): a conf.d file cannot override them. */
  pinnedInAutoConf: string[];
  includesConfD: boolean;
  dataBytes: number | undefined;
  interrupted: string | undefined;
  postgres: { uid: number; gid: number } | undefined;
}

export async function gatherAdopt(ctx: Context, o: AdoptOptions): Promise<AdoptFacts> {
  const runner = ctx.runner;
  const root = ctx.host.uid === 0;
  const [clusters, managed, main, installedPg, postgres, journal] = await Promise.all([
    readClusters(runner),
    managedClusters(ctx),
    readMainConfig(ctx.fs),
    installedPgVersions(ctx.fs),
    postgresOwner(ctx.fs),
    readJournal(ctx.fs, ctx.paths.stateDir, o.name),
  ]);
  const cluster = clusters.find((c) => c.version === o.version && c.name === o.name);
  const fresh = await gatherNewCluster(ctx, runner, { name: o.name, version: o.version, port: cluster?.port ?? 0, installedPg, clusters, managed: [...managed.records, ...managed.dropped], main, canProbeRepo: root, dataDir: cluster?.dataDir });
  const id = { version: o.version, name: o.name };
  const confDir = pg.confDirOf(id);
  const dataDir = fresh.dataDir;
  const setting = async (name: string) => (await runner.run(pg.showSetting(id, dataDir, name), { check: false })).stdout.trim();
  const settings = cluster && root ? { archiveMode: await setting('archive_mode'), archiveCommand: await setting('archive_command'), walLevel: await setting('wal_level') } : undefined;
  const auto = (await ctx.fs.readText(`${dataDir}/postgresql.auto.conf`).catch(() => undefined)) ?? '';
  const conf = (await ctx.fs.readText(`${confDir}/postgresql.conf`).catch(() => undefined)) ?? '';
  const dataBytes = cluster && root ? await ctx.fs.treeBytes(dataDir).catch(() => undefined) : undefined;
  return {
    ...fresh,
    // The cluster itself carries the name: only other holders of it count.
    nameTakenBy: fresh.nameTakenBy.filter((t) => !t.startsWith(`cluster ${o.version}/${o.name} `)),
    uid: ctx.host.uid,
    now: ctx.clock.now(),
    cluster,
    managed: managed.records.some((r) => r.name === o.name),
    pgbackrestVersion: root ? await pgbackrestVersion(runner) : undefined,
    settings,
    pinnedInAutoConf: auto.split('\n').filter((l) => /^\s*(archive_mode|archive_command|archive_library)\s*=/.test(l)).map((l) => l.trim()),
    includesConfD: /^\s*include_dir\s*=\s*'conf\.d'/m.test(conf),
    dataBytes,
    interrupted: journal ? describeJournal(journal) : undefined,
    postgres,
  };
}

const isEmptyCommand = (c: string) => c === '' || c === '(disabled)';

export function adoptGuards(f: AdoptFacts, o: AdoptOptions, ctx: Pick<Context, 'config' | 'paths'>): Guard[] {
  const label = `${o.version}/${o.name}`;
  const ours = archiveCommandFor(o.name, ctx.paths.stanzaDir === '/etc/pgbackrest/conf.d' ? undefined : ctx.paths.stanzaDir);
  const guards: Guard[] = [
    runsAsRoot(f.uid),
    { id: 'cluster-exists', check: () => (f.cluster ? pass : fail(`there is no cluster ${label}`, 'see pg_lsclusters')) },
    { id: 'cluster-is-not-managed', check: () => (f.managed ? fail(`${label} is already managed by pgmam`) : pass) },
    { id: 'cluster-is-not-a-standby', check: () => (f.cluster?.inRecovery ? fail(`${label} is in recovery (a standby or a restore under way): a replica is no app of its own`, 'adopt its primary; pgmam replica create makes replicas pgmam manages') : pass) },
    { id: 'name-is-a-stanza-name', check: () => (NAME_PATTERN.test(o.name) ? pass : fail(`${label}: the name must match ${NAME_PATTERN.source} to be a stanza name`)) },
    { id: 'no-interrupted-operation', check: () => (f.interrupted ? fail(`${label}: ${f.interrupted}`) : pass) },
  ];
  if (!f.cluster || f.managed || f.uid !== 0) return guards;
  const s = f.settings;
  guards.push(
    pgVersionIsSupported({ pgVersion: o.version, configured: true, installed: [o.version], pgbackrestVersion: f.pgbackrestVersion }),
    nameIsFree(o.name, f.nameTakenBy),
    repoIsWritable(f.repo),
    enoughDisk(f.disk.map((d) => ({ ...d, freeBytes: d.freeBytes === undefined ? undefined : d.freeBytes - (f.dataBytes ?? 0) })), ctx.config['min-free-mb']),
    clusterIsNotLocked(o.name, f.lock.holder, f.lock.alive),
    reposAreUsable(f),
    {
      id: 'archive-command-is-free',
      check: () =>
        !s || isEmptyCommand(s.archiveCommand) || s.archiveCommand === ours || o.replaceArchiveCommand
          ? pass
          : fail(`${label} already archives WAL elsewhere: archive_command = '${s.archiveCommand}'`, 'pass --replace-archive-command to archive to its own stanza instead (the old destination gets no more WAL)'),
    },
    {
      id: 'archive-settings-not-pinned',
      check: () =>
        f.pinnedInAutoConf.length
          ? fail(`${label} sets ${f.pinnedInAutoConf.join(', ')} by ALTER SYSTEM: pgmam's conf.d file could not take effect`, 'ALTER SYSTEM RESET archive_mode; ALTER SYSTEM RESET archive_command; then adopt again')
          : pass,
    },
    { id: 'config-includes-conf-d', check: () => (f.includesConfD ? pass : fail(`${pg.confDirOf({ version: o.version, name: o.name })}/postgresql.conf has no include_dir = 'conf.d'`, 'add it (Debian puts it there by default)')) },
    { id: 'wal-level-allows-archiving', check: () => (s && s.walLevel === 'minimal' ? fail(`${label} has wal_level = minimal: WAL archiving needs replica`, 'set wal_level = replica and restart it') : pass) },
  );
  return guards;
}

/** archive_mode must change on a running cluster: a restart, which cuts the application's connections. */
export const adoptNeedsRestart = (f: AdoptFacts) => Boolean(f.cluster?.running) && f.settings?.archiveMode !== 'on' && f.settings?.archiveMode !== 'always';

/** What an adopt's steps depend on: recorded in its journal, so a re-run can finish an interrupted one. */
export const adoptJournalSchema = z.object({
  version: z.string(),
  dataDir: z.string(),
  port: z.number(),
  running: z.boolean(),
  needsRestart: z.boolean(),
  archiveMode: z.string().nullable(),
  repo: z.object({ path: z.string(), exists: z.boolean(), writableByPostgres: z.boolean().optional() }),
  /** The repositories besides the local one it is attached to (attach-new when the adopt began). */
  attach: z.array(z.object({ index: z.number(), repo: repoSchema })).default([]),
  createdAt: z.string(),
  /** The host's FQDN when the adopt began: its certificate names it. */
  fqdn: z.string().optional(),
});
export type AdoptJournal = z.infer<typeof adoptJournalSchema>;

function adoptSteps(name: string, d: AdoptJournal, env: PlanEnv, owner: { uid: number; gid: number }): Step[] {
  const id = { version: d.version, name };
  const label = pg.clusterLabel(id);
  const n = newClusterSteps({ id, port: d.port, dataDir: d.dataDir, adopted: true, repo: { ...d.repo, writableByPostgres: d.repo.writableByPostgres }, attach: d.attach, owner, config: env.config, paths: env.paths, systemd: env.host.systemd, hostName: env.host.name, fqdn: d.fqdn, role: 'app' });
  const confFile = `${n.confDir}/conf.d/${ARCHIVE_CONF_NAME}`;
  const tlsConfFile = `${n.confDir}/conf.d/${TLS_CONF_NAME}`;
  const certDir = clusterTlsDir(env.config['tls-dir'], id);
  const apply: Step = !d.running
    ? { ...n.startCluster, title: `start ${label} (it is stopped; the first backup needs it running)` }
    : d.needsRestart
      ? { id: 'restart-cluster', title: `restart ${label}: archive_mode changes from ${d.archiveMode} to on (connections are cut)`, effect: 'write', run: pg.controlCluster(id, 'restart', env.host.systemd) }
      : { id: 'reload-cluster', title: `reload ${label} (archive_mode is already on; no restart)`, effect: 'write', run: pg.controlCluster(id, 'reload', env.host.systemd) };
  return [
    ...n.createRepo,
    n.writeStanzaFile,
    {
      ...n.configureArchiving,
      undo: {
        title: `remove ${confFile} and ${d.running ? (d.needsRestart ? 'restart' : 'reload') : 'stop'} ${label} to go back to its own archive settings`,
        run: async (c) => {
          await c.fs.rm(confFile);
          await c.runner.run(pg.controlCluster(id, d.running ? (d.needsRestart ? 'restart' : 'reload') : 'stop', env.host.systemd), { check: false });
        },
      },
    },
    // Its own certificate and ssl = on take effect with the reload or restart below; the TLS rules after it.
    {
      ...n.enableTls[0]!,
      undo: {
        title: `remove ${tlsConfFile} and ${certDir}`,
        run: async (c) => {
          await c.fs.rm(tlsConfFile);
          await c.fs.rm(certDir, { recursive: true });
        },
      },
    },
    apply,
    n.enableTls[1]!,
    n.createStanza,
    ...n.firstBackupAndRecord({ role: 'app', parent: null, createdAt: d.createdAt }),
  ];
}

export function planAdopt(f: AdoptFacts, o: AdoptOptions, ctx: PlanEnv): PlanBody {
  const label = pg.clusterLabel({ version: o.version, name: o.name });
  const dataDir = required(f.cluster?.dataDir, `the data directory of ${label} (pg_lsclusters)`);
  const port = f.cluster?.port ?? 0;
  const needsRestart = adoptNeedsRestart(f);
  const data: AdoptJournal = { version: o.version, dataDir, port, running: Boolean(f.cluster?.running), needsRestart, archiveMode: f.settings?.archiveMode ?? null, repo: { path: f.repo.path, exists: f.repo.exists, writableByPostgres: f.repo.writableByPostgres }, attach: f.attach, createdAt: f.now.toISOString(), ...(f.fqdn ? { fqdn: f.fqdn } : {}) };
  return {
    target: label,
    steps: adoptSteps(o.name, data, ctx, f.postgres ?? { uid: 0, gid: 0 }),
    journal: { rerun: `pgmam adopt ${label} --yes`, data },
    notes: [
      needsRestart ? `${label} is RESTARTED once: archive_mode is ${f.settings?.archiveMode} and must be on` : `${label} is not restarted`,
      ...(f.settings && !isEmptyCommand(f.settings.archiveCommand) && o.replaceArchiveCommand ? [`its archive_command '${f.settings.archiveCommand}' is replaced: that destination gets no more WAL`] : []),
      `the data directory ${dataDir} and its port ${port} stay as they are`,
    ],
  };
}

/**
 * An interrupted adopt is finished: the cluster was the user's all along and stays in use, so nothing
 * is rolled back; the step that was running and those after it run again (each can).
 */
export async function recoverAdopt(ctx: Context, j: Journal, d: AdoptJournal): Promise<Recovery> {
  const owner = (await postgresOwner(ctx.fs)) ?? { uid: 0, gid: 0 };
  // A stopped-then-started cluster is running now: the rest needs no second start.
  const steps = adoptSteps(j.name, d, ctx, owner).slice(j.at);
  return { way: 'finished', steps, finished: `${j.target} is managed by pgmam (the interrupted adopt is finished)\n` };
}

/** VERSION/NAME, or a bare NAME (its version found on the host in prepare: only one may have it). */
export function parseAdoptRef(value: string | undefined): { version: string | undefined; name: string } {
  const m = /^(?:(\d{1,2})\/)?([^/\s]+)$/.exec(value ?? '');
  if (!m) throw new UsageError(`adopt needs NAME or VERSION/NAME, as pg_lsclusters shows it (e.g. main or 15/main); got "${value ?? ''}"`);
  return { version: m[1], name: m[2]! };
}

/** A bare name's version: the one cluster of that name on the host; none or several is a usage error naming them. */
export async function resolveAdoptVersion(ctx: Context, ref: { version: string | undefined; name: string }): Promise<{ version: string; name: string }> {
  if (ref.version) return { version: ref.version, name: ref.name };
  const found = (await readClusters(ctx.runner)).filter((c) => c.name === ref.name);
  if (found.length === 1) return { version: found[0]!.version, name: ref.name };
  throw new UsageError(found.length ? `${ref.name} names ${found.map((c) => `${c.version}/${c.name}`).join(' and ')}: say which, e.g. pgmam adopt ${found[0]!.version}/${ref.name}` : `the host has no cluster named ${ref.name} (see pgmam list)`);
}

async function reportAdopt(ctx: Context, o: AdoptOptions, f: AdoptFacts, plan: { target: string; destructive: boolean }): Promise<void> {
  const result = { cluster: plan.target, stanza: o.name, repoPath: f.repo.path, restarted: plan.destructive };
  ctx.io.out(o.json ? `${JSON.stringify(result)}\n` : `${plan.target} is managed by pgmam: archiving to stanza ${o.name} in ${f.repo.path}, first full backup taken${plan.destructive ? ' (restarted once)' : ''}\n`);
}

export const adoptCommand: CommandModule<AdoptOptions, AdoptFacts, AdoptJournal> = {
  spec: {
    name: 'adopt',
    summary: 'bring an existing cluster under pgmam: archiving to its own stanza, first full backup; restarts it only when archive_mode must change',
    cli: {
      args: [{ syntax: '<cluster>', key: 'cluster', help: 'NAME (the one cluster of that name), or VERSION/NAME as pg_lsclusters shows it' }],
      flags: [{ flags: '--replace-archive-command', help: 'replace an archive_command that sends WAL elsewhere' }],
      input: z.object({ cluster: z.string(), replaceArchiveCommand: flag }).transform((r) => ({ ...parseAdoptRef(r.cluster), replaceArchiveCommand: r.replaceArchiveCommand })),
      prepare: async (ctx, i) => {
        const input = i as { version: string | undefined; name: string };
        return { ...input, ...(await resolveAdoptVersion(ctx, input)) };
      },
      keepOnError: true,
    },
    options: adoptOptionsSchema,
    examples: ['pgmam adopt 15/main --dry-run', 'pgmam adopt main --yes                # the one cluster named main on the host', 'pgmam adopt 15/legacy --replace-archive-command --yes'],
    target: (o) => o.name,
    // A restart cuts the application's connections: confirmed on a terminal, or --yes.
    destructive: (_o, f) => adoptNeedsRestart(f),
    journal: adoptJournalSchema,
  },
  gather: gatherAdopt,
  guards: adoptGuards,
  plan: planAdopt,
  recover: recoverAdopt,
  report: reportAdopt,
};
