// The restore sequence (restore/sequence.ts): one order for pitr, pitr --undo, branch create and branch sync.
import { describe, expect, it } from 'vitest';
import type { Step } from '../../../src/plan/types.js';
import { restoreSequence, type RestoreSequenceSpec } from '../../../src/restore/sequence.js';
import { emptySource } from '../../../src/restore/source.js';
import type { LiveCluster } from '../../../src/restore/steps.js';

const live: LiveCluster = { id: { version: '15', name: 'app1' }, port: 5433, dataDir: '/var/lib/postgresql/15/app1', logFile: undefined };
const source: LiveCluster = { id: { version: '15', name: 'parent' }, port: 5432, dataDir: '/var/lib/postgresql/15/parent', logFile: undefined };
const preserved = { path: '/var/lib/postgresql/15/app1.pre-pitr-x', reason: 'pitr', createdAt: 'x' };
const base = { live, owner: { uid: 101, gid: 104 }, clustersDir: '/s/clusters', stateDir: '/s', systemd: false, recoveryTimeout: 60, archiveWaitTimeout: 60, target: { previousTimeline: 1 } };
const stanza = (running: boolean): RestoreSequenceSpec['source'] => ({
  kind: 'stanza',
  facts: { ...emptySource(), currentTimeline: 1 },
  dataDir: source.dataDir,
  scope: { stanza: 'parent', configIncludePath: undefined },
  live: running ? source : undefined,
  restore: { argv: ['pgbackrest', '--stanza=parent', 'restore'], asUser: 'postgres', effect: 'write' },
  what: 'restore',
});
const ids = (s: RestoreSequenceSpec) => restoreSequence(s).steps.map((x) => x.id);
const made: Step = { id: 'create-cluster', title: 'make it', effect: 'write', run: async () => undefined };

describe('restore sequence', () => {
  it('pitr of a running cluster: switch WAL, stop, preserve, restore into an empty directory, start, promote, verify', () => {
    expect(ids({ ...base, source: stanza(true), into: { kind: 'replace', name: 'app1', running: true, preserved } })).toEqual([
      'switch-wal', 'stop-cluster', 'close-to-users', 'preserve-datadir', 'create-datadir', 'restore-backup', 'start-cluster', 'wait-promoted', 'verify-recovery',
    ]);
  });

  it('pitr --undo: the preserved directory goes back and recovers along its own timeline', () => {
    const undo: RestoreSequenceSpec = { ...base, source: { kind: 'preserved', preserved, recoverySettings: ["recovery_target_timeline = 'current'"], why: 'own timeline', createdAt: 'x' }, into: { kind: 'replace', name: 'app1', running: false, preserved: { ...preserved, path: '/x.pre-undo' } } };
    expect(ids(undo)).toEqual(['close-to-users', 'preserve-datadir', 'put-back-datadir', 'request-recovery', 'start-cluster', 'wait-promoted', 'verify-recovery']);
  });

  it('branch create: the new cluster is made, emptied, restored with its isolation checked before the first start, the parent archive checked after', () => {
    const s: RestoreSequenceSpec = { ...base, source: stanza(true), into: { kind: 'new', make: [made] }, isolation: { archiveCommand: 'x' }, parentArchive: { dir: '/a', before: [] } };
    expect(ids(s)).toEqual(['switch-wal', 'create-cluster', 'empty-datadir', 'restore-backup', 'verify-isolation', 'start-cluster', 'wait-promoted', 'verify-recovery', 'verify-parent-archive']);
  });

  it('branch sync of a stopped branch from a stopped parent: no switch, no stop; extra steps right before the restore', () => {
    const s: RestoreSequenceSpec = { ...base, source: stanza(false), into: { kind: 'replace', name: 'app1', running: false, preserved }, isolation: { archiveCommand: 'x' }, beforeRestore: [{ ...made, id: 'apply-branch-conf' }] };
    expect(ids(s)).toEqual(['close-to-users', 'preserve-datadir', 'create-datadir', 'apply-branch-conf', 'restore-backup', 'verify-isolation', 'start-cluster', 'wait-promoted', 'verify-recovery']);
  });

  it('owns the recovered state: verify-recovery fills it in for the steps that follow', async () => {
    const seq = restoreSequence({ ...base, source: stanza(false), into: { kind: 'replace', name: 'app1', running: false, preserved } });
    expect(seq.recovered).toEqual({ timeline: 0, lastReplayUs: undefined });
    const verify = seq.steps.find((s) => s.id === 'verify-recovery')!;
    const ctx = { runner: { run: async () => ({ argv: [], exitCode: 0, stdout: 'false|000000020000000000000005|', stderr: '', durationMs: 0 }) } };
    await (verify.run as (c: unknown) => Promise<void>)(ctx);
    expect(seq.recovered.timeline).toBe(2);
  });
});
