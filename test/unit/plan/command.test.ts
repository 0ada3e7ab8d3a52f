// runCommand: the one flow every command module runs through — settle an interrupted run through the
// module's own recover, gather read-only, guards, dry-run that cannot write, lock, gather and guards
// again under the lock, execute, report.
import { RecordingRunner } from '../../../src/runner/wrappers.js';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { RefusedError } from '../../../src/errors.js';
import { runBatch, runCommand, type CommandModule, type Recovery } from '../../../src/plan/command.js';
import { fail, pass, type Step } from '../../../src/plan/types.js';
import { readJournal, writeJournal, type Journal } from '../../../src/state/journal.js';
import { fakeContext } from '../fakes.js';

type Opts = { name: string; dryRun: boolean; yes: boolean; keepOnError: boolean };
type Facts = { round: number; lockHeld: boolean; ok: boolean; extra: boolean };
const options = z.object({ name: z.string(), dryRun: z.boolean(), yes: z.boolean(), keepOnError: z.boolean() });
const o = (over: Partial<Opts> = {}): Opts => ({ name: 'app1', dryRun: false, yes: true, keepOnError: false, ...over });

/** A command that writes /data/<name> in one step; `second` changes what the gather under the lock sees. */
function toy(events: string[], second: Partial<Facts> = {}, recovery?: Recovery): CommandModule<Opts, Facts, { dataDir: string }> {
  let round = 0;
  const step = (id: string, file: string): Step => ({ id, title: id, effect: 'write', run: async (c) => void (events.push(id), await c.fs.writeFileAtomic(file, id, { mode: 0o644 })) });
  return {
    spec: { name: 'toy', summary: 'a toy', options, examples: [], target: (x) => x.name, destructive: false, journal: z.object({ dataDir: z.string() }) },
    async gather(ctx, x) {
      round++;
      events.push(`gather ${round}`);
      const lockHeld = await ctx.fs.exists(`${ctx.paths.locksDir}/${x.name}.lock`);
      return { round, lockHeld, ok: true, extra: false, ...(round > 1 ? second : {}) };
    },
    guards: (f) => [{ id: 'toy-is-ok', check: () => (f.ok ? pass : fail('not ok')) }],
    plan: (f, x) => ({ target: `15/${x.name}`, steps: [step('write-data', `/data/${x.name}`), ...(f.extra ? [step('write-more', '/more')] : [])], journal: { rerun: `pgmam toy ${x.name}`, data: { dataDir: '/d' } } }),
    recover: async (_ctx, j, d) => (events.push(`recover ${j.command} ${d.dataDir}`), recovery ?? { way: 'rolled-back', steps: [step('undo-data', '/undone')] }),
    report: async (ctx, _x, f) => ctx.io.out(`done after gather ${f.round}, lock held: ${f.lockHeld}\n`),
  };
}

const journal = (over: Partial<Journal> = {}): Journal => ({
  format: 1, command: 'toy', target: '15/app1', name: 'app1', rerun: 'pgmam toy app1', pid: 99, groups: [], startedAt: 'x',
  steps: ['write-data'], at: 0, status: 'running', error: null, data: { dataDir: '/d' }, ...over,
});

/** The host's clusters, as settling reads them to check the journal's identity: none. */
const noClusters = (ctx: { runner: unknown }) => (ctx.runner as RecordingRunner).register('pg_lsclusters --json', { stdout: '[]' });

