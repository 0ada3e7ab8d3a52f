// `pgmam backup <app>… | --all`: pgBackRest backups of every managed cluster, from cron or by hand —
// full/diff/incr tiers, skipping when nothing was written, retention, locks, parallel, export.
import type { Context } from '../context.js';
import { ExitCode, PgmamError, RefusedError } from '../errors.js';
import type { HostCluster } from '../pg/clusters.js';
import * as pgbr from '../pgbackrest/commands.js';
import { parseStanzaFile } from '../pgbackrest/config.js';
import { parseInfo, type BackupInfo, type StanzaInfo } from '../pgbackrest/info.js';
import { ReadOnlyRunner } from '../runner/wrappers.js';
import { renderArgv, effectiveArgv } from '../runner/types.js';
import { describeJournal, ownerAlive, readJournal } from '../state/journal.js';
import { lockDeps, acquireLock, LockHeldError } from '../state/lock.js';
import type { ManagedCluster } from '../state/store.js';
import { managedClusters, postgresOwner, readClusters, repoScope, stanzaScope } from '../host/facts.js';
import { markBackup, readNextXid } from '../steps/stanza.js';

export type BackupType = 'full' | 'diff' | 'incr';

export interface BackupOptions {
  names: string[];
  all: boolean;
  type: BackupType | 'auto';
  exportTo: string | undefined;
  force: boolean;
  dryRun: boolean;
  json: boolean;
}

export interface Target {
  record: ManagedCluster;
  cluster: HostCluster | undefined;
  stanza: StanzaInfo | undefined;
  /** Next transaction ID now (online clusters only). */
  nextXid: string | undefined;
  /** An interrupted pgmam operation on the cluster (its journal, described), to be settled first. */
  interrupted?: string;
}

export type Decision =
  | { action: 'backup'; type: BackupType; why: string }
  | { action: 'skip'; why: string }
  | { action: 'fail'; why: string };

const age = (b: BackupInfo, now: Date) => now.getTime() / 1000 - b.timestamp.stop;

/** What to do with one cluster; pure, so every rule is tested without a cluster. */
export function decide(t: Target, o: Pick<BackupOptions, 'type' | 'force'>, cfg: { fullInterval: number; diffInterval: number }, now: Date): Decision {
  if (t.interrupted) return { action: 'fail', why: `${t.record.cluster}: ${t.interrupted}` };
  if (!t.cluster) return { action: 'fail', why: `the host has no cluster ${t.record.cluster}` };
  if (!t.cluster.running) return { action: 'fail', why: `${t.record.cluster} is down` };
  const backups = (t.stanza?.backup ?? []).filter((b) => !b.error);
  const lastFull = backups.filter((b) => b.type === 'full').at(-1);
  const lastDiffOrFull = backups.filter((b) => b.type !== 'incr').at(-1);
  let type: BackupType;
  let why: string;
  if (o.type !== 'auto') {
    type = o.type;
    why = `--type ${o.type}`;
  } else if (!lastFull || age(lastFull, now) > cfg.fullInterval) {
    type = 'full';
    why = lastFull ? `the last full (${lastFull.label}) is older than full-interval` : 'no full backup yet';
  } else if (!lastDiffOrFull || age(lastDiffOrFull, now) > cfg.diffInterval) {
    type = 'diff';
    why = `the last full or diff is older than diff-interval`;
  } else {
    type = 'incr';
    why = 'full and diff are recent';
  }
  if (type === 'full' && o.type === 'auto') return { action: 'backup', type, why }; // a due full is never skipped
  const mark = t.record.backupMark;
  const last = backups.at(-1);
  if (!o.force && type !== 'full' && mark && last && mark.label === last.label && t.nextXid !== undefined && mark.nextXid === t.nextXid)
    return { action: 'skip', why: `no changes since ${last.label}` };
  return { action: 'backup', type, why };
}

export interface Outcome {
  cluster: string;
  result: 'backed-up' | 'skipped' | 'failed' | 'locked';
  type?: BackupType;
  label?: string;
  expired?: string[];
  reason: string;
  durationMs?: number;
}

