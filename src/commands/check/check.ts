// `pgmam check [<app>…] [--json] [--prometheus FILE]`: the health of managed clusters, for cron and
// monitoring. Exit 0 when every checked cluster is healthy, 7 when any is not. Unmanaged clusters are
// listed as such and never counted. Reads only, except `pgbackrest check` (it switches a WAL segment).
import { lastBackup } from '../../pgbackrest/info.js';
import { z } from 'zod';
import type { Context } from '../../context.js';
import { ExitCode, PgmamError, UsageError } from '../../errors.js';
import { readClusterTls } from '../../host/tls.js';
import { resolveAppName } from '../../host/facts.js';
import { runsAsRoot } from '../../guards/host.js';
import * as pg from '../../pg/commands.js';
import * as pgbr from '../../pgbackrest/commands.js';
import { runFlagsSchema, type CommandModule, type PlanBody, type PlanEnv } from '../../plan/command.js';
import { fail, pass, type Guard, type Step } from '../../plan/types.js';
import { stderrTail } from '../../runner/types.js';
import { buildList, gatherListFacts, type ListEntry, type ListFacts, type RepoView } from '../../host/inventory.js';
import { stanzaScope } from '../../pgbackrest/commands.js';
import { parseStanzaFile } from '../../pgbackrest/config.js';
import { readArchiveBacklog } from '../../host/archive-backlog.js';
import { detectTakeover, type Takeover } from '../../host/takeover.js';
import { setStartAtBoot, startAtBootShown } from '../../steps/autostart.js';
import { readRecord, updateManaged, type ManagedCluster } from '../../state/store.js';
import { parseSlotsState, parseStandbyState, slotsStateSql, STANDBY_STATE_SQL } from '../../pg/replication.js';

export const checkOptionsSchema = runFlagsSchema.extend({ names: z.array(z.string()), prometheus: z.string().optional() });
export type CheckOptions = z.infer<typeof checkOptionsSchema>;

export interface ClusterHealth {
  cluster: string;
  name: string;
  port?: number | null;
  stanza?: string | null;
  managed: boolean;
  /** null for unmanaged clusters: not checked, never counted. */
  healthy: boolean | null;
  problems: string[];
  running: boolean;
  acceptsConnections: boolean | null;
  archive: { checkOk: boolean | null; failedCount: number | null; lastFailedWal: string | null; oldestReadySeconds: number | null; waitingMb: number | null; localFailing: string | null; checkError?: string | null; stanzaPort?: number | null; stanzaStopped?: boolean } | null;
  lastBackup: { type: string; label: string; stoppedAt: string; ageSeconds: number } | null;
  recoveryWindow: { from: string; to: string } | null;
  preserved: Array<{ path: string; reason: string; createdAt: string; bytes: number | null }>;
  freeBytes: { data: number | null; repo: number | null };
  interrupted: ListEntry['interrupted'];
  /** Each attached repository (the local one is the fields above): from `info --repo=N` and a listing of its newest WAL. */
  repos: RepoHealth[];
  /** Another host continues this app: a newer timeline in its stanza of a shared repository; fenced when check stopped it. */
  takenOver: { repo: string; timeline: number; own: number; host: string | null; fenced: boolean } | null;
  /** Its server certificate from pgmam's CA (null: the cluster has no TLS of pgmam's). */
  tls: { notAfter: string; expiresInSeconds: number; serial: string } | null;
  /** A replica: whether it streams, how far its replay is behind its primary, and what its slot keeps there. */
  replica: ReplicaHealth | null;
  /** The last restore drill (pgmam drill), and when the last one passed; null: never drilled (or not an app). */
  lastDrill: { at: string; ok: boolean; rtoSeconds: number | null; rpoSeconds: number | null; failedStep: string | null; error: string | null; lastOkAt: string | null } | null;
  /** When pgmam made or adopted the app (its record): an app younger than drill-max-age needs no drill yet. */
  createdAt: string | null;
}

export interface ReplicaHealth {
  primary: string;
  streaming: boolean;
  replayLagBytes: number | null;
  replayLagSeconds: number | null;
  slot: { name: string; active: boolean; retainedBytes: number | null; walStatus: string | null } | null;
}

export interface RepoHealth {
  name: string;
  index: number;
  /** Backup took it out of the app's stanza: it failed while WAL piled up for it. */
  suspended: { at: string; since: string; reason: string; waitingMb: number } | null;
  /** Asynchronous archive-push reports it failing (pgBackRest's words). */
  failing: string | null;
  reachable: boolean;
  problem: string | null;
  lastBackup: { label: string; stoppedAt: string; ageSeconds: number } | null;
  /** How far its newest archived WAL is behind the local repository's (null: unknown). */
  walBehindSeconds: number | null;
}

export interface Thresholds {
  backupMaxAgeSeconds: number;
  readyMaxAgeSeconds: number;
  minFreeBytes: number;
  /** tls-warn-days, in seconds. */
  tlsWarnSeconds?: number;
  /** preserved-max-mb, in bytes (0: no limit). */
  preservedMaxBytes?: number;
  /** drill-max-age, in seconds, and the time check runs (epoch ms): apps only. */
  drill?: { maxAgeSeconds: number; nowMs: number };
}

