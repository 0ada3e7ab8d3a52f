// Reads begun at start-up: the first identical read takes the early result; the rest run as usual.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { PrefetchRunner, prefetchKey, type Prefetched } from '../../../src/runner/prefetch.js';
import { RecordingRunner } from '../../../src/runner/wrappers.js';
import { CommandFailedError, type RunResult } from '../../../src/runner/types.js';

const ls = { argv: ['pg_lsclusters', '--json'], effect: 'read' as const };
const early = (r: Partial<RunResult>): Prefetched => new Map([[prefetchKey(ls), Promise.resolve({ argv: ls.argv, exitCode: 0, stdout: '[]', stderr: '', durationMs: 5, ...r })]]);

describe('PrefetchRunner', () => {
  it('the first identical read takes the early result; the next runs again', async () => {
    const inner = new RecordingRunner().register('pg_lsclusters --json', { stdout: '[{"late":1}]' });
    const runner = new PrefetchRunner(inner, early({ stdout: '[{"early":1}]' }), pino({ level: 'silent' }));
    expect((await runner.run(ls)).stdout).toBe('[{"early":1}]');
    expect(inner.calls).toEqual([]);
    expect((await runner.run(ls)).stdout).toBe('[{"late":1}]');
    expect(inner.calls.map((c) => c.argv.join(' '))).toEqual(['pg_lsclusters --json']);
  });

  it('an early failure throws as a run would, unless the caller probes', async () => {
    const runner = () => new PrefetchRunner(new RecordingRunner(), early({ exitCode: 1, stderr: 'boom' }), pino({ level: 'silent' }));
    await expect(runner().run(ls)).rejects.toBeInstanceOf(CommandFailedError);
    expect((await runner().run(ls, { check: false })).exitCode).toBe(1);
  });

  it('a read as another user, or with an environment, never takes an early result', async () => {
    const inner = new RecordingRunner().register('pg_lsclusters --json', { stdout: 'fresh' });
    const runner = new PrefetchRunner(inner, early({}), pino({ level: 'silent' }));
    expect((await runner.run({ ...ls, env: { X: '1' } })).stdout).toBe('fresh');
    expect((await runner.run({ ...ls, asUser: 'postgres' })).stdout).toBe('fresh');
  });
});