async function gatherTargets(ctx: Context, o: BackupOptions): Promise<{ targets: Target[]; unknown: string[] }> {
  const runner = new ReadOnlyRunner(ctx.runner);
  const [managed, clusters] = await Promise.all([managedClusters(ctx), readClusters(runner)]);
  const unknown = o.names.filter((n) => !managed.records.some((r) => r.name === n));
  const records = o.all ? managed.records : managed.records.filter((r) => o.names.includes(r.name));
  const byRepo = new Map<string, StanzaInfo[]>();
  // One `info` per repository for all its stanzas.
  await Promise.all(
    [...new Set(records.map((r) => r.repoPath))].map(async (repoPath) => {
      const r = await runner.run(pgbr.info(repoScope(repoPath, ctx.paths.stanzaDir)), { check: false });
      byRepo.set(repoPath, r.exitCode === 0 ? parseInfo(r.stdout) : []);
    }),
  );
  const targets = await Promise.all(
    records.map(async (record): Promise<Target> => {
      const cluster = clusters.find((c) => c.name === record.name && c.version === record.version);
      const stanza = byRepo.get(record.repoPath)?.find((s) => s.name === record.stanza);
      const nextXid = cluster?.running ? await readNextXid(runner, record.version, cluster.port) : undefined;
      const journal = await readJournal(ctx.fs, ctx.paths.stateDir, record.name);
      // A live journal is a running command: the lock makes backup wait for it.
      return { record, cluster, stanza, nextXid, interrupted: journal && !ownerAlive(ctx.host, journal) ? describeJournal(journal) : undefined };
    }),
  );
  return { targets, unknown };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function lockWithWait(ctx: Context, name: string): Promise<(() => Promise<void>) | undefined> {
  const deadline = Date.now() + ctx.config['lock-wait'] * 1000;
  for (;;) {
    try {
      return await acquireLock(lockDeps(ctx), name, 'backup');
    } catch (e) {
      if (!(e instanceof LockHeldError) || Date.now() >= deadline) {
        if (e instanceof LockHeldError) return undefined;
        throw e;
      }
      await sleep(500);
    }
  }
}

function backupCmd(t: Target, type: BackupType, ctx: Context) {
  const base = pgbr.backup(stanzaScope(t.record.stanza, ctx.paths.stanzaDir), type);
  // Retention from pgmam's configuration, applied by pgBackRest's own expire after the backup.
  const retention = [`--repo1-retention-full=${ctx.config['retention-full']}`, `--repo1-retention-full-type=${ctx.config['retention-full-type']}`, '--log-level-console=info'];
  return { ...base, argv: [base.argv[0]!, ...retention, ...base.argv.slice(1)] };
}

async function backupOne(ctx: Context, t: Target, d: Extract<Decision, { action: 'backup' }>, progress: (s: string) => void): Promise<Outcome> {
  const cluster = t.record.cluster;
  const release = await lockWithWait(ctx, t.record.name);
  if (!release) return { cluster, result: 'locked', reason: `locked by another pgmam command for more than lock-wait (${ctx.config['lock-wait']} s)` };
  const t0 = performance.now();
  try {
    progress(`${cluster}: ${d.type} backup (${d.why})`);
    const scope = stanzaScope(t.record.stanza, ctx.paths.stanzaDir);
    const before = new Set((t.stanza?.backup ?? []).map((b) => b.label));
    const out = await ctx.runner.run(backupCmd(t, d.type, ctx));
    // pgBackRest names the new backup on its console at level info: no second `info` on the critical path.
    const fromOutput = /new backup label = (\S+)/.exec(out.stdout)?.[1];
    const labels = t.cluster ? await markBackup(ctx, t.record.name, scope, { version: t.record.version, port: t.cluster.port }, fromOutput) : [];
    const label = labels.at(-1);
    // What expired is settled afterwards, from one `info` per repository (see runBackup).
    return { cluster, result: 'backed-up', type: d.type, label, expired: fromOutput ? [...before] : [...before].filter((l) => !labels.includes(l)), reason: d.why, durationMs: Math.round(performance.now() - t0) };
  } catch (e) {
    return { cluster, result: 'failed', type: d.type, reason: String(e instanceof Error ? e.message : e).split('\n').slice(0, 3).join(' '), durationMs: Math.round(performance.now() - t0) };
  } finally {
    await release();
  }
}

/** Run `tasks` with at most `limit` at a time, keeping their order in the result. */
async function pool<T>(limit: number, tasks: Array<() => Promise<T>>): Promise<T[]> {
  const out: T[] = new Array(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, tasks.length) }, async () => {
      while (next < tasks.length) {
        const i = next++;
        out[i] = await tasks[i]!();
      }
    }),
  );
  return out;
}

