// The stanza a restore reads from, as seen before anything changes: its backups, the source
// cluster's timeline and history, and the checks every restore from it needs (pitr, branch).
import type { Context } from '../context.js';
import type { HostCluster } from '../pg/clusters.js';
import * as pg from '../pg/commands.js';
import { parseControlData, type ControlData } from '../pg/controldata.js';
import * as pgbr from '../pgbackrest/commands.js';
import { parseStanzaFile } from '../pgbackrest/config.js';
import { archiveMax, parseInfo, type BackupInfo, type StanzaInfo } from '../pgbackrest/info.js';
import { fail, pass, type Guard, type Step } from '../plan/types.js';
import type { Runner } from '../runner/types.js';
import type { ManagedCluster } from '../state/store.js';
import { newestArchivedAt } from '../host/facts.js';
import { readRepoView } from '../host/inventory.js';
import { LOCAL_REPO } from '../state/repos.js';
import { stanzaScope } from '../pgbackrest/commands.js';
import { formatUs, type TargetTime } from './target.js';
import { placeInWindow, recoveryWindow, type RecoveryWindow } from './window.js';
import { abandonedPeriods, chooseSet, historyFileName, lineage, parseHistory, timelineOfWal, usableBackups, type HistoryEntry } from './timeline.js';

export interface SourceFacts {
  /** Online only. */
  server: { inRecovery: boolean; timeline: number | undefined } | undefined;
  control: ControlData | undefined;
  stanza: StanzaInfo | undefined;
  stanzaProblem: string | undefined;
  stanzaFile: { dataDir: string | undefined; port: number | undefined } | undefined;
  currentTimeline: number | undefined;
  history: HistoryEntry[];
  /** Where the current timeline's history file is (timeline 1 has none). */
  historySource: 'archive' | 'pg_wal' | 'missing' | 'none';
  archivedAt: Date | undefined;
  /** The repository the restore reads (its backups are `stanza`'s), and why that one. */
  repo: { name: string; index: number; why: string };
  /** --repo named a repository the app does not have. */
  repoProblem: string | undefined;
}

/** What one repository holds of the stanza, for the choice of where a restore reads. */
export interface RepoCandidate {
  name: string;
  index: number;
  stanza: StanzaInfo | undefined;
  problem: string | undefined;
  archivedAt: Date | undefined;
  /** WAL it missed while suspended (epoch µs; to null: no full has bridged it yet). */
  gaps?: Array<{ fromUs: number; toUs: number | null }>;
}

/**
 * What a repository can restore to a target given the WAL it missed: no backup whose replay to the
 * target would cross a gap, and a target inside a gap is not covered at all.
 */
export function acrossGaps(c: RepoCandidate, targetUs: number | undefined): { stanza: StanzaInfo | undefined; problem?: string } {
  const gaps = c.gaps ?? [];
  if (!c.stanza || !gaps.length) return { stanza: c.stanza };
  const end = targetUs ?? Number.POSITIVE_INFINITY;
  const inside = gaps.find((g) => end > g.fromUs && (g.toUs === null || end < g.toUs));
  if (inside) return { stanza: c.stanza, problem: `its archive misses WAL from ${new Date(inside.fromUs / 1000).toISOString()} to ${inside.toUs === null ? 'its next full backup' : new Date(inside.toUs / 1000).toISOString()} (it was suspended)` };
  const backup = c.stanza.backup.filter((b) => gaps.every((g) => !(b.timestamp.stop * 1_000_000 < (g.toUs ?? Number.POSITIVE_INFINITY) && end > g.fromUs)));
  return { stanza: { ...c.stanza, backup } };
}

/** What the restore wants: a time (none: the end of the archive), and a repository named by --repo. */
export interface RestoreWant {
  target?: TargetTime | undefined;
  repo?: string | undefined;
}

export const emptySource = (): SourceFacts => ({
  server: undefined,
  control: undefined,
  stanza: undefined,
  stanzaProblem: undefined,
  stanzaFile: undefined,
  currentTimeline: undefined,
  history: [],
  historySource: 'none',
  archivedAt: undefined,
  repo: { name: LOCAL_REPO, index: 1, why: 'the local repository' },
  repoProblem: undefined,
});

/**
 * Where a restore reads: the repository --repo names, else the local one when it covers the target,
 * else the first attached one that does (after a lost local repository, say). Covering: a usable
 * backup ending before the target, and (for an attached repository, whose archive pgmam cannot
 * switch into first) WAL archived up to the target. None covers: the local one, and the guards say why.
 */
