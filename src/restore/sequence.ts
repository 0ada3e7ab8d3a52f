// The restore sequence, written once for pitr, pitr --undo, branch create and branch sync: make the
// source's newest commits restorable, free the data directory (a replaced one is preserved, never
// overwritten), lay the data down, verify isolation, start, wait for promotion, verify the recovery
// and that the source's archive received nothing. Each command adds only what differs around it.
import { closeToUsersStep, handOverStep } from '../steps/hand-over.js';
import type { Cmd } from '../runner/types.js';
import type { PlanEnv } from '../plan/command.js';
import type { Step } from '../plan/types.js';
import type { PgbrScope } from '../pgbackrest/commands.js';
import type { BackupInfo, StanzaInfo } from '../pgbackrest/info.js';
import * as pg from '../pg/commands.js';
import { dirGrowth, replaySpan } from '../steps/measures.js';
import type { Preserved } from '../state/store.js';
import { archiveHistorySteps, type SourceFacts } from './source.js';
import {
  createDataDirStep,
  emptyDataDirStep,
  preserveDataDirStep,
  putBackDataDirStep,
  requestRecoveryStep,
  restoreStep,
  startClusterStep,
  stopClusterStep,
  switchWalStep,
  verifyIsolationStep,
  verifyRecoveredStep,
  verifySourceArchiveStep,
  waitPromotedStep,
  type LiveCluster,
  type RecoveredState,
} from './steps.js';

export type RestoreSource =
  /** A backup of a stanza plus its archive (pgbackrest restore). */
  | {
      kind: 'stanza';
      facts: SourceFacts;
      /** The source cluster's data directory (its pg_wal may hold a history file the archive lacks). */
      dataDir: string;
      scope: PgbrScope;
      /** The source runs: commit, switch WAL and wait for the archive first. */
      live: LiveCluster | undefined;
      restore: Cmd;
      what: string;
      /** What a terminal's progress line measures against: the backup's size, the WAL its recovery replays. */
      expect?: RestoreExpect;
    }
  /** A data directory an earlier restore preserved, put back and recovered along its own timeline. */
  | { kind: 'preserved'; preserved: Preserved; recoverySettings: string[]; why: string; createdAt: string }
  /** A running cluster copied by reflink inside a backup (restore/cow.ts), then recovered from its archive. */
  | { kind: 'cow'; history: Step[]; copy: Step; recoverySettings: string[]; why: string; createdAt: string };

export interface RestoreExpect {
  bytes: number | undefined;
  replay: { from: number; to: number | undefined } | undefined;
}

/** What restoring `set` of `stanza` will lay down and replay. */
export const expectOf = (set: BackupInfo | undefined, stanza: StanzaInfo | undefined): RestoreExpect => ({ bytes: set?.info?.size, replay: replaySpan(set, stanza) });

export type RestoreInto =
  /** An existing cluster's data directory: stopped if running, moved aside as `preserved`. */
  | { kind: 'replace'; name: string; running: boolean; preserved: Preserved }
  /** A cluster this run creates (`make`): its initdb'd data directory is emptied. */
  | { kind: 'new'; make: Step[] };

export interface RestoreSequenceSpec {
  source: RestoreSource;
  into: RestoreInto;
  /** The cluster the data lands in. */
  live: LiveCluster;
  target: { previousTimeline: number; targetUs?: number; targetText?: string };
  /** A copy of another cluster's data: before its first start, archiving must be off and its settings its own. */
  isolation?: { archiveCommand?: string };
  /** The source's archive directory and its entries before: nothing of the copy's timeline may appear. */
  parentArchive?: { dir: string; before: string[] };
  /** Steps right before the data is laid down (a branch's extra configuration). */
  beforeRestore?: Step[];
  /** Steps once the data is laid down, before the first start (pitr --latest of a stopped cluster: its unarchived WAL). */
  afterRestore?: Step[];
  owner: { uid: number; gid: number };
  clustersDir: string;
  /** pgmam's state directory: where the closed cluster's pg_hba.conf rules wait for hand-over. */
  stateDir: string;
  systemd: boolean;
  recoveryTimeout: number;
  archiveWaitTimeout: number;
}

export interface RestoreSequence {
  steps: Step[];
  /** Opens the restored cluster to users; the command places it (after what must precede users). */
  handOver: Step;
  /** Filled in by verify-recovery when it runs: the new timeline and the last replayed commit. */
  recovered: RecoveredState;
}

export function restoreSequence(s: RestoreSequenceSpec): RestoreSequence {
  const { source, into, live } = s;
  const recovered: RecoveredState = { timeline: 0, lastReplayUs: undefined };
  const steps: Step[] = [];
  if (source.kind === 'stanza') {
    steps.push(...archiveHistorySteps(source.facts, source.dataDir, source.scope));
    if (source.live) steps.push(switchWalStep(source.live, s.archiveWaitTimeout));
  }
  // (A copy-on-write copy needs no WAL switch first: its backup ends with one.)
  if (source.kind === 'cow') steps.push(...source.history);
  if (into.kind === 'replace') {
    if (into.running) steps.push(stopClusterStep(live, s.systemd));
    // The restore starts closed to users (rule 1): until hand-over only pgmam's own steps connect.
    steps.push(closeToUsersStep(live.id, s.stateDir, s.systemd));
    steps.push(preserveDataDirStep(into.name, live.dataDir, into.preserved, s.clustersDir));
  } else {
    steps.push(...into.make);
  }
  // A restore or a copy lands in an empty data directory.
  if (source.kind !== 'preserved') steps.push(into.kind === 'replace' ? createDataDirStep(live.dataDir, s.owner) : emptyDataDirStep(live.dataDir, s.owner));
  if (source.kind === 'stanza') {
    steps.push(...(s.beforeRestore ?? []), restoreStep(source.restore, source.what, dirGrowth(`restore into ${pg.clusterLabel(live.id)}`, live.dataDir, source.expect?.bytes)));
  } else if (source.kind === 'cow') {
    steps.push(...(s.beforeRestore ?? []), source.copy, requestRecoveryStep(live.dataDir, source.recoverySettings, source.why, s.owner, source.createdAt));
  } else {
    if (into.kind !== 'replace') throw new Error('internal: a preserved data directory is put back only in place of the current one');
    steps.push(...(s.beforeRestore ?? []), putBackDataDirStep(into.name, source.preserved, live.dataDir, s.clustersDir));
    steps.push(requestRecoveryStep(live.dataDir, source.recoverySettings, source.why, s.owner, source.createdAt));
  }
  steps.push(...(s.afterRestore ?? []));
  if (s.isolation) steps.push(verifyIsolationStep(live, s.isolation));
  steps.push(startClusterStep(live, s.systemd, s.recoveryTimeout), waitPromotedStep(live, s.recoveryTimeout, source.kind === 'stanza' ? source.expect?.replay : undefined), verifyRecoveredStep(live, s.target, recovered));
  if (s.parentArchive) steps.push(verifySourceArchiveStep(s.parentArchive.dir, s.parentArchive.before, recovered));
  return { steps, recovered, handOver: handOverStep(live.id, s.stateDir, s.systemd) };
}

/** What every restore sequence takes from the plan's environment, besides its source and target. */
export const restoreEnv = (env: Pick<PlanEnv, 'config' | 'paths' | 'host'>, owner: { uid: number; gid: number }) => ({
  owner,
  clustersDir: env.paths.clustersDir,
  stateDir: env.paths.stateDir,
  systemd: env.host.systemd,
  recoveryTimeout: env.config['recovery-timeout'],
  archiveWaitTimeout: env.config['archive-wait-timeout'],
});