export async function runBackup(ctx: Context, o: BackupOptions): Promise<void> {
  if (ctx.host.uid !== 0) throw new RefusedError('backup', [{ id: 'runs-as-root', reason: `pgmam must run as root to back up clusters (running as uid ${ctx.host.uid})`, hint: 'run it with sudo' }]);
  const { targets, unknown } = await gatherTargets(ctx, o);
  if (unknown.length) throw new RefusedError('backup', unknown.map((n) => ({ id: 'cluster-is-managed', reason: `${n} is not managed by pgmam`, hint: 'see pgmam list' })));
  const now = ctx.clock.now();
  const cfg = { fullInterval: ctx.config['full-interval'], diffInterval: ctx.config['diff-interval'] };
  const decisions = targets.map((t) => ({ t, d: decide(t, o, cfg, now) }));

  if (o.dryRun) {
    const lines = decisions.map(({ t, d }) =>
      d.action === 'backup' ? `${t.record.cluster}: ${d.type} backup (${d.why})\n     $ ${renderArgv(effectiveArgv(backupCmd(t, d.type, ctx), ctx.host.uid))}` : `${t.record.cluster}: ${d.action === 'skip' ? 'skip' : 'cannot back up'}: ${d.why}`,
    );
    if (o.exportTo) lines.push(`then export the repository of each backed-up stanza to ${o.exportTo} (new or changed files, each verified by size and SHA-256)`);
    ctx.io.out(`plan: pgmam backup (${targets.length} cluster${targets.length === 1 ? '' : 's'}, ${ctx.config['backup-parallel']} at a time)\n${lines.join('\n')}\n`);
    return;
  }

  // Quiet under cron: progress goes to the log file only, stdout gets the one-line summary.
  const level = ctx.io.interactive ? 'info' : 'debug';
  const progress = (s: string) => ctx.log[level](s);
  ctx.log[level]({ event: 'begin', command: 'backup', targets: targets.map((t) => t.record.cluster) }, `begin backup of ${targets.length} cluster(s)`);
  const outcomes = await pool(
    ctx.config['backup-parallel'],
    decisions.map(({ t, d }) => async (): Promise<Outcome> => {
      if (d.action === 'fail') return { cluster: t.record.cluster, result: 'failed', reason: d.why };
      if (d.action === 'skip') {
        progress(`${t.record.cluster}: skipped, ${d.why}`);
        return { cluster: t.record.cluster, result: 'skipped', reason: d.why };
      }
      return backupOne(ctx, t, d, progress);
    }),
  );

  // Expired = labels before the run that the repository no longer lists: one `info` per repository.
  const backedUp = decisions.filter((_, i) => outcomes[i]!.result === 'backed-up');
  for (const repoPath of new Set(backedUp.map(({ t }) => t.record.repoPath))) {
    const r = await ctx.runner.run(pgbr.info(repoScope(repoPath, ctx.paths.stanzaDir)), { check: false });
    const now = r.exitCode === 0 ? parseInfo(r.stdout) : undefined;
    for (const { t } of backedUp.filter(({ t }) => t.record.repoPath === repoPath)) {
      const o = outcomes[decisions.findIndex((x) => x.t === t)]!;
      const labels = now?.find((s) => s.name === t.record.stanza)?.backup.map((b) => b.label);
      o.expired = labels ? (o.expired ?? []).filter((l) => !labels.includes(l)) : [];
    }
  }

  let exported: ExportSummary | undefined;
  if (o.exportTo) {
    const done = decisions.filter((_, i) => outcomes[i]!.result === 'backed-up' || outcomes[i]!.result === 'skipped').map(({ t }) => t.record);
    exported = await exportRepos(ctx, done, o.exportTo);
  }
  ctx.log[level]({ event: 'end', command: 'backup', outcomes }, 'end backup');

  const ok = outcomes.filter((x) => x.result === 'backed-up' || x.result === 'skipped').length;
  const bad = outcomes.length - ok;
  if (o.json) ctx.io.out(`${JSON.stringify({ outcomes, exported: exported ?? null }, null, 2)}\n`);
  else {
    const detail = outcomes.map((x) =>
      x.result === 'backed-up'
        ? `${x.cluster}: ${x.type} backup ${x.label}${x.expired?.length ? `; expired ${x.expired.join(', ')}` : ''}`
        : `${x.cluster}: ${x.result}: ${x.reason}`,
    );
    const summary = `backup: ${outcomes.filter((x) => x.result === 'backed-up').length} backed up, ${outcomes.filter((x) => x.result === 'skipped').length} skipped (no changes), ${bad} failed or locked${exported ? `; exported ${exported.copied} file(s) to ${exported.dir}` : ''}`;
    // Quiet under cron: one line when all went well; every cluster's line on a terminal or on trouble.
    ctx.io.out(`${ctx.io.interactive || bad ? `${detail.join('\n')}\n` : ''}${summary}\n`);
  }
  if (bad && !ok) throw new PgmamError('no cluster could be backed up', ExitCode.refused, ['pgmam: backup: no cluster could be backed up']);
  if (bad) throw new PgmamError('some clusters failed', ExitCode.partial, [`pgmam: backup: ${bad} of ${outcomes.length} cluster(s) failed or were locked`]);
}

