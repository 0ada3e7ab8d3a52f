// The host's clusters as list and check see them: the clusters' files (read as pg_lsclusters reads
// them), pgmam's records, one `pgbackrest info` per repository, and interrupted operations — read-only.
import type { Context } from '../context.js';
import type { HostCluster } from '../pg/clusters.js';
import { clusterLabel } from '../pg/commands.js';
import * as pgbr from '../pgbackrest/commands.js';
import { archiveMax, lastBackup, parseInfo, parseRepoLs, type StanzaInfo } from '../pgbackrest/info.js';
import { LOCAL_REPO } from '../state/repos.js';
import { ReadOnlyRunner } from '../runner/wrappers.js';
import { ownerAlive, readJournals, stepName, type Journal } from '../state/journal.js';
import type { ManagedCluster, Preserved } from '../state/store.js';
import { repoScope } from '../pgbackrest/commands.js';
import { managedClusters, newestArchivedAt, readClustersFast } from './facts.js';
import { readLeftovers, type Leftover } from './leftovers.js';
import { historyFileName, parseHistory, timelineOfWal, type HistoryEntry } from '../restore/timeline.js';
import { recoveryWindow as computeWindow, type RecoveryWindow } from '../restore/window.js';

export interface ListEntry {
  cluster: string;
  name: string;
  version: string;
  port: number | null;
  /** dropped: pgmam drop removed it; its kept backups or preserved data directories are left (list --all; purge deletes them). */
  status: 'online' | 'down' | 'missing' | 'dropped';
  dataDir: string | null;
  managed: boolean;
  /** dropped: what a dropped app left (list --all). */
  role: 'app' | 'branch' | 'replica' | 'unmanaged' | 'dropped';
  parent: string | null;
  stanza: string | null;
  lastBackup: { type: string; label: string; stoppedAt: string } | null;
  recoveryWindow: RecoveryWindow | null;
  /** Per repository (the local one first): its newest backup and recovery window; a suspended one says since when and why. [] for unmanaged clusters. */
  repos: Array<{ name: string; lastBackup: ListEntry['lastBackup']; recoveryWindow: ListEntry['recoveryWindow']; suspended: { at: string; since: string; reason: string } | null; gaps: Array<{ from: string; to: string | null }> }>;
  preserved: Preserved[];
  /** Another host took the app over and check fenced this copy (stopped, not started at boot); every changing command refuses it. */
  fenced: { at: string; host: string | null; repo: string; timeline: number } | null;
  /** An app's old primary after a failover: the cluster that took over (replica promote). */
  successor: string | null;
  /** Brought here by recover from a shared repository: a copy or a takeover of another host's app. */
  origin: { stanza: string; repo: string; host: string | null; mode: 'copy' | 'takeover' } | null;
  /** The last restore drill (pgmam drill): when, whether it passed, its RTO and RPO in seconds. */
  lastDrill: { at: string; ok: boolean; rtoSeconds: number | null; rpoSeconds: number | null } | null;
  /** A pgmam operation on this cluster that was killed or failed half-way, and the command that finishes or undoes it. */
  interrupted: { command: string; step: string; status: 'running' | 'failed'; since: string; rerun: string; error: string | null } | null;
}

export interface ListFacts {
  clusters: HostCluster[];
  managed: ManagedCluster[];
  /** Records of dropped clusters kept for their backups or preserved directories. */
  dropped: ManagedCluster[];
  /** What dropped apps left: those records, and pgmam's stanza files no record names (list --all). */
  leftovers: Leftover[];
  /** stanza name → info, for every repository a managed cluster uses; undefined when unreadable. */
  stanzas: Map<string, StanzaInfo> | undefined;
  /** stanza name → when its newest archived WAL file was written. */
  archivedAt: Map<string, Date>;
  /** stanza name → what each attached repository holds of it (one `info` and one listing per app and repository). */
  repoViews: Map<string, RepoView[]>;
  /** Journals of operations whose process (and children) are gone. */
  interrupted: Journal[];
  /** stanza name → its app's timeline and that timeline's history (what places backups on the app's history). */
  lineages: Map<string, { timeline: number | undefined; history: HistoryEntry[] }>;
  /** When the facts were read: a running app's window ends now. */
  now: Date;
  problems: string[];
}

/** Seconds without progress after which a repository view gives up (pgBackRest's io-timeout). */
const VIEW_IO_TIMEOUT_SEC = 2;

