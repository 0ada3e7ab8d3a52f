// drop and branch drop: guards and plans over gathered facts.
import { describe, expect, it } from 'vitest';
import { branchDropCommand, dropCommand, descendants, type DropFacts, type DropOptions } from '../../../src/commands/drop/drop.js';
import { branchRows } from '../../../src/commands/branch/list.js';
import { assemblePlan } from '../../../src/plan/command.js';
import { aCluster, aRecord, planEnv } from '../fixtures.js';

const env = planEnv();
const app = aRecord('app1', { preserved: [{ path: '/var/lib/postgresql/15/app1.pre-pitr-x', reason: 'pitr', createdAt: '2026-11-22T06:00:00.000Z' }] });
const dev = aRecord('app1_dev', { role: 'branch', parent: 'app1' });
const devQa = aRecord('app1_dev_qa', { role: 'branch', parent: 'app1_dev' });
const records = [app, dev, devQa];
const free = (name: string) => ({ name, holder: undefined, alive: false });

const o = (over: Partial<DropOptions> = {}): DropOptions => ({ name: 'app1', purgeBackups: false, withBranches: false, onlyBranches: false, json: false, dryRun: false, yes: true, keepOnError: false, ...over });
const facts = (x: DropOptions): DropFacts => {
  const record = records.find((r) => r.name === x.name);
  const branches = record ? descendants(records, record.name) : [];
  const targets = [...(x.withBranches ? branches : []), ...(record ? [record] : [])];
  return { uid: 0, record, branches, targets, locks: targets.map((t) => free(t.name)) };
};
const failed = (m: typeof dropCommand, x: DropOptions, f = facts(x)) => assemblePlan(m, f, x, env).guards.filter((g) => !g.check().ok).map((g) => g.id);

describe('drop', () => {
  it('an app with branches is refused without --with-branches, and nothing is planned', () => {
    expect(failed(dropCommand, o())).toEqual(['cluster-has-no-branches']);
    expect(assemblePlan(dropCommand, facts(o()), o(), env).steps).toEqual([]);
  });

  it('--with-branches drops the deepest branch first, then the app; backups kept, preserved directories kept', () => {
    const x = o({ withBranches: true });
    const plan = assemblePlan(dropCommand, facts(x), x, env);
    expect(plan.steps.filter((s) => s.id === 'drop-cluster').map((s) => s.title)).toEqual([
      'drop cluster 15/app1_dev_qa (stopping it)',
      'drop cluster 15/app1_dev (stopping it)',
      'drop cluster 15/app1 (stopping it)',
    ]);
    expect(plan.steps.some((s) => s.id === 'delete-stanza')).toBe(false);
    expect(plan.steps.some((s) => s.title.includes('.pre-pitr-'))).toBe(false);
    expect(plan).toMatchObject({ destructive: true, typeToConfirm: 'app1', locks: ['app1_dev_qa', 'app1_dev', 'app1'] });
  });

  it('--purge-backups deletes each stanza before its cluster', () => {
    const x = o({ name: 'app1_dev_qa', purgeBackups: true });
    expect(assemblePlan(dropCommand, facts(x), x, env).steps.map((s) => s.id)).toEqual(['delete-stanza', 'drop-cluster', 'remove-config', 'forget-cluster']);
  });

  it('a cluster locked by a live pgmam command is refused', () => {
    const x = o({ name: 'app1_dev_qa' });
    const f = { ...facts(x), locks: [{ name: 'app1_dev_qa', holder: { pid: 7, command: 'pitr', startedAt: 'x' }, alive: true }] } as DropFacts;
    expect(failed(dropCommand, x, f)).toEqual(['cluster-is-not-locked']);
  });

  it('branch drop removes only branches; an unknown name is refused', () => {
    const x = o({ onlyBranches: true });
    expect(failed(branchDropCommand, x)).toEqual(['target-is-a-branch', 'cluster-has-no-branches']);
    expect(failed(branchDropCommand, o({ name: 'nosuch', onlyBranches: true }))).toEqual(['target-is-a-branch']);
    expect(failed(branchDropCommand, o({ name: 'app1_dev_qa', onlyBranches: true }))).toEqual([]);
  });
});

describe('branch list', () => {
  it('a branch with its parent, port and status; one whose cluster is gone is missing', () => {
    const rows = branchRows(records, [aCluster('app1'), aCluster('app1_dev', { port: 5434, running: false })]);
    expect(rows.map((r) => [r.name, r.parent, r.port, r.status])).toEqual([
      ['app1_dev', 'app1', 5434, 'down'],
      ['app1_dev_qa', 'app1_dev', null, 'missing'],
    ]);
  });
});