export function chooseRepo(f: Pick<SourceFacts, 'currentTimeline' | 'history'>, candidates: RepoCandidate[], want: RestoreWant): { chosen: RepoCandidate; why: string } | { problem: string } {
  const targetUs = want.target?.epochUs;
  // Each repository as far as the WAL it missed lets it restore to this target.
  candidates = candidates.map((c) => {
    const g = acrossGaps(c, targetUs);
    return { ...c, stanza: g.stanza, problem: c.problem ?? g.problem };
  });
  if (want.repo) {
    const named = candidates.find((c) => c.name === want.repo);
    return named ? { chosen: named, why: `--repo ${want.repo}` } : { problem: `the app is not attached to repository ${want.repo} (it has ${candidates.map((c) => c.name).join(', ')})` };
  }
  const what = want.target ? want.target.text : 'the end of the archive';
  const gap = (c: RepoCandidate): string | undefined => {
    if (c.problem) return c.problem;
    if (!selectSet({ ...f, stanza: c.stanza } as SourceFacts, want.target).set) return want.target ? `has no usable backup ending before ${want.target.text}` : 'has no usable backup';
    if (c.index !== 1 && want.target && !(c.archivedAt && c.archivedAt.getTime() * 1000 >= want.target.epochUs)) return `its archive ends at ${c.archivedAt?.toISOString() ?? '(nothing archived)'}`;
    return undefined;
  };
  const gaps = candidates.map((c) => ({ c, gap: gap(c) }));
  const first = gaps.find((x) => !x.gap);
  if (!first) return { chosen: candidates[0]!, why: 'the local repository (no repository covers the target)' };
  if (first.c.index === 1) return { chosen: first.c, why: `the local repository covers ${what}` };
  const local = gaps.find((x) => x.c.index === 1);
  return { chosen: first.c, why: `only repository ${first.c.name} covers ${what}: the local one ${local?.gap ?? 'does not'}` };
}

/** Read-only (runner must be the read-only one). */
export async function gatherSource(ctx: Context, runner: Runner, record: ManagedCluster, cluster: HostCluster, want: RestoreWant = {}): Promise<SourceFacts> {
  const f = emptySource();
  const dataDir = cluster.dataDir!;
  const scope = stanzaScope(record.stanza, ctx.paths.stanzaDir);
  const [server, control, info, stanzaText] = await Promise.all([
    cluster.running
      ? runner
          .run(pg.psqlValue({ version: cluster.version, port: cluster.port }, "select pg_is_in_recovery()::text || '|' || case when pg_is_in_recovery() then '' else pg_walfile_name(pg_current_wal_lsn()) end"), { check: false })
          .then((r) => {
            if (r.exitCode !== 0) return undefined;
            const [rec, wal] = r.stdout.trim().split('|');
            return { inRecovery: rec === 'true', timeline: wal ? timelineOfWal(wal) : undefined };
          })
      : Promise.resolve(undefined),
    runner.run(pg.pgControlData(cluster.version, dataDir), { check: false }).then((r) => (r.exitCode === 0 ? parseControlData(r.stdout) : undefined)),
    runner.run(pgbr.info(scope), { check: false }),
    ctx.fs.readText(record.stanzaFile),
  ]);
  f.server = server;
  f.control = control;
  const local: RepoCandidate = { name: LOCAL_REPO, index: 1, stanza: undefined, problem: undefined, archivedAt: undefined };
  if (info.exitCode !== 0) local.problem = `pgbackrest info failed: ${info.stderr.trim().split('\n').at(-1) ?? ''}`;
  else {
    const s = parseInfo(info.stdout)[0];
    if (!s || s.status.code !== 0) local.problem = `stanza ${record.stanza}: ${s?.status.message ?? 'not found'}`;
    local.stanza = s;
  }
  f.stanza = local.stanza;
  f.stanzaProblem = local.problem;
  const parsed = stanzaText === undefined ? undefined : parseStanzaFile(stanzaText);
  f.stanzaFile = parsed ? { dataDir: parsed.dataDir, port: parsed.port } : undefined;
  f.currentTimeline = server?.timeline ?? control?.timeline;

  const tli = f.currentTimeline;
  if (tli && tli > 1 && f.stanza) {
    // Recovery pinned to timeline N reads N's history file from the archive. pgBackRest 2.45's expire
    // can remove it (seen after an undo); the cluster's own pg_wal still has it, and pgmam re-archives it.
    const archiveId = f.stanza.archive.at(-1)?.id;
    const inArchive = await ctx.fs.readText(`${record.repoPath}/archive/${record.stanza}/${archiveId}/${historyFileName(tli)}`);
    const inPgWal = inArchive === undefined ? await ctx.fs.readText(`${dataDir}/pg_wal/${historyFileName(tli)}`) : undefined;
    f.historySource = inArchive !== undefined ? 'archive' : inPgWal !== undefined ? 'pg_wal' : 'missing';
    const text = inArchive ?? inPgWal;
    f.history = text ? parseHistory(text) : [];
  }
  if (f.stanza) f.archivedAt = await newestArchivedAt(ctx.fs, record.repoPath, f.stanza);
  local.archivedAt = f.archivedAt;
  // A suspended repository is not in the stanza file (nothing to read there) and misses WAL anyway.
  const attached = await Promise.all(record.repos.filter((a) => !a.suspended).map((a) => readRepoView(runner, ctx.paths.stanzaDir, record.stanza, a)));
  const gapsOf = (name: string) => (record.repos.find((a) => a.name === name)?.gaps ?? []).map((g) => ({ fromUs: Date.parse(g.from) * 1000, toUs: g.to === null ? null : Date.parse(g.to) * 1000 }));
  const candidates = [
    local,
    ...attached.map((v): RepoCandidate => ({ name: v.name, index: v.index, stanza: v.stanza, problem: v.reachable ? (v.stanza && v.stanza.status.code !== 0 ? v.stanza.status.message : undefined) : (v.problem ?? 'unreachable'), archivedAt: v.archivedAt, gaps: gapsOf(v.name) })),
    ...record.repos.flatMap((a): RepoCandidate[] => (a.suspended ? [{ name: a.name, index: a.index, stanza: undefined, problem: `repository ${a.name} is suspended for ${record.name} since ${a.suspended.at} (backup puts it back once it answers)`, archivedAt: undefined }] : [])),
  ];
  const choice = chooseRepo(f, candidates, want);
  if ('problem' in choice) f.repoProblem = choice.problem;
  else {
    f.stanza = choice.chosen.stanza;
    f.stanzaProblem = choice.chosen.problem;
    f.archivedAt = choice.chosen.archivedAt;
    f.repo = { name: choice.chosen.name, index: choice.chosen.index, why: choice.why };
  }
  return f;
}