export interface ExportSummary {
  dir: string;
  copied: number;
  unchanged: number;
  removed: number;
}

/**
 * Mirror each stanza's backup/ and archive/ directories into DIR, so DIR is itself a pgBackRest
 * repository: only new or changed files are copied, each verified (size and SHA-256) after copying.
 * The source repository is read from the stanza file, never assumed.
 */
export async function exportRepos(ctx: Context, records: ManagedCluster[], dir: string): Promise<ExportSummary> {
  const owner = await postgresOwner(ctx.fs);
  const summary: ExportSummary = { dir, copied: 0, unchanged: 0, removed: 0 };
  await ctx.fs.mkdirp(dir, { mode: 0o750, owner });
  for (const rec of records) {
    const text = await ctx.fs.readText(rec.stanzaFile);
    const repo = (text && parseStanzaFile(text)?.repoPath) ?? rec.repoPath;
    for (const sub of ['backup', 'archive']) {
      const from = `${repo}/${sub}/${rec.stanza}`;
      const to = `${dir}/${sub}/${rec.stanza}`;
      const [src, dst] = await Promise.all([ctx.fs.walk(from), ctx.fs.walk(to)]);
      for (const f of src) {
        const [a, b] = await Promise.all([ctx.fs.stat(`${from}/${f}`), ctx.fs.stat(`${to}/${f}`)]);
        // backup.info and archive.info change in place: compare content, not just size and time.
        const mutable = /\.info(\.copy)?$/.test(f);
        if (b && a && b.size === a.size && Math.abs(b.mtimeMs - a.mtimeMs) < 1 && !mutable) {
          summary.unchanged++;
          continue;
        }
        const srcSum = await ctx.fs.sha256(`${from}/${f}`);
        if (b && mutable && b.size === a?.size && (await ctx.fs.sha256(`${to}/${f}`)) === srcSum) {
          summary.unchanged++;
          continue;
        }
        await ctx.fs.copyFile(`${from}/${f}`, `${to}/${f}`, owner);
        const copied = await ctx.fs.stat(`${to}/${f}`);
        if (copied?.size !== a?.size || (await ctx.fs.sha256(`${to}/${f}`)) !== srcSum) throw new Error(`export of ${from}/${f} to ${to}/${f} did not verify`);
        summary.copied++;
      }
      // Expired in the source: gone from the export too, so the export stays a faithful repository.
      for (const f of dst.filter((x) => !src.includes(x))) {
        await ctx.fs.rm(`${to}/${f}`);
        summary.removed++;
      }
    }
  }
  return summary;
}