/** Turns gathered measurements into problems: pure, so the rules are unit-tested. */
export function judge(h: Omit<ClusterHealth, 'healthy' | 'problems'>, t: Thresholds): string[] {
  const p: string[] = [];
  if (h.replica) return judgeReplica(h, h.replica, t);
  const x = h.takenOver;
  if (x) {
    p.push(
      `taken over: timeline ${x.timeline} in repository ${x.repo} is newer than this cluster's timeline ${x.own}; ${x.host ? `host ${x.host}` : 'another host'} continues this app. ${x.fenced ? 'Fenced: stopped and not started at boot; every changing pgmam command refuses it' : 'Not fenced (fence-on-takeover = no): stop it and keep it from archiving'} (README: Disaster recovery)`,
    );
    return p;
  }
  if (!h.running) p.push('not running');
  else if (h.acceptsConnections === false) p.push('running but not accepting connections');
  const port = h.archive?.stanzaPort;
  const clusterPort = h.port ?? null;
  if (h.archive?.stanzaStopped) p.push(`its stanza ${h.stanza ?? h.name} is stopped (pgbackrest stop): archiving and backups refuse until it is started (hint: runuser -u postgres -- pgbackrest --stanza=${h.stanza ?? h.name} start)`);
  else if (port && clusterPort && port !== clusterPort) p.push(`its stanza file names port ${port}, but the cluster runs on port ${clusterPort}: pgBackRest cannot reach it (hint: pgmam set-port ${h.name} ${clusterPort} points the stanza file at it)`);
  else if (h.archive?.checkOk === false) p.push(`pgbackrest check failed: ${h.archive.checkError ?? 'WAL archiving does not work'}${checkHint(h.archive.checkError, h.stanza ?? h.name)}`);
  if (h.archive?.failedCount && h.archive.lastFailedWal) p.push(`archive_command has failed ${h.archive.failedCount} time(s) since the statistics reset (last failed WAL ${h.archive.lastFailedWal})`);
  if (h.archive?.oldestReadySeconds !== null && h.archive?.oldestReadySeconds !== undefined && h.archive.oldestReadySeconds > t.readyMaxAgeSeconds)
    p.push(`a WAL file has waited ${Math.round(h.archive.oldestReadySeconds)} s to be archived (pg_wal fills up while archiving fails)`);
  const kept = h.preserved.reduce((a, x) => a + (x.bytes ?? 0), 0);
  if (t.preservedMaxBytes && kept > t.preservedMaxBytes)
    p.push(`its ${h.preserved.length} preserved data director${h.preserved.length === 1 ? 'y takes' : 'ies take'} ${Math.round(kept / 1048576)} MB (preserved-max-mb ${Math.round(t.preservedMaxBytes / 1048576)}) (hint: pgmam prune ${h.name} --older-than 7d --dry-run shows what would go)`);
  if (h.tls && t.tlsWarnSeconds !== undefined && h.tls.expiresInSeconds < t.tlsWarnSeconds)
    p.push(h.tls.expiresInSeconds < 0 ? `its server certificate expired at ${h.tls.notAfter} (pgmam tls renew ${h.name})` : `its server certificate expires in ${Math.floor(h.tls.expiresInSeconds / 86400)} d, at ${h.tls.notAfter} (tls-warn-days; pgmam tls renew ${h.name})`);
  if (!h.lastBackup) p.push('no backup');
  else if (h.lastBackup.ageSeconds > t.backupMaxAgeSeconds) p.push(`last backup ${h.lastBackup.label} is ${Math.round(h.lastBackup.ageSeconds / 3600)} h old (backup-max-age ${Math.round(t.backupMaxAgeSeconds / 3600)} h)`);
  if (!h.recoveryWindow) p.push('no recovery window');
  for (const [fs, free] of Object.entries(h.freeBytes)) if (free !== null && free < t.minFreeBytes) p.push(`${fs} filesystem has ${Math.round(free / 1024 / 1024)} MB free (min-free-mb ${Math.round(t.minFreeBytes / 1024 / 1024)})`);
  if (h.interrupted) p.push(`${h.interrupted.status === 'failed' ? 'failed' : 'interrupted'} ${h.interrupted.command} at ${h.interrupted.step} (run: ${h.interrupted.rerun})`);
  if (h.archive?.localFailing) p.push(`archiving into the local repository fails: ${h.archive.localFailing}`);
  p.push(...judgeDrill(h, t));
  for (const r of h.repos) {
    if (r.suspended) {
      p.push(`repository ${r.name} is suspended since ${r.suspended.at}: it failed (${r.suspended.reason}) while ${r.suspended.waitingMb} MB of WAL waited for it; its archive misses WAL from ${r.suspended.since} on. Archiving goes on into the local repository; backup puts it back, with a full, once it answers`);
      continue;
    }
    if (r.failing) {
      p.push(`archiving into repository ${r.name} fails: ${r.failing}${h.archive?.waitingMb ? `; ${h.archive.waitingMb} MB of WAL wait in pg_wal for it (backup suspends it past repo-suspend-mb)` : ''}`);
      continue;
    }
    if (!r.reachable) {
      p.push(`repository ${r.name} cannot be read: ${r.problem ?? 'unreachable'}`);
      continue;
    }
    if (!r.lastBackup) p.push(`no backup in repository ${r.name}`);
    else if (r.lastBackup.ageSeconds > t.backupMaxAgeSeconds) p.push(`last backup in repository ${r.name} (${r.lastBackup.label}) is ${Math.round(r.lastBackup.ageSeconds / 3600)} h old (backup-max-age ${Math.round(t.backupMaxAgeSeconds / 3600)} h)`);
    if (r.walBehindSeconds !== null && r.walBehindSeconds > t.readyMaxAgeSeconds) p.push(`WAL is not reaching repository ${r.name}: its newest archived WAL is ${Math.round(r.walBehindSeconds)} s behind the local repository's`);
  }
  return p;
}

