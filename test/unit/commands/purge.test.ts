// purge: what a dropped app left (its kept stanza, stanza file, preserved directories, record), guarded.
import { describe, expect, it } from 'vitest';
import { gatherPurge, purgeCommand, recoverPurge, type PurgeFacts, type PurgeJournal, type PurgeOptions } from '../../../src/commands/purge/purge.js';
import { assemblePlan } from '../../../src/plan/command.js';
import type { Leftover } from '../../../src/host/leftovers.js';
import type { Journal } from '../../../src/state/journal.js';
import { fakeContext } from '../fakes.js';
import { aRecord, planEnv } from '../fixtures.js';

const env = planEnv();
const dir = '/var/lib/postgresql/15/app1';
const record = aRecord('app1', { dropped: { at: '2026-11-22T10:00:00.000Z', dataDir: dir }, preserved: [{ path: `${dir}.pre-pitr-x`, reason: 'pitr', createdAt: '2026-11-22T06:00:00.000Z' }] });
const leftover: Leftover = { name: 'app1', version: '15', stanza: 'app1', stanzaFile: '/etc/pgbackrest/conf.d/app1.conf', stanzaFileExists: true, repoPath: '/var/lib/pgbackrest', dataDir: dir, preserved: record.preserved, droppedAt: record.dropped!.at, record };
const o: PurgeOptions = { name: 'app1', json: false, dryRun: false, yes: true, keepOnError: false };
const facts = (over: Partial<PurgeFacts> = {}): PurgeFacts => ({ uid: 0, leftover, live: undefined, hostCluster: undefined, lock: { holder: undefined, alive: false }, journal: undefined, ...over });
const refusals = (f: PurgeFacts) => assemblePlan(purgeCommand, f, o, env).guards.map((g) => g.check()).filter((r) => !r.ok);

describe('purge', () => {
  it('deletes the stanza everywhere, the stanza file, the preserved directories, then the record; typed name', () => {
    const plan = assemblePlan(purgeCommand, facts(), o, env);
    expect(plan.steps.map((s) => s.id)).toEqual(['delete-stanza', 'clear-archive-spool', 'remove-stanza-file', 'remove-preserved', 'forget-app']);
    expect(plan).toMatchObject({ destructive: true, typeToConfirm: 'app1', locks: ['app1'], journal: { rerun: 'pgmam purge app1 --yes' } });
  });

  it.each([
    ['an app pgmam manages', { leftover: undefined, live: '15/app1' }, /belongs to 15\/app1, which pgmam manages/],
    ['a cluster on the host', { leftover: undefined, hostCluster: '15/app1' }, /15\/app1 is a cluster on this host/],
    ['nothing left', { leftover: undefined }, /no dropped app app1 left anything/],
    ['a preserved path that is not pgmam\'s', { leftover: { ...leftover, preserved: [{ path: '/etc', reason: 'pitr', createdAt: 'x' }] } }, /not a pgmam preserved directory of app1: \/etc/],
  ])('refuses %s, planning nothing', (_what, over, reason) => {
    const f = facts(over as Partial<PurgeFacts>);
    expect(refusals(f).map((r) => (r.ok ? '' : r.reason))).toEqual([expect.stringMatching(reason)]);
    expect(assemblePlan(purgeCommand, f, o, env).steps).toEqual([]);
  });

  it('finds a dropped record, and a stanza file of pgmam\'s no record names; never a user\'s own stanza file', async () => {
    const { ctx, fs, runner } = fakeContext();
    runner.register('pg_lsclusters --json', { stdout: '[]' });
    fs.files.set(`${ctx.paths.clustersDir}/app1.json`, JSON.stringify(record));
    fs.files.set(`${ctx.paths.stanzaDir}/old.conf`, '# Written by pgmam for this cluster only. Do not edit by hand.\n[old]\npg1-path=/var/lib/postgresql/15/old\nrepo1-path=/r\n');
    fs.files.set(`${ctx.paths.stanzaDir}/mine.conf`, '[mine]\npg1-path=/srv/pg\n');
    expect((await gatherPurge(ctx, o)).leftover).toMatchObject({ name: 'app1', record: { name: 'app1' } });
    expect((await gatherPurge(ctx, { ...o, name: 'old' })).leftover).toMatchObject({ name: 'old', version: '15', stanzaFile: `${ctx.paths.stanzaDir}/old.conf`, repoPath: '/r', record: undefined });
    expect((await gatherPurge(ctx, { ...o, name: 'mine' })).leftover).toBeUndefined();
  });

  it('an interrupted purge is finished by its re-run', async () => {
    const plan = assemblePlan(purgeCommand, facts(), o, env);
    const data = (plan.journal as { data: PurgeJournal }).data;
    const { ctx } = fakeContext();
    const j: Journal = { format: 1, command: 'purge', target: '15/app1', name: 'app1', rerun: 'r', pid: 9, groups: [], startedAt: 'x', steps: plan.steps.map((s) => s.id), at: 2, status: 'running', error: null, data };
    const r = await recoverPurge(ctx, j, data);
    expect(r.way).toBe('finished');
    expect(r.steps.map((s) => s.id)).toEqual(plan.steps.map((s) => s.id));
  });
});