describe('runCommand', () => {
  it('gathers, checks, and gathers and checks again holding the lock before it executes and reports', async () => {
    const { ctx, fs, out } = fakeContext();
    const events: string[] = [];
    await runCommand(ctx, toy(events), o());
    expect(events).toEqual(['gather 1', 'gather 2', 'write-data']);
    expect(out.join('')).toBe('done after gather 2, lock held: true\n');
    expect(fs.files.get('/data/app1')).toBe('write-data');
    expect(fs.files.has(`${ctx.paths.locksDir}/app1.lock`)).toBe(false);
    expect(await readJournal(ctx.fs, ctx.paths.stateDir, 'app1')).toBeUndefined();
  });

  it('--dry-run prints the plan and writes nothing: no lock, no journal, no step', async () => {
    const { ctx, fs, runner, out } = fakeContext();
    const events: string[] = [];
    await runCommand(ctx, toy(events), o({ dryRun: true }));
    expect(events).toEqual(['gather 1']);
    expect(out.join('')).toMatch(/^plan: pgmam toy 15\/app1\nguards: 1 checked.*\n1\. write-data/);
    expect(fs.writes).toEqual([]);
    expect(runner.calls).toEqual([]);
  });

  it('--dry-run: a write while gathering throws before it happens, through the runner and the filesystem', async () => {
    const { ctx, fs, runner } = fakeContext();
    runner.register(/.*/);
    const writer = (how: 'fs' | 'runner'): CommandModule<Opts, Facts, { dataDir: string }> => ({
      ...toy([]),
      async gather(c) {
        if (how === 'fs') await c.fs.writeFileAtomic('/sneaky', 'x', { mode: 0o644 });
        else await c.runner.run({ argv: ['pg_ctlcluster', '15', 'app1', 'stop'], effect: 'write' });
        return { round: 1, lockHeld: false, ok: true, extra: false };
      },
    });
    await expect(runCommand(ctx, writer('fs'), o({ dryRun: true }))).rejects.toThrow(/a write was attempted.*write \/sneaky/);
    await expect(runCommand(ctx, writer('runner'), o({ dryRun: true }))).rejects.toThrow(/a write was attempted.*pg_ctlcluster 15 app1 stop/);
    expect(fs.writes).toEqual([]);
    expect(runner.calls).toEqual([]);
  });

  it('psql under the read-only context runs in read-only transactions', async () => {
    const { ctx, runner } = fakeContext();
    runner.register(/psql/);
    const reader: CommandModule<Opts, Facts, { dataDir: string }> = {
      ...toy([]),
      async gather(c) {
        await c.runner.run({ argv: ['/usr/lib/postgresql/15/bin/psql', '-c', 'select 1'], asUser: 'postgres', effect: 'read' });
        return { round: 1, lockHeld: false, ok: true, extra: false };
      },
    };
    await runCommand(ctx, reader, o({ dryRun: true }));
    expect(runner.calls[0]!.env).toEqual({ PGOPTIONS: '-c default_transaction_read_only=on' });
  });

  it('a guard that fails only under the lock refuses: no step runs, the lock is released', async () => {
    const { ctx, fs } = fakeContext();
    const events: string[] = [];
    await expect(runCommand(ctx, toy(events, { ok: false }), o())).rejects.toBeInstanceOf(RefusedError);
    expect(events).toEqual(['gather 1', 'gather 2']);
    expect(fs.files.has('/data/app1')).toBe(false);
    expect(fs.files.has(`${ctx.paths.locksDir}/app1.lock`)).toBe(false);
  });

  it('steps that changed between the confirmation and the lock are refused (plan-is-unchanged)', async () => {
    const { ctx } = fakeContext();
    const events: string[] = [];
    const e = (await runCommand(ctx, toy(events, { extra: true }), o()).catch((x: unknown) => x)) as RefusedError;
    expect(e.failures.map((f) => f.id)).toEqual(['plan-is-unchanged']);
    expect(events).not.toContain('write-data');
  });

  it("an interrupted run of the same command is settled first through the module's recover, from its parsed journal data", async () => {
    const { ctx, fs } = fakeContext();
    noClusters(ctx);
    await writeJournal(ctx.fs, ctx.paths.stateDir, journal());
    const events: string[] = [];
    await runCommand(ctx, toy(events), o());
    expect(events).toEqual(['recover toy /d', 'undo-data', 'gather 1', 'gather 2', 'write-data']);
    expect(fs.files.get('/undone')).toBe('undo-data');
    expect(await readJournal(ctx.fs, ctx.paths.stateDir, 'app1')).toBeUndefined();
  });

  it('a finished recovery ends the command with its line; the plan does not run again', async () => {
    const { ctx, out } = fakeContext();
    noClusters(ctx);
    await writeJournal(ctx.fs, ctx.paths.stateDir, journal());
    const events: string[] = [];
    await runCommand(ctx, toy(events, {}, { way: 'finished', steps: [], finished: 'finished it\n' }), o());
    expect(events).toEqual(['recover toy /d']);
    expect(out.join('')).toBe('finished it\n');
  });

  it("refuses another command's interrupted run, a live one, and one whose journal data does not parse — nothing runs", async () => {
    for (const j of [journal({ command: 'pitr' }), journal({ pid: 4242 }), journal({ data: { dataDir: 7 } })]) {
      const { ctx, fs } = fakeContext();
      await writeJournal(ctx.fs, ctx.paths.stateDir, j);
      const before = [...fs.writes];
      const events: string[] = [];
      await expect(runCommand(ctx, toy(events), o())).rejects.toBeInstanceOf(RefusedError);
      expect(events).toEqual([]);
      expect(fs.writes).toEqual(before);
    }
  });

  it('--dry-run of a settling run shows the recovery and changes nothing', async () => {
    const { ctx, fs, out } = fakeContext();
    noClusters(ctx);
    await writeJournal(ctx.fs, ctx.paths.stateDir, journal());
    const before = [...fs.writes];
    const events: string[] = [];
    await runCommand(ctx, toy(events), o({ dryRun: true }));
    expect(events).toEqual(['recover toy /d']);
    expect(out.join('')).toMatch(/toy \(rolling back the interrupted run\)[\s\S]*undo-data[\s\S]*close-journal[\s\S]*then toy runs again/);
    expect(fs.writes).toEqual(before);
  });

  it('options are validated by the spec before anything runs', async () => {
    const { ctx } = fakeContext();
    const events: string[] = [];
    await expect(runCommand(ctx, toy(events), { ...o(), name: 5 as unknown as string })).rejects.toThrow();
    expect(events).toEqual([]);
  });
});