/** --repo names a repository the app has. */
export const repoIsAttached = (f: SourceFacts): Guard => ({ id: 'repo-is-attached', check: () => (f.repoProblem ? fail(f.repoProblem, 'see pgmam repo list') : pass) });

export interface Selection {
  set: BackupInfo | undefined;
  usable: BackupInfo[];
}

/** The set along the current timeline: the newest ending before the target, or the newest at all. */
export function selectSet(f: SourceFacts, target: TargetTime | undefined): Selection {
  if (!f.stanza || f.currentTimeline === undefined) return { set: undefined, usable: [] };
  const usable = usableBackups(f.stanza.backup, f.currentTimeline, f.history);
  return { set: target ? chooseSet(usable, target.epochUs) : usable.at(-1), usable };
}

const sec = (epochSeconds: number) => formatUs(epochSeconds * 1_000_000).replace(/\.0+\+00$/, '+00');

/** The stanza is this cluster's own: same system identifier, pg1-path and pg1-port. */
export function stanzaIsClustersOwn(f: SourceFacts, label: string, stanza: string, cluster: HostCluster): Guard {
  return {
    id: 'stanza-is-this-clusters',
    check() {
      if (f.stanzaProblem) return fail(f.stanzaProblem);
      const why: string[] = [];
      const db = f.stanza?.db.at(-1);
      if (db && f.control?.systemId && db['system-id'] !== f.control.systemId) why.push(`its system identifier ${db['system-id']} is not the cluster's ${f.control.systemId}`);
      if (f.stanzaFile?.dataDir !== cluster.dataDir) why.push(`its pg1-path ${f.stanzaFile?.dataDir ?? '(none)'} is not the cluster's ${cluster.dataDir}`);
      if (f.stanzaFile?.port !== cluster.port) why.push(`its pg1-port ${f.stanzaFile?.port ?? '(none)'} is not the cluster's ${cluster.port}`);
      return why.length ? fail(`stanza ${stanza} does not belong to ${label}: ${why.join('; ')}`, 'no cross-cluster restore') : pass;
    },
  };
}