/** An app (not a branch or replica) proves its backups by a passing restore drill at least every drill-max-age. */
export function judgeDrill(h: Pick<ClusterHealth, 'name' | 'lastDrill' | 'createdAt'>, t: Thresholds): string[] {
  if (!t.drill || h.createdAt === null) return [];
  const d = h.lastDrill;
  const age = (iso: string) => (t.drill!.nowMs - Date.parse(iso)) / 1000;
  const days = (sec: number) => `${Math.floor(sec / 86400)} d`;
  const max = `drill-max-age ${days(t.drill.maxAgeSeconds)}`;
  const p: string[] = [];
  if (d && !d.ok) p.push(`the last restore drill (${d.at}) failed at ${d.failedStep ?? '?'}: ${d.error ?? '?'} (pgmam drill ${h.name} again once that is fixed)`);
  const since = d?.lastOkAt ?? null;
  if (since === null ? age(h.createdAt) > t.drill.maxAgeSeconds : age(since) > t.drill.maxAgeSeconds)
    p.push(since === null ? `no restore drill has passed since it was created ${days(age(h.createdAt))} ago (${max}): pgmam drill ${h.name}` : `the last passing restore drill is ${days(age(since))} old (${since}; ${max}): pgmam drill ${h.name}`);
  return p;
}

/** What to do about pgbackrest check's own error, where pgmam knows. */
function checkHint(error: string | null | undefined, stanza: string): string {
  if (!error) return '';
  if (/stop file exists/i.test(error)) return ` (hint: the stanza was stopped; runuser -u postgres -- pgbackrest --stanza=${stanza} start)`;
  if (/\[082\]|archive-push|WAL segment .* was not archived/i.test(error)) return ` (hint: archiving does not reach the repository: see pgmam logs ${stanza} and pg_stat_archiver)`;
  if (/\[056\]|unable to find primary|connect/i.test(error)) return ' (hint: pgBackRest cannot reach the cluster: its stanza file\'s pg1-port and pg1-socket-path must be the cluster\'s)';
  return '';
}

const mb = (b: number | null) => (b === null ? '?' : b < 1024 * 1024 ? `${Math.round(b / 1024)} kB` : `${Math.round(b / 1024 / 1024)} MB`);

/** A replica is healthy when it runs and streams; its backups are its app's. */
function judgeReplica(h: Omit<ClusterHealth, 'healthy' | 'problems'>, r: ReplicaHealth, t: Thresholds): string[] {
  const p: string[] = [];
  const slot = r.slot ? `; its slot ${r.slot.name} on ${r.primary} retains ${mb(r.slot.retainedBytes)} of WAL${r.slot.walStatus === 'lost' ? ' and has lost WAL the replica needs (pgmam replica rebuild)' : ''}` : `; ${r.primary} has no slot for it`;
  if (!h.running) p.push(`not running${slot}`);
  else if (!r.streaming) p.push(`not streaming from ${r.primary}${slot}`);
  else if (r.slot?.walStatus === 'lost') p.push(`its slot ${r.slot.name} on ${r.primary} has lost WAL the replica needs (pgmam replica rebuild)`);
  if (h.running && r.replayLagSeconds !== null && r.replayLagSeconds > t.readyMaxAgeSeconds) p.push(`replay is ${Math.round(r.replayLagSeconds)} s behind ${r.primary} (archive-ready-max-age)`);
  for (const [fs, free] of Object.entries(h.freeBytes)) if (free !== null && free < t.minFreeBytes) p.push(`${fs} filesystem has ${Math.round(free / 1024 / 1024)} MB free (min-free-mb ${Math.round(t.minFreeBytes / 1024 / 1024)})`);
  if (h.tls && t.tlsWarnSeconds !== undefined && h.tls.expiresInSeconds < t.tlsWarnSeconds) p.push(`its server certificate expires at ${h.tls.notAfter} (pgmam tls renew ${h.name})`);
  if (h.interrupted) p.push(`${h.interrupted.status === 'failed' ? 'failed' : 'interrupted'} ${h.interrupted.command} at ${h.interrupted.step} (run: ${h.interrupted.rerun})`);
  return p;
}

