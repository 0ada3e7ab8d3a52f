// A managed cluster as the source of a restore into another cluster (branch create, branch sync,
// replica create and rebuild): its facts and guards (it is never stopped, written to or reconfigured;
// its stanza never receives the copy's WAL), and the restore of its backup.
import type { Context } from '../context.js';
import { notManaged } from '../guards/cluster.js';
import type { HostCluster } from '../pg/clusters.js';
import * as pgbr from '../pgbackrest/commands.js';
import { fail, pass, required, type Guard } from '../plan/types.js';
import * as pg from '../pg/commands.js';
import { cowCopyStep, cowRecoverySettings } from './cow.js';
import { archiveHistorySteps, backupWalArchived, emptySource, gatherSource, repoIsAttached, hasBackupGuard, selectSet, stanzaIsClustersOwn, targetGuards, timelineHistoryAvailable, type RestoreWant, type SourceFacts } from './source.js';
import { expectOf, type RestoreExpect, type RestoreSource } from './sequence.js';
import type { LiveCluster } from './steps.js';
import type { TargetTime } from './target.js';
import type { Cmd, Runner } from '../runner/types.js';
import { currentPrimary, type ManagedCluster } from '../state/store.js';
import { stanzaScope } from '../pgbackrest/commands.js';

export interface ParentFacts extends SourceFacts {
  record: ManagedCluster | undefined;
  cluster: HostCluster | undefined;
  /** Entries of pg_tblspc: tablespaces outside the data directory. */
  tablespaces: string[];
  /** Top-level entries of the parent's archive directory before anything runs. */
  archiveDir: string | undefined;
  archiveBefore: string[];
}

export async function gatherParent(ctx: Context, runner: Runner, name: string, managed: ManagedCluster[], clusters: HostCluster[], want: RestoreWant = {}): Promise<ParentFacts> {
  // An app's primary now: after a failover, the promoted replica (the branch keeps the app's name).
  const record = currentPrimary(managed, name);
  const cluster = record && clusters.find((c) => c.name === name && c.version === record.version);
  const f: ParentFacts = { ...emptySource(), record, cluster, tablespaces: [], archiveDir: undefined, archiveBefore: [] };
  if (!record || !cluster?.dataDir || ctx.host.uid !== 0) return f;
  Object.assign(f, await gatherSource(ctx, runner, record, cluster, want));
  f.tablespaces = await ctx.fs.readdir(`${cluster.dataDir}/pg_tblspc`);
  const archiveId = f.stanza?.archive.at(-1)?.id;
  if (archiveId) {
    f.archiveDir = `${record.repoPath}/archive/${record.stanza}/${archiveId}`;
    f.archiveBefore = await ctx.fs.readdir(f.archiveDir);
  }
  return f;
}

function tablespaceGuard(p: ParentFacts, label: string): Guard {
  return {
    id: 'parent-has-no-tablespaces',
    check: () =>
      p.tablespaces.length
        ? fail(`${label} has tablespaces outside its data directory (pg_tblspc: ${p.tablespaces.join(', ')}): a restore would write into the parent's tablespace directories`, 'branches of clusters with tablespaces are not supported yet')
        : pass,
  };
}

export function parentGuards(p: ParentFacts, label: string, at: TargetTime | undefined, now: Date): Guard[] {
  const guards: Guard[] = [
    {
      id: 'parent-is-managed',
      check: () => (!p.record ? notManaged(label) : !p.cluster ? fail(`${label} is managed by pgmam but the host has no such cluster`) : pass),
    },
  ];
  if (!p.record || !p.cluster) return guards;
  guards.push(repoIsAttached(p), stanzaIsClustersOwn(p, label, p.record.stanza, p.cluster), timelineHistoryAvailable(p, label), tablespaceGuard(p, label));
  if (at) guards.push(...targetGuards(p, at, { label, name: p.record.name, now, online: p.cluster.running, timelines: p.record.timelines }));
  else guards.push(hasBackupGuard(p, label));
  guards.push(backupWalArchived(p, selectSet(p, at).set));
  return guards;
}

/** The restore of the parent's backup into the branch's data directory, archiving off. */
export function restoreFromParent(p: ParentFacts, branchDataDir: string, at: TargetTime | undefined, stanzaDir: string, onlyDb?: string): { restore: Cmd; what: string; expect: RestoreExpect } {
  const set = selectSet(p, at).set;
  const scope = stanzaScope(p.record?.stanza ?? '?', stanzaDir);
  const restore = pgbr.restore(scope, {
    set: set?.label ?? '?',
    type: at ? 'time' : 'default',
    target: at?.text,
    targetTimeline: p.currentTimeline,
    pg1Path: branchDataDir,
    archiveModeOff: true,
    repo: p.repo.index,
    dbInclude: onlyDb,
  });
  const from = p.repo.index === 1 ? 'the local repository' : `repository ${p.repo.name} (repo${p.repo.index})`;
  const only = onlyDb ? ` (only the database ${onlyDb} and the system ones; the others are laid down as zeroed files)` : '';
  return { restore, expect: expectOf(set, p.stanza), what: `restore the parent's backup ${set?.label ?? '?'}${only} into ${branchDataDir}${at ? ` and replay to ${at.text}` : ' and replay its whole archive'}, archiving off, from ${from}: ${p.repo.why}` };
}

/** The parent as a source of the restore sequence: its history, a WAL switch when it runs, the restore. */
export function parentSource(p: ParentFacts, branchDataDir: string, at: TargetTime | undefined, stanzaDir: string, onlyDb?: string): RestoreSource {
  const live = parentLive(p);
  return {
    kind: 'stanza',
    facts: p,
    dataDir: p.cluster?.dataDir ?? '',
    scope: stanzaScope(p.record?.stanza ?? '?', stanzaDir),
    // Makes the parent's newest commits restorable; changes no data of the parent.
    live,
    ...restoreFromParent(p, branchDataDir, at, stanzaDir, onlyDb),
  };
}

/** The running parent as the restore sequence's cluster shape. */
const parentLive = (p: ParentFacts): LiveCluster | undefined =>
  p.cluster?.running ? { id: { version: p.record?.version ?? '?', name: p.record!.name }, port: p.cluster.port, dataDir: p.cluster.dataDir!, logFile: p.cluster.logFile } : undefined;

/** The running parent copied by reflink into the branch's data directory, then recovered from its archive to the end (restore/cow.ts). */
export function parentCowSource(p: ParentFacts, branchDataDir: string, o: { stanzaDir: string; owner: { uid: number; gid: number }; branch: string; archiveWaitTimeout: number; now: Date }): RestoreSource {
  const live = required(parentLive(p), 'a running parent');
  const scope = stanzaScope(p.record?.stanza ?? '?', o.stanzaDir);
  return {
    kind: 'cow',
    history: archiveHistorySteps(p, live.dataDir, scope),
    copy: cowCopyStep({ source: live, dataDir: branchDataDir, owner: o.owner, label: `pgmam ${o.branch}`, archiveWaitTimeout: o.archiveWaitTimeout }),
    recoverySettings: cowRecoverySettings(p.record?.stanza ?? '?', branchDataDir, scope.configIncludePath, p.currentTimeline ?? 1),
    why: `recover the copy of ${pg.clusterLabel(live.id)} from its archive to the end, archiving off`,
    createdAt: o.now.toISOString(),
  };
}

export const noParent = (): ParentFacts => ({ ...emptySource(), record: undefined, cluster: undefined, tablespaces: [], archiveDir: undefined, archiveBefore: [] });