export function timelineHistoryAvailable(f: SourceFacts, label: string): Guard {
  return {
    id: 'timeline-history-is-available',
    check: () =>
      f.currentTimeline === undefined
        ? fail(`cannot read the current timeline of ${label} (pg_controldata failed)`)
        : f.historySource === 'missing'
          ? fail(`the history file of timeline ${f.currentTimeline} is neither in the archive nor in pg_wal: a restore cannot be pinned to it`)
          : pass,
  };
}

/** The recovery window a restore from the chosen repository reaches (the one list shows: one function). */
export function sourceWindow(f: SourceFacts, o: { now: Date; online: boolean; timelines: ManagedCluster['timelines'] }): RecoveryWindow | null {
  // A running cluster's WAL is switched and archived (into every repository of its stanza) before the restore.
  const end = o.online ? o.now : f.archivedAt;
  return recoveryWindow({ backups: f.stanza?.backup ?? [], currentTimeline: f.currentTimeline, history: f.history, end, timelines: o.timelines });
}

/** The target is not in the future and lies in the recovery window along the current timeline, outside what only an abandoned one covers. */
export function targetGuards(f: SourceFacts, t: TargetTime, o: { label: string; name: string; now: Date; online: boolean; timelines: ManagedCluster["timelines"] }): Guard[] {
  const { set, usable } = selectSet(f, t);
  const first = usable[0];
  const nowUs = o.now.getTime() * 1000;
  const window = sourceWindow(f, o);
  const place = placeInWindow(window, t.epochUs);
  return [
    { id: 'target-is-not-in-the-future', check: () => (t.epochUs > nowUs ? fail(`target ${t.text} is in the future (now is ${formatUs(nowUs)})`) : pass) },
    {
      id: 'target-is-in-recovery-window',
      check() {
        if (!first || place === 'no-window') return fail(`${o.label} has no backup on its current timeline to restore from`, `take one: pgmam backup ${o.label.split('/').pop()} --type full`);
        if (place === 'before' || !set)
          return fail(
            `target ${t.text} is before the end of the first usable backup (${first.label}, ended ${sec(first.timestamp.stop)})`,
            `the recovery window starts at ${sec(first.timestamp.stop + 1)} (pgBackRest needs the target at least one whole second after a backup's end)`,
          );
        if (place === 'after' && t.epochUs <= nowUs)
          return fail(`target ${t.text} is after the newest archived WAL (${window?.to ?? '?'}) of the stopped cluster`, 'choose an earlier time, or use --latest');
        return pass;
      },
    },
    {
      id: 'target-is-on-current-timeline',
      check() {
        if (typeof place !== 'object') return pass;
        const hit = abandonedPeriods(o.timelines, lineage(f.currentTimeline ?? 0, f.history)).find((p) => t.epochUs > p.fromUs && t.epochUs < p.untilUs);
        return fail(
          `target ${t.text} lies in a period only the abandoned timeline ${hit?.timeline ?? '?'} covers (${place.excluded.from} to ${place.excluded.to}, undone by an earlier pitr)`,
          `choose a time outside that period; that state is in the data directory the earlier pitr preserved (pgmam pitr ${o.name} --undo)`,
        );
      },
    },
  ];
}

export function hasBackupGuard(f: SourceFacts, label: string): Guard {
  return { id: 'cluster-has-backup', check: () => (selectSet(f, undefined).set ? pass : fail(`${label} has no backup on its current timeline to restore from`)) };
}

export function backupWalArchived(f: SourceFacts, set: BackupInfo | undefined): Guard {
  return {
    id: 'backup-wal-is-archived',
    check() {
      const max = f.stanza && archiveMax(f.stanza);
      const stop = set?.archive?.stop;
      return set && stop && (!max || max.wal < stop) ? fail(`WAL ${stop} needed by backup ${set.label} is not in the archive (newest: ${max?.wal ?? 'none'})`) : pass;
    },
  };
}

/** When the source's current history file is only in its pg_wal, put it back into its own archive first. */
export function archiveHistorySteps(f: SourceFacts, dataDir: string, scope: pgbr.PgbrScope): Step[] {
  if (f.historySource !== 'pg_wal' || f.currentTimeline === undefined) return [];
  const file = `${dataDir}/pg_wal/${historyFileName(f.currentTimeline)}`;
  return [{ id: 'archive-timeline-history', title: `put timeline ${f.currentTimeline}'s history file back into the archive`, effect: 'write', run: pgbr.archivePush(scope, file) }];
}