/** A replica's state: its own (WAL receiver) and its slot's and walsender's on the primary. */
async function measureReplica(ctx: Context, e: ListEntry, rec: ManagedCluster, primary: ListEntry | undefined): Promise<ReplicaHealth> {
  const slotName = rec.replication?.slot;
  const h: ReplicaHealth = { primary: primary?.cluster ?? rec.parent ?? '?', streaming: false, replayLagBytes: null, replayLagSeconds: null, slot: null };
  const [own, slots] = await Promise.all([
    e.status === 'online' ? ctx.runner.run(pg.psqlValue({ version: e.version, port: e.port ?? 0 }, STANDBY_STATE_SQL), { check: false }) : undefined,
    primary?.status === 'online' && slotName ? ctx.runner.run(pg.psqlValue({ version: primary.version, port: primary.port ?? 0 }, slotsStateSql([slotName])), { check: false }) : undefined,
  ]);
  const state = own?.exitCode === 0 ? parseStandbyState(own.stdout) : undefined;
  h.streaming = Boolean(state?.inRecovery && state.receiver === 'streaming');
  const s = slots?.exitCode === 0 ? parseSlotsState(slots.stdout)[0] : undefined;
  if (s) {
    h.slot = { name: s.slot, active: s.active, retainedBytes: s.retainedBytes, walStatus: s.walStatus };
    h.replayLagBytes = s.replayLagBytes;
    // replay_lag is null once the primary is idle and the replica caught up.
    h.replayLagSeconds = s.replayLagSeconds ?? (s.replayLagBytes === 0 ? 0 : null);
  }
  return h;
}

/** An attached repository's health, from what list gathered of it. */
export function repoHealth(v: RepoView, localArchivedAt: Date | undefined, now: number): RepoHealth {
  const last = v.stanza && lastBackup(v.stanza);
  const w = { lastBackup: last ? { label: last.label, stoppedAt: new Date(last.timestamp.stop * 1000).toISOString() } : null };
  return {
    name: v.name,
    index: v.index,
    suspended: null,
    failing: null,
    reachable: v.reachable,
    problem: v.problem,
    lastBackup: w.lastBackup ? { label: w.lastBackup.label, stoppedAt: w.lastBackup.stoppedAt, ageSeconds: (now - Date.parse(w.lastBackup.stoppedAt)) / 1000 } : null,
    walBehindSeconds: localArchivedAt && v.archivedAt ? Math.max(0, (localArchivedAt.getTime() - v.archivedAt.getTime()) / 1000) : null,
  };
}

async function measure(ctx: Context, e: ListEntry, repoPath: string | undefined, now: number, repos: RepoHealth[]): Promise<Omit<ClusterHealth, 'healthy' | 'problems'>> {
  const running = e.status === 'online';
  const target = { version: e.version, port: e.port ?? 0 };
  const base = {
    cluster: e.cluster,
    name: e.name,
    port: e.port,
    stanza: e.stanza,
    managed: e.managed,
    running,
    recoveryWindow: e.recoveryWindow,
    interrupted: e.interrupted,
    lastBackup: e.lastBackup ? { ...e.lastBackup, ageSeconds: (now - Date.parse(e.lastBackup.stoppedAt)) / 1000 } : null,
  };
  const own = await readClusterTls(ctx, { cluster: e.cluster, name: e.name, version: e.version }, new Date(now));
  const tls = own.enabled && own.certificate && own.expiresInSeconds !== null ? { notAfter: own.certificate.notAfter, expiresInSeconds: own.expiresInSeconds, serial: own.certificate.serial } : null;
  const ready = e.dataDir ? await oldestReady(ctx, `${e.dataDir}/pg_wal/archive_status`, now) : null;
  const backlog = e.dataDir && e.stanza ? await readArchiveBacklog(ctx.fs, e.dataDir, e.stanza) : undefined;
  for (const r of repos) if (!r.suspended) r.failing = backlog?.failing.get(r.index) ?? null;
  // pgbackrest check checks every repository of the stanza (it takes no --repo): with one that fails it
  // can only fail, after a minute of retries; that repository's problem is reported instead.
  const attachedFail = repos.some((r) => !r.suspended && (r.failing || !r.reachable));
  const replica = e.role === 'replica';
  // A stopped stanza (pgBackRest's stop file): said at once, not after pgbackrest check's minute of waiting for WAL.
  const stanzaStopped = e.stanza ? await ctx.fs.exists(`${pgbr.LOCK_PATH}/${e.stanza}.stop`) : false;
  const [conn, archiver, check, preserved, dataFree, repoFree] = await Promise.all([
    running ? ctx.runner.run(pg.psqlValue(target, 'select 1'), { check: false }) : undefined,
    running && !replica ? ctx.runner.run(pg.psqlValue(target, "select failed_count || '|' || coalesce(last_failed_wal, '') || '|' || (coalesce(last_failed_time > coalesce(last_archived_time, '-infinity'), false))::text from pg_stat_archiver"), { check: false }) : undefined,
    running && e.stanza && !attachedFail && !replica && !stanzaStopped ? ctx.runner.run(pgbr.check(stanzaScope(e.stanza, ctx.paths.stanzaDir)), { check: false }) : undefined,
    Promise.all(e.preserved.map(async (p) => ({ ...p, bytes: await dirBytes(ctx, p.path) }))),
    e.dataDir ? ctx.fs.freeBytes(e.dataDir).catch(() => null) : null,
    repoPath ? ctx.fs.freeBytes(repoPath).catch(() => null) : null,
  ]);
  const [failed = '', lastFailedWal = '', failingNow = 'false'] = archiver?.exitCode === 0 ? archiver.stdout.trim().split('|') : [];
  const stanzaText = e.stanza ? await ctx.fs.readText(`${ctx.paths.stanzaDir}/${e.stanza}.conf`).catch(() => undefined) : undefined;
  const stanzaPort = stanzaText ? (parseStanzaFile(stanzaText)?.port ?? null) : null;
  if (check && check.exitCode !== 0) ctx.log.warn({ event: 'check-failed', cluster: e.cluster, stderr: stderrTail(check.stderr, 3) }, `${e.cluster}: pgbackrest check failed`);
  return {
    ...base,
    acceptsConnections: conn ? conn.exitCode === 0 : running ? false : null,
    archive: {
      checkOk: check ? check.exitCode === 0 : null,
      // pgBackRest's own line (ERROR: [055]: …), not a paraphrase of it.
      checkError: check && check.exitCode !== 0 ? (check.stderr.split('\n').find((l) => /ERROR: \[\d+\]/.test(l))?.trim() ?? stderrTail(check.stderr, 1) ?? null) : null,
      stanzaPort,
      stanzaStopped,
      failedCount: failed === '' ? null : Number(failed),
      // Only a failure newer than the last success counts: an old failure that was fixed is history.
      lastFailedWal: failingNow === 'true' ? lastFailedWal || null : null,
      oldestReadySeconds: ready,
      waitingMb: backlog ? backlog.waitingMb : null,
      localFailing: backlog?.failing.get(1) ?? null,
    },
    preserved,
    freeBytes: { data: dataFree, repo: repoFree },
    repos,
    takenOver: null,
    tls,
    replica: null,
    lastDrill: null,
    createdAt: null,
  };
}