/** An attached repository's view of one stanza. */
export interface RepoView {
  name: string;
  index: number;
  stanza: StanzaInfo | undefined;
  /** pgBackRest could read the stanza there. */
  reachable: boolean;
  problem: string | null;
  archivedAt: Date | undefined;
}

/** What one attached repository holds of a stanza: its info, and when its newest WAL arrived. */
export async function readRepoView(runner: Context['runner'], stanzaDir: string, stanzaName: string, a: { name: string; index: number }): Promise<RepoView> {
  const scope = pgbr.stanzaScope(stanzaName, stanzaDir);
  // A repository that does not answer must not hold list or check for pgBackRest's default 60 s.
  const r = await runner.run(pgbr.info(scope, a.index, VIEW_IO_TIMEOUT_SEC), { check: false });
  const stanza = r.exitCode === 0 ? parseInfo(r.stdout)[0] : undefined;
  const status = stanza?.repo?.find((x) => x.key === a.index)?.status ?? stanza?.status;
  const reachable = r.exitCode === 0 && status !== undefined && status.code !== 99 && !/error/i.test(status.message);
  const problem = reachable ? null : (status?.message ?? (r.stderr.trim().split('\n').find((l) => /ERROR/.test(l)) || `pgbackrest info exit code ${r.exitCode}`));
  let archivedAt: Date | undefined;
  const max = stanza && archiveMax(stanza);
  if (reachable && max) {
    const ls = await runner.run(pgbr.repoLs(scope, a.index, `archive/${stanzaName}/${max.id}/${max.wal.slice(0, 16)}`, VIEW_IO_TIMEOUT_SEC), { check: false });
    const time = ls.exitCode === 0 ? [...parseRepoLs(ls.stdout)].find(([f]) => f.startsWith(max.wal))?.[1] : undefined;
    archivedAt = time === undefined ? undefined : new Date(time * 1000);
  }
  return { name: a.name, index: a.index, stanza, reachable, problem, archivedAt };
}

/** `all`: the backups dropped apps left are read too (list --all). */
export async function gatherListFacts(ctx: Context, o: { all?: boolean } = {}): Promise<ListFacts> {
  const runner = new ReadOnlyRunner(ctx.runner);
  const problems: string[] = [];
  // The clusters' files are read while pgmam's records and the repositories are.
  const clustersRead = readClustersFast(ctx.fs, runner);
  clustersRead.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile
  const canReadRepo = ctx.host.uid === 0;
  // One `info` per repository, covering all its stanzas — not one call per cluster. The configured
  // repository (where records normally point) is listed while the records are read.
  const infoRuns = new Map<string, ReturnType<typeof runner.run>>();
  const infoOf = (repoPath: string) => {
    let r = infoRuns.get(repoPath);
    if (!r) infoRuns.set(repoPath, (r = runner.run(pgbr.info(repoScope(repoPath, ctx.paths.stanzaDir)), { check: false })));
    return r;
  };
  // (Only when set: otherwise it comes from pgbackrest.conf, read later.)
  if (canReadRepo && ctx.config['repo-path']) infoOf(ctx.config['repo-path']).catch(() => undefined);
  const [managed, journals] = await Promise.all([managedClusters(ctx), readJournals(ctx.fs, ctx.paths.stateDir)]);
  const stopped = journals.filter((j) => !ownerAlive(ctx.host, j));
  // Journals of host-wide operations (the schedule) are not clusters: named here, not listed as rows.
  const interrupted = stopped.filter((j) => !j.name.startsWith('_'));
  for (const j of stopped.filter((x) => x.name.startsWith('_'))) problems.push(`${j.status === 'failed' ? 'failed' : 'interrupted'} ${j.command} at ${stepName(j)}${j.rerun ? ` (run: ${j.rerun})` : ''}`);
  for (const f of managed.unreadable) problems.push(`cannot read pgmam state ${f}`);

  let stanzas: Map<string, StanzaInfo> | undefined;
  const archivedAt = new Map<string, Date>();
  const repoViews = new Map<string, RepoView[]>();
  const lineages: ListFacts['lineages'] = new Map();
  const clustersEarly = clustersRead.catch(() => [] as HostCluster[]);
  const leftoversRead = clustersEarly.then((cs) => readLeftovers(ctx, managed, cs));
  const leftoverRepos = o.all ? (await leftoversRead).flatMap((l) => (l.repoPath ? [l.repoPath] : [])) : [];
  const repos = [...new Set([...managed.records.map((r) => r.repoPath), ...leftoverRepos])];
  if (repos.length && !canReadRepo) problems.push('backup information not shown: reading the pgBackRest repository needs root (run with sudo)');
  if (repos.length && canReadRepo) {
    stanzas = new Map();
    const results = await Promise.all(repos.map(async (repoPath) => ({ repoPath, r: await infoOf(repoPath) })));
    for (const { repoPath, r } of results) {
      if (r.exitCode !== 0) {
        problems.push(`pgbackrest info failed for repository ${repoPath}: ${r.stderr.trim().split('\n').at(-1) ?? ''}`);
        continue;
      }
      for (const s of parseInfo(r.stdout)) stanzas.set(s.name, s);
    }
    await Promise.all(
      managed.records.map(async (rec) => {
        const s = stanzas!.get(rec.stanza);
        const [at, line] = s ? await Promise.all([newestArchivedAt(ctx.fs, rec.repoPath, s), appLineage(ctx, rec, s)]) : [undefined, undefined];
        if (at) archivedAt.set(rec.stanza, at);
        if (line) lineages.set(rec.stanza, line);
      }),
    );
    // A suspended repository is not in the stanza file: nothing to read there until backup puts it back.
    await Promise.all(managed.records.filter((r) => r.repos.length).map(async (rec) => repoViews.set(rec.stanza, await Promise.all(rec.repos.filter((a) => !a.suspended).map((a) => readRepoView(runner, ctx.paths.stanzaDir, rec.stanza, a))))));
  }
  const clusters = await clustersRead;
  const leftovers = await leftoversRead;
  // What dropped apps left: their windows from their archives alone (nothing of theirs runs).
  if (o.all && stanzas)
    await Promise.all(
      leftovers.map(async (l) => {
        const s = stanzas!.get(l.stanza);
        if (!s || !l.repoPath) return;
        const [at, line] = await Promise.all([newestArchivedAt(ctx.fs, l.repoPath, s), appLineage(ctx, { stanza: l.stanza, repoPath: l.repoPath, timelines: l.record?.timelines ?? [] }, s)]);
        if (at) archivedAt.set(l.stanza, at);
        lineages.set(l.stanza, line);
      }),
    );
  return { clusters, leftovers, managed: managed.records, dropped: managed.dropped, stanzas, archivedAt, repoViews, interrupted, lineages, now: ctx.clock.now(), problems };
}