describe('runBatch', () => {
  const batchToy = (events: string[]): CommandModule<Opts, Facts, { dataDir: string }> => ({
    ...toy(events),
    guards: (_f, x) => [{ id: 'toy-is-ok', check: () => (x.name === 'refused' ? fail('refused here') : pass) }],
    plan: (_f, x) => ({
      target: `15/${x.name}`,
      steps: [
        {
          id: 'work',
          title: 'work',
          effect: 'write',
          run: async () => {
            events.push(`work ${x.name}`);
            if (x.name === 'broken') throw new Error('boom');
          },
        },
      ],
    }),
    report: async () => undefined,
  });
  const exitOf = async (names: string[]) => {
    const { ctx } = fakeContext();
    const events: string[] = [];
    const e = await runBatch(ctx, batchToy(events), names.map((name) => o({ name })), { concurrency: 2 }).then(() => undefined, (x: unknown) => x as { exitCode: number; lines: string[] });
    return { code: e?.exitCode ?? 0, lines: e?.lines ?? [], events };
  };

  it('one plan per target; a refusal or a failed step does not stop the others: exit 7', async () => {
    const r = await exitOf(['a', 'refused', 'broken', 'b']);
    expect(r.code).toBe(7);
    expect(r.events.filter((x) => x.startsWith('work'))).toEqual(['work a', 'work broken', 'work b']);
    expect(r.lines.at(-1)).toBe('pgmam: toy: 2 of 4 failed (refused, broken)');
  });

  it('exit 0 when every target is done, 4 when none is', async () => {
    expect((await exitOf(['a', 'b'])).code).toBe(0);
    expect((await exitOf(['refused', 'broken'])).code).toBe(4);
  });
});

describe('a journal acts only on the cluster it describes', () => {
  const cluster = (dataDir: string) => JSON.stringify([{ version: 15, cluster: 'app1', port: 5433, running: 1, pgdata: dataDir, configdir: '/etc/postgresql/15/app1' }]);
  it('another data directory on the host: refused, naming the journal, nothing recovered', async () => {
    const { ctx, fs, runner } = fakeContext();
    runner.register('pg_lsclusters --json', { stdout: cluster('/srv/other') });
    await writeJournal(ctx.fs, ctx.paths.stateDir, journal());
    const before = [...fs.writes];
    const events: string[] = [];
    const err = (await runCommand(ctx, toy(events), o()).catch((e: unknown) => e)) as RefusedError;
    expect(err).toBeInstanceOf(RefusedError);
    expect(err.failures.map((f) => f.id)).toEqual(['journal-describes-this-cluster']);
    expect(err.failures[0]!.reason).toContain('/var/lib/pgmam/journal/app1.json');
    expect(events).toEqual([]);
    expect(fs.writes).toEqual(before);
  });
  it('another system identifier in the data directory: refused', async () => {
    const { ctx, fs, runner } = fakeContext();
    runner.register('pg_lsclusters --json', { stdout: cluster('/d') }).register(/pg_controldata/, { stdout: 'Database system identifier:           222\n' });
    fs.files.set('/d/global/pg_control', 'x');
    await writeJournal(ctx.fs, ctx.paths.stateDir, journal({ data: { dataDir: '/d', version: '15', systemId: '111' } }));
    const err = (await runCommand(ctx, toy([]), o()).catch((e: unknown) => e)) as RefusedError;
    expect(err.failures.map((f) => f.id)).toEqual(['journal-describes-this-cluster']);
  });
  it('the same identifier (or the copy source’s): recovered as usual', async () => {
    const { ctx, fs, runner } = fakeContext();
    runner.register('pg_lsclusters --json', { stdout: cluster('/d') }).register(/pg_controldata/, { stdout: 'Database system identifier:           333\n' });
    fs.files.set('/d/global/pg_control', 'x');
    await writeJournal(ctx.fs, ctx.paths.stateDir, journal({ data: { dataDir: '/d', version: '15', systemId: '111', sourceSystemId: '333' } }));
    const events: string[] = [];
    await runCommand(ctx, toy(events), o());
    expect(events[0]).toBe('recover toy /d');
  });
});