/** Age of the oldest WAL file waiting to be archived (pgBackRest #1848: a failing archive_command fills pg_wal). */
async function oldestReady(ctx: Context, dir: string, now: number): Promise<number | null> {
  const ready = (await ctx.fs.readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.ready'));
  const times = await Promise.all(ready.map(async (f) => (await ctx.fs.stat(`${dir}/${f}`))?.mtimeMs));
  const oldest = Math.min(...times.filter((t): t is number => t !== undefined));
  return Number.isFinite(oldest) ? (now - oldest) / 1000 : 0;
}

async function dirBytes(ctx: Context, dir: string): Promise<number | null> {
  return (await ctx.fs.treeBytes(dir).catch(() => undefined)) ?? null;
}

export interface CheckFacts extends ListFacts {
  uid: number;
  now: Date;
  entries: ListEntry[];
  /** By app name: another host took it over (a fenced record, or a newer foreign timeline found now). */
  takeovers: Map<string, Takeover>;
  /** Filled in by the measure-health step, for the report and the metrics file. */
  results: ClusterHealth[];
  /** --prometheus FILE: whether its directory exists (undefined without the flag). */
  metricsDirExists: boolean | undefined;
}

export async function gatherCheck(ctx: Context, o?: Pick<CheckOptions, 'prometheus'>): Promise<CheckFacts> {
  const facts = await gatherListFacts(ctx);
  const entries = buildList(facts);
  const takeovers = new Map<string, Takeover>();
  if (ctx.host.uid === 0)
    await Promise.all(
      facts.managed.map(async (rec) => {
        if (rec.successor) return;
        if (rec.fenced) return void takeovers.set(rec.name, { name: rec.name, repo: rec.fenced.repo, timeline: rec.fenced.timeline, own: 0, host: rec.fenced.host });
        const e = entries.find((x) => x.name === rec.name && x.managed);
        const t = await detectTakeover(ctx, ctx.runner, rec, e?.dataDir ?? null, facts.repoViews.get(rec.stanza) ?? []);
        if (t) takeovers.set(rec.name, t);
      }),
    );
  const metricsDirExists = o?.prometheus ? await ctx.fs.exists(o.prometheus.replace(/\/[^/]*$/, '') || '/') : undefined;
  return { ...facts, uid: ctx.host.uid, now: ctx.clock.now(), entries, takeovers, results: [], metricsDirExists };
}

/** Stop a cluster another host took over and keep it from starting at boot, and record why: two hosts must never archive into one stanza. */
export function fenceStep(rec: ManagedCluster, t: Takeover, running: boolean, systemd: boolean): Step {
  const id = { version: rec.version, name: rec.name };
  const reason = `timeline ${t.timeline} in repository ${t.repo} is newer than its own (${t.own || '?'}): ${t.host ? `host ${t.host}` : 'another host'} took it over`;
  return {
    id: `fence-${rec.name}`,
    title: `fence ${rec.cluster}: ${reason} — stop it and disable its start at boot`,
    effect: 'write',
    run: async (c) => {
      if (running) await c.runner.run(pg.controlCluster(id, 'stop', systemd));
      await setStartAtBoot(c, id, 'disabled', systemd, false);
      const at = rec.fenced?.at ?? c.clock.now().toISOString();
      await updateManaged(c.fs, c.paths.clustersDir, rec.name, (r) => ({ ...r, fenced: { at, repo: t.repo, timeline: t.timeline, host: t.host, reason } }));
      c.log.warn({ event: 'fenced', cluster: rec.cluster, repo: t.repo, timeline: t.timeline, host: t.host }, `${rec.cluster} fenced: ${reason}`);
    },
    show: [...(running ? [`$ ${pg.controlCluster(id, 'stop', systemd).argv.join(' ')}`] : []), ...startAtBootShown(id, 'disabled', systemd), `record ${rec.name} as fenced`],
  };
}

const unknownNames = (f: CheckFacts, o: CheckOptions) => o.names.filter((n) => !f.entries.some((e) => e.name === n || e.cluster === n));

export function checkClusterGuards(f: CheckFacts, o: CheckOptions): Guard[] {
  const unknown = unknownNames(f, o);
  return [
    runsAsRoot(f.uid, 'check clusters (pgbackrest check and the repository need it)'),
    { id: 'clusters-exist', check: () => (unknown.length ? fail(`no such cluster: ${unknown.join(', ')}`, 'see pgmam list') : pass) },
    {
      id: 'metrics-directory-exists',
      check: () => (f.metricsDirExists === false ? fail(`--prometheus ${o.prometheus}: the directory ${o.prometheus!.replace(/\/[^/]*$/, '') || '/'} does not exist`, "create it, or point --prometheus at node_exporter's textfile directory") : pass),
    },
  ];
}

/** Measuring runs `pgbackrest check`, which switches a WAL segment: a step, not a fact. */
export function planCheck(f: CheckFacts, o: CheckOptions, env: PlanEnv): PlanBody {
  const chosen = o.names.length ? f.entries.filter((e) => o.names.includes(e.name) || o.names.includes(e.cluster)) : f.entries;
  const now = f.now.getTime();
  const t: Thresholds = { backupMaxAgeSeconds: env.config['backup-max-age'], readyMaxAgeSeconds: env.config['archive-ready-max-age'], minFreeBytes: env.config['min-free-mb'] * 1024 * 1024, tlsWarnSeconds: env.config['tls-warn-days'] * 86400, preservedMaxBytes: env.config['preserved-max-mb'] * 1048576, drill: { maxAgeSeconds: env.config['drill-max-age'], nowMs: now } };
  const repoOf = new Map(f.managed.map((m) => [m.name, m.repoPath]));
  // Fenced first: measuring then sees the cluster stopped. A fenced cluster someone started again is stopped again.
  const fences = env.config['fence-on-takeover'] === 'yes'
    ? chosen.flatMap((e) => {
        const t = f.takeovers.get(e.name);
        const rec = f.managed.find((m) => m.name === e.name);
        const running = e.status === 'online';
        return t && rec && e.managed && (!rec.fenced || running) ? [fenceStep(rec, t, running, env.host.systemd)] : [];
      })
    : [];
  const steps: Step[] = [
    ...fences,
    {
      id: 'measure-health',
      title: `measure ${chosen.filter((e) => e.managed).length} managed cluster(s): connections, pgbackrest check, archiver, backups, disk, preserved directories`,
      effect: 'write',
      run: async (c) => {
        const results = await Promise.all(
          chosen.map(async (e): Promise<ClusterHealth> => {
            if (!e.managed) return unmanaged(e);
            const views = e.stanza ? (f.repoViews.get(e.stanza) ?? []) : [];
            const suspended = (f.managed.find((m) => m.name === e.name)?.repos ?? []).flatMap((a): RepoHealth[] =>
              a.suspended ? [{ name: a.name, index: a.index, suspended: { at: a.suspended.at, since: a.suspended.since, reason: a.suspended.reason, waitingMb: a.suspended.waitingMb }, failing: null, reachable: false, problem: null, lastBackup: null, walBehindSeconds: null }] : [],
            );
            const taken = f.takeovers.get(e.name);
            const fenced = Boolean((await readRecord(c.fs, c.paths.clustersDir, e.name))?.fenced);
            // Taken over: no pgbackrest check (it would push this copy's WAL into the other host's stanza).
            const m = await measure(c, { ...e, status: taken ? 'down' : e.status }, repoOf.get(e.name), now, [...views.map((v) => repoHealth(v, e.stanza ? f.archivedAt.get(e.stanza) : undefined, now)), ...suspended]);
            m.takenOver = taken ? { repo: taken.repo, timeline: taken.timeline, own: taken.own, host: taken.host, fenced } : null;
            const rec = f.managed.find((x) => x.name === e.name);
            // Drills are of apps (drill --all): a branch or replica is not held to drill-max-age.
            if (rec?.role === 'app') {
              const last = rec.drill?.last;
              m.lastDrill = last ? { at: last.at, ok: last.ok, rtoSeconds: last.rtoSeconds, rpoSeconds: last.rpoSeconds, failedStep: last.failedStep, error: last.error, lastOkAt: rec.drill?.lastOk?.at ?? null } : null;
              m.createdAt = rec.createdAt;
            }
            if (rec?.role === 'replica') m.replica = await measureReplica(c, e, rec, f.entries.find((x) => x.name === rec.parent && x.managed));
            const successor = f.managed.find((x) => x.name === e.name)?.successor;
            const problems = successor && m.replica === null
              ? [`fenced after a failover: ${successor} is the primary of app ${e.stanza ?? '?'} now (pgmam replica rebuild ${e.name} makes this cluster its replica; pgmam drop ${e.name} removes it)`]
              : judge(m, t);
            return { ...m, healthy: problems.length === 0, problems };
          }),
        );
        f.results.splice(0, f.results.length, ...results);
      },
      show: chosen.filter((e) => e.managed && e.stanza).map((e) => `  $ runuser -u postgres -- pgbackrest --stanza=${e.stanza} check  (and read-only queries)`),
    },
    ...(o.prometheus
      ? [{ id: 'write-metrics', title: `write the metrics to ${o.prometheus} (atomically)`, effect: 'write' as const, run: (c: Context) => c.fs.writeFileAtomic(o.prometheus!, renderPrometheus(f.results, now), { mode: 0o644 }) }]
      : []),
  ];
  return { target: o.names.join(' ') || 'all', steps, journal: false, quiet: true };
}

async function reportCheck(ctx: Context, o: CheckOptions, f: CheckFacts): Promise<void> {
  for (const p of f.problems) ctx.io.err(`pgmam: ${p}\n`);
  const bad = f.results.filter((r) => r.healthy === false);
  // -q from cron: silent when all is well; the unhealthy ones alone otherwise.
  if (o.json) ctx.io.out(`${JSON.stringify(f.results, null, 2)}\n`);
  else if (!ctx.io.quiet) ctx.io.out(renderText(f.results));
  else if (bad.length) ctx.io.out(renderText(bad).replace(/\ncheck: .*\n$/, '\n'));
  if (bad.length) throw new PgmamError('some clusters are unhealthy', ExitCode.partial, [`pgmam: check: ${bad.map((r) => r.cluster).join(', ')} unhealthy`]);
}

export const checkCommand: CommandModule<CheckOptions, CheckFacts> = {
  spec: {
    name: 'check',
    summary: 'health of managed clusters: running, archiving, backup age, recovery window, preserved directories, free disk, interrupted operations (exit 7 when any is unhealthy)',
    cli: {
      args: [{ syntax: '[apps...]', key: 'names', help: 'clusters to check (default: all)' }],
      flags: [{ flags: '--prometheus <file>', help: 'also write node_exporter textfile metrics to FILE (atomically)' }],
      input: z.object({ names: z.array(z.string()).default([]), prometheus: z.string().optional() }),
      // An app named alone is its primary now (after a failover, the promoted replica); VERSION/NAME is that cluster.
      prepare: async (ctx, i) => {
        const input = i as { names: string[] };
        return { ...input, names: await Promise.all(input.names.map((n) => (n.includes('/') ? n : resolveAppName(ctx, n)))) };
      },
    },
    options: checkOptionsSchema,
    check: (o) => {
      if (o.prometheus !== undefined && !o.prometheus.startsWith('/')) throw new UsageError(`--prometheus must be an absolute path (got "${o.prometheus}")`);
    },
    examples: ['pgmam check                     # exit 7 when any managed cluster is unhealthy', 'pgmam check app1 --json', 'pgmam check --prometheus /var/lib/prometheus/node-exporter/pgmam.prom'],
    destructive: false,
  },
  gather: (ctx, o) => gatherCheck(ctx, o),
  guards: checkClusterGuards,
  plan: planCheck,
  report: reportCheck,
};

const unmanaged = (e: ListEntry): ClusterHealth => ({
  cluster: e.cluster,
  name: e.name,
  managed: false,
  healthy: null,
  problems: [],
  running: e.status === 'online',
  acceptsConnections: null,
  archive: null,
  lastBackup: null,
  recoveryWindow: null,
  preserved: [],
  freeBytes: { data: null, repo: null },
  interrupted: e.interrupted,
  repos: [],
  takenOver: null,
  tls: null,
  replica: null,
  lastDrill: null,
  createdAt: null,
});

function renderText(results: ClusterHealth[]): string {
  const lines = results.map((r) =>
    r.healthy === null ? `${r.cluster}: unmanaged (not checked)` : r.healthy ? `${r.cluster}: healthy` : `${r.cluster}: UNHEALTHY\n${r.problems.map((p) => `  - ${p}`).join('\n')}`,
  );
  const bad = results.filter((r) => r.healthy === false).length;
  const checked = results.filter((r) => r.healthy !== null).length;
  return `${[...lines, `check: ${checked - bad} of ${checked} managed cluster(s) healthy`].join('\n')}\n`;
}

/** node_exporter textfile collector format. */
export function renderPrometheus(results: ClusterHealth[], now: number): string {
  const out: string[] = [];
  const metric = (name: string, help: string, rows: Array<[Record<string, string>, number | null | undefined]>) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const [labels, v] of rows) {
      if (v === null || v === undefined) continue;
      const l = Object.entries(labels).map(([k, x]) => `${k}="${x.replace(/["\\\n]/g, '_')}"`).join(',');
      out.push(`${name}{${l}} ${v}`);
    }
  };
  const managed = results.filter((r) => r.managed);
  const c = (r: ClusterHealth) => ({ cluster: r.cluster });
  const b = (v: boolean | null | undefined) => (v === null || v === undefined ? null : v ? 1 : 0);
  metric('pgmam_cluster_healthy', '1 when every check of the cluster passed', managed.map((r) => [c(r), b(r.healthy)]));
  metric('pgmam_cluster_up', '1 when the cluster runs and accepts connections', managed.map((r) => [c(r), b(r.running && r.acceptsConnections === true)]));
  metric('pgmam_archive_check_ok', '1 when pgbackrest check passed', managed.map((r) => [c(r), b(r.archive?.checkOk)]));
  metric('pgmam_archive_failing', '1 when the last archive_command attempt failed', managed.map((r) => [c(r), r.archive ? (r.archive.lastFailedWal ? 1 : 0) : null]));
  metric('pgmam_archive_failed_count', 'pg_stat_archiver.failed_count', managed.map((r) => [c(r), r.archive?.failedCount]));
  metric('pgmam_wal_ready_oldest_seconds', 'age of the oldest WAL file waiting to be archived', managed.map((r) => [c(r), r.archive?.oldestReadySeconds === null || r.archive?.oldestReadySeconds === undefined ? null : Math.round(r.archive.oldestReadySeconds)]));
  metric('pgmam_last_backup_age_seconds', 'age of the newest backup', managed.map((r) => [c(r), r.lastBackup ? Math.round(r.lastBackup.ageSeconds) : null]));
  metric('pgmam_recovery_window_start_seconds', 'earliest restorable time (unix seconds)', managed.map((r) => [c(r), r.recoveryWindow ? Date.parse(r.recoveryWindow.from) / 1000 : null]));
  metric('pgmam_recovery_window_end_seconds', 'latest restorable time (unix seconds)', managed.map((r) => [c(r), r.recoveryWindow ? Date.parse(r.recoveryWindow.to) / 1000 : null]));
  metric('pgmam_preserved_directories', 'preserved data directories kept by pgmam', managed.map((r) => [c(r), r.preserved.length]));
  metric('pgmam_preserved_bytes', 'size of the preserved data directories', managed.map((r) => [c(r), r.preserved.reduce((a, p) => a + (p.bytes ?? 0), 0)]));
  metric('pgmam_free_bytes', 'free bytes on the filesystem', managed.flatMap((r) => [[{ ...c(r), fs: 'data' }, r.freeBytes.data], [{ ...c(r), fs: 'repo' }, r.freeBytes.repo]] as Array<[Record<string, string>, number | null]>));
  const perRepo = managed.flatMap((r) => r.repos.map((x) => ({ r, x })));
  metric('pgmam_repo_reachable', '1 when an attached repository answered (per cluster and repository)', perRepo.map(({ r, x }) => [{ ...c(r), repo: x.name }, b(x.reachable)]));
  metric('pgmam_repo_suspended', '1 while backup has suspended an attached repository for the cluster (it failed while WAL piled up)', perRepo.map(({ r, x }) => [{ ...c(r), repo: x.name }, b(x.suspended !== null)]));
  metric('pgmam_wal_waiting_bytes', 'WAL in pg_wal waiting to be archived', managed.map((r) => [c(r), r.archive?.waitingMb === null || r.archive?.waitingMb === undefined ? null : r.archive.waitingMb * 1024 * 1024]));
  metric('pgmam_repo_last_backup_age_seconds', 'age of the newest backup in an attached repository', perRepo.map(({ r, x }) => [{ ...c(r), repo: x.name }, x.lastBackup ? Math.round(x.lastBackup.ageSeconds) : null]));
  metric('pgmam_taken_over', '1 when another host continues the app (a newer timeline in its shared stanza)', managed.map((r) => [c(r), r.takenOver ? 1 : 0]));
  metric('pgmam_tls_expiry_seconds', "when the cluster's server certificate expires (unix seconds)", managed.map((r) => [c(r), r.tls ? Math.round(Date.parse(r.tls.notAfter) / 1000) : null]));
  const replicas = managed.filter((r) => r.replica);
  const rl = (r: ClusterHealth) => ({ ...c(r), primary: r.replica!.primary });
  metric('pgmam_replica_streaming', '1 when the replica streams from its primary', replicas.map((r) => [rl(r), b(r.replica!.streaming)]));
  metric('pgmam_replica_replay_lag_bytes', "WAL the replica's replay is behind its primary", replicas.map((r) => [rl(r), r.replica!.replayLagBytes]));
  metric('pgmam_replica_replay_lag_seconds', "how long the replica's replay is behind its primary", replicas.map((r) => [rl(r), r.replica!.replayLagSeconds]));
  metric('pgmam_replica_slot_retained_bytes', "WAL the replica's slot keeps on its primary", replicas.map((r) => [rl(r), r.replica!.slot?.retainedBytes]));
  const drilled = managed.filter((r) => r.lastDrill);
  metric('pgmam_drill_ok', '1 when the last restore drill of the app passed', drilled.map((r) => [c(r), b(r.lastDrill!.ok)]));
  metric('pgmam_drill_last_timestamp_seconds', 'when the last restore drill ran (unix seconds)', drilled.map((r) => [c(r), Math.round(Date.parse(r.lastDrill!.at) / 1000)]));
  metric('pgmam_drill_last_success_timestamp_seconds', 'when the last passing restore drill ran (unix seconds)', drilled.map((r) => [c(r), r.lastDrill!.lastOkAt ? Math.round(Date.parse(r.lastDrill!.lastOkAt) / 1000) : null]));
  metric('pgmam_drill_rto_seconds', 'restore, recovery and start of the last passing drill', drilled.map((r) => [c(r), r.lastDrill!.ok ? r.lastDrill!.rtoSeconds : null]));
  metric('pgmam_drill_rpo_seconds', 'how far the last passing drill lagged the app at its start', drilled.map((r) => [c(r), r.lastDrill!.ok ? r.lastDrill!.rpoSeconds : null]));
  metric('pgmam_interrupted', '1 when a pgmam operation on the cluster was interrupted', managed.map((r) => [c(r), r.interrupted ? 1 : 0]));
  out.push('# HELP pgmam_check_timestamp_seconds when pgmam check ran', '# TYPE pgmam_check_timestamp_seconds gauge', `pgmam_check_timestamp_seconds ${Math.round(now / 1000)}`);
  return `${out.join('\n')}\n`;
}
