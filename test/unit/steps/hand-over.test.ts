// The hand-over point: closed to users until the last step; before it a rollback may remove what the
// run made, from it on recovery only finishes. One outcome per step of initcluster and branch create.
import { describe, expect, it } from 'vitest';
import { initClusterCommand, recoverInitCluster, type InitFacts, type InitOptions } from '../../../src/commands/initcluster/initcluster.js';
import { recoverBranchCreate } from '../../../src/commands/branch/create.js';
import { assemblePlan } from '../../../src/plan/command.js';
import type { Journal } from '../../../src/state/journal.js';
import { CLOSED_HBA, closeToUsersStep, handOverStep, savedHbaPath } from '../../../src/steps/hand-over.js';
import { fakeContext } from '../fakes.js';
import { aNewCluster, planEnv } from '../fixtures.js';

const env = planEnv();
const id = { version: '15', name: 'app1' };
const hba = '/etc/postgresql/15/app1/pg_hba.conf';
const RULES = 'local all postgres peer\nlocal all all peer\nhost all all 127.0.0.1/32 scram-sha-256\n';
const run = (s: { run: unknown }, ctx: unknown) => (s.run as (c: unknown) => Promise<void>)(ctx);

describe('close-to-users and hand-over', () => {
  it('closing saves the rules under pgmam’s state and leaves only local postgres; hand-over puts them back', async () => {
    const { ctx, fs, runner } = fakeContext();
    runner.register('pg_lsclusters --json', { stdout: '[]' });
    fs.files.set(hba, RULES);
    await run(closeToUsersStep(id, ctx.paths.stateDir, false), ctx);
    expect(fs.files.get(hba)).toBe(CLOSED_HBA);
    expect(fs.files.get(savedHbaPath(ctx.paths.stateDir, 'app1'))).toBe(RULES);
    // A re-run of the close finds it closed: the saved rules stay the real ones.
    await run(closeToUsersStep(id, ctx.paths.stateDir, false), ctx);
    expect(fs.files.get(savedHbaPath(ctx.paths.stateDir, 'app1'))).toBe(RULES);
    await run(handOverStep(id, ctx.paths.stateDir, false), ctx);
    expect(fs.files.get(hba)).toBe(RULES);
    expect(fs.files.has(savedHbaPath(ctx.paths.stateDir, 'app1'))).toBe(false);
    // Again: nothing to do.
    await run(handOverStep(id, ctx.paths.stateDir, false), ctx);
    expect(fs.files.get(hba)).toBe(RULES);
  });

  it('hand-over reloads a running cluster', async () => {
    const { ctx, fs, runner } = fakeContext();
    runner.register('pg_lsclusters --json', { stdout: JSON.stringify([{ version: 15, cluster: 'app1', port: 5433, running: 1, pgdata: '/d', configdir: '/c' }]) }).register('pg_ctlcluster 15 app1 reload');
    fs.files.set(hba, CLOSED_HBA);
    fs.files.set(savedHbaPath(ctx.paths.stateDir, 'app1'), RULES);
    await run(handOverStep(id, ctx.paths.stateDir, false), ctx);
    runner.verify();
  });

  it('a closed cluster whose saved rules are gone is not opened with guessed rules', async () => {
    const { ctx, fs } = fakeContext();
    fs.files.set(hba, CLOSED_HBA);
    await expect(run(handOverStep(id, ctx.paths.stateDir, false), ctx)).rejects.toThrow(/missing/);
  });
});

const initFacts = (): InitFacts => ({
  uid: 0, now: new Date('2026-11-22T10:00:00Z'), tools: {} as InitFacts['tools'], installedPg: ['15'], pgbackrestVersion: '2.45', pgVersion: '15', clusters: [],
  ...aNewCluster('app1'), postgres: { uid: 101, gid: 104 }, password: undefined, passwordProblem: undefined, source: undefined, generated: undefined, extras: {},
});
const initOpts: InitOptions = { name: 'app1', dryRun: false, yes: true, keepOnError: false, json: false };
const data = { version: '15', dataDir: '/var/lib/postgresql/15/app1', confDir: '/etc/postgresql/15/app1', stanzaFile: '/etc/pgbackrest/conf.d/app1.conf', repoPath: '/var/lib/pgbackrest', repos: [] };

describe('an interrupted initcluster, step by step', () => {
  const steps = assemblePlan(initClusterCommand, initFacts(), initOpts, env).steps.map((s) => s.id);
  const journal = (at: number): Journal => ({ format: 1, command: 'initcluster', target: '15/app1', name: 'app1', rerun: 'r', pid: 99, groups: [], startedAt: 'x', steps, at, status: 'running', error: null, data });

  it('hand-over is the last step, and nothing after create-cluster runs before the cluster is closed', () => {
    expect(steps.at(-1)).toBe('hand-over');
    expect(steps.indexOf('close-to-users')).toBe(steps.indexOf('create-cluster') + 1);
  });

  it.each(steps.map((s, i) => [s, i] as const))('killed at %s: %s', async (step, at) => {
    const { ctx, runner } = fakeContext();
    runner.register('pg_lsclusters --json', { stdout: JSON.stringify([{ version: 15, cluster: 'app1', port: 5433, running: 1, pgdata: data.dataDir, configdir: data.confDir }]) });
    const r = await recoverInitCluster(ctx, journal(at), data);
    if (step === 'hand-over') {
      expect(r.way).toBe('finished');
      expect(r.steps.map((s) => s.id)).toEqual(['hand-over']);
    } else {
      expect(r.way).toBe('rolled-back');
      expect(r.steps.map((s) => s.id)).toEqual(['drop-cluster', 'remove-cluster-files', 'delete-stanza', 'remove-stanza-file']);
    }
  });

  it('no step of the plan from hand-over on destroys anything or is undone', () => {
    const plan = assemblePlan(initClusterCommand, initFacts(), initOpts, env);
    const after = plan.steps.slice(plan.steps.findIndex((s) => s.id === 'hand-over'));
    expect(after.filter((s) => s.effect === 'destroy' || s.undo || !s.keepOnFailure)).toEqual([]);
  });
});

describe('an interrupted branch create', () => {
  const journal = (at: number, steps: string[]): Journal => ({ format: 1, command: 'branch create', target: '15/app1_dev', name: 'app1_dev', rerun: 'r', pid: 99, groups: [], startedAt: 'x', steps, at, status: 'running', error: null, data });
  it('before hand-over it is rolled back; at hand-over it is finished', async () => {
    const { ctx, runner } = fakeContext();
    runner.register('pg_lsclusters --json', { stdout: '[]' });
    expect((await recoverBranchCreate(ctx, journal(0, ['create-cluster', 'hand-over']), data)).way).toBe('rolled-back');
    expect((await recoverBranchCreate(ctx, journal(1, ['create-cluster', 'hand-over']), data)).way).toBe('finished');
  });
});