const iso = (epochSeconds: number) => new Date(epochSeconds * 1000).toISOString();

/** `all`: also what dropped apps left (role dropped). */
export function buildList(f: ListFacts, o: { all?: boolean } = {}): ListEntry[] {
  const byLabel = new Map(f.managed.map((m) => [m.cluster, m]));
  const entries: ListEntry[] = f.clusters.map((c) => {
    const m = byLabel.get(clusterLabel(c));
    return entry(c.version, c.name, c, m, f);
  });
  // Managed clusters the host no longer has are shown, not hidden.
  for (const m of f.managed) if (!f.clusters.some((c) => clusterLabel(c) === m.cluster)) entries.push(entry(m.version, m.name, undefined, m, f));
  // What dropped apps left: kept backups and preserved data directories, until purge or prune removes them.
  if (o.all)
    for (const l of f.leftovers ?? []) {
      if (entries.some((e) => e.name === l.name)) continue;
      const s = f.stanzas?.get(l.stanza);
      const line = f.lineages.get(l.stanza);
      const w = windowOf(s, f.archivedAt.get(l.stanza), line && { ...line, timelines: l.record?.timelines ?? [] });
      entries.push({ ...entry(l.version, l.name, undefined, undefined, f), status: 'dropped', role: 'dropped', parent: l.record?.parent ?? null, stanza: l.stanzaFileExists || s ? l.stanza : null, ...w, dataDir: null, preserved: l.preserved });
    }
  // So is an operation interrupted before its cluster existed (initcluster killed at its first steps).
  for (const j of f.interrupted) if (!entries.some((e) => e.name === j.name)) entries.push(entry(j.target.split('/')[0] ?? '?', j.name, undefined, undefined, f));
  return entries;
}

/**
 * An app's timeline as its archive and pgmam's record tell it (the newest timeline either knows; no
 * process per app), and that timeline's history file from the archive: what places its backups.
 */
async function appLineage(ctx: Pick<Context, 'fs'>, rec: Pick<ManagedCluster, 'stanza' | 'repoPath' | 'timelines'>, s: StanzaInfo): Promise<{ timeline: number | undefined; history: HistoryEntry[] }> {
  const max = archiveMax(s);
  const timeline = Math.max(max ? timelineOfWal(max.wal) : 0, ...rec.timelines.map((t) => t.timeline)) || undefined;
  if (!timeline || timeline === 1 || !max) return { timeline, history: [] };
  const text = await ctx.fs.readText(`${rec.repoPath}/archive/${rec.stanza}/${max.id}/${historyFileName(timeline)}`).catch(() => undefined);
  return { timeline, history: text ? parseHistory(text) : [] };
}

/**
 * A repository's newest backup and recovery window — the window pitr accepts (restore/window.ts):
 * from one second after the first backup on the app's history ends, to now for a running app's local
 * repository, else to the newest archived WAL.
 */
export function windowOf(
  s: StanzaInfo | undefined,
  archived: Date | undefined,
  line: { timeline: number | undefined; history: HistoryEntry[]; timelines: ManagedCluster['timelines']; runningNow?: Date | undefined } | undefined,
): Pick<ListEntry, 'lastBackup' | 'recoveryWindow'> {
  const last = s && lastBackup(s);
  const recoveryWindow = s && line ? computeWindow({ backups: s.backup, currentTimeline: line.timeline, history: line.history, end: line.runningNow ?? archived, timelines: line.timelines }) : null;
  return { lastBackup: last ? { type: last.type, label: last.label, stoppedAt: iso(last.timestamp.stop) } : null, recoveryWindow };
}

function entry(version: string, name: string, c: HostCluster | undefined, m: ManagedCluster | undefined, f: ListFacts): ListEntry {
  // A replica shares its app's stanza: the backups and recovery window are the app's, listed there.
  const own = m && m.role !== 'replica' ? m : undefined;
  const s = own ? f.stanzas?.get(own.stanza) : undefined;
  const line = own && { ...(f.lineages.get(own.stanza) ?? { timeline: undefined, history: [] }), timelines: own.timelines };
  const { lastBackup: last, recoveryWindow } = windowOf(s, own && f.archivedAt.get(own.stanza), line && { ...line, runningNow: c?.running ? f.now : undefined });
  // The WAL a repository missed while suspended: its recovery window has these holes.
  const gapsOf = (name: string) => (m?.repos.find((a) => a.name === name)?.gaps ?? []).map((g) => ({ from: g.from, to: g.to }));
  const suspended = (m?.repos ?? []).flatMap((a) => (a.suspended ? [{ name: a.name, lastBackup: null, recoveryWindow: null, suspended: { at: a.suspended.at, since: a.suspended.since, reason: a.suspended.reason }, gaps: gapsOf(a.name) }] : []));
  const repos = own ? [{ name: LOCAL_REPO, lastBackup: last, recoveryWindow, suspended: null, gaps: [] }, ...(f.repoViews.get(own.stanza) ?? []).map((v) => ({ name: v.name, ...windowOf(v.stanza, v.archivedAt, line), suspended: null, gaps: gapsOf(v.name) })), ...suspended] : [];
  return {
    cluster: `${version}/${name}`,
    name,
    version,
    port: c?.port ?? null,
    status: c ? (c.running ? 'online' : 'down') : 'missing',
    dataDir: c?.dataDir ?? null,
    managed: Boolean(m),
    role: m ? m.role : 'unmanaged',
    parent: m?.parent ?? null,
    stanza: m?.stanza ?? null,
    lastBackup: last,
    recoveryWindow,
    repos,
    preserved: m?.preserved ?? [],
    successor: m?.successor ?? null,
    fenced: m?.fenced ? { at: m.fenced.at, host: m.fenced.host, repo: m.fenced.repo, timeline: m.fenced.timeline } : null,
    origin: m?.origin ? { stanza: m.origin.stanza, repo: m.origin.repo, host: m.origin.host, mode: m.origin.mode } : null,
    lastDrill: m?.drill ? { at: m.drill.last.at, ok: m.drill.last.ok, rtoSeconds: m.drill.last.rtoSeconds, rpoSeconds: m.drill.last.rpoSeconds } : null,
    interrupted: interruptedOf(f.interrupted.find((j) => j.name === name)),
  };
}

const interruptedOf = (j: Journal | undefined): ListEntry['interrupted'] =>
  j ? { command: j.command, step: stepName(j), status: j.status, since: j.startedAt, rerun: j.rerun, error: j.error } : null;
