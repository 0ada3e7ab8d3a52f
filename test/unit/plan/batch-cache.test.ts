// A batch's host-wide reads: shared by its targets' first gathers, never by a gather under the lock.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { sharedRead } from '../../../src/context.js';
import { runBatch, type CommandModule } from '../../../src/plan/command.js';
import { fakeContext } from '../fakes.js';

type Opts = { name: string; dryRun: boolean; yes: boolean; keepOnError: boolean };
const options = z.object({ name: z.string(), dryRun: z.boolean(), yes: z.boolean(), keepOnError: z.boolean() });
const runs = (names: string[]): Opts[] => names.map((name) => ({ name, dryRun: false, yes: true, keepOnError: false }));

function toy(reads: { n: number }, withSteps: boolean): CommandModule<Opts, { seen: number }> {
  return {
    spec: { name: 'toy', summary: 'a toy', options, examples: [], target: (x) => x.name, destructive: false },
    gather: async (ctx) => ({ seen: await sharedRead(ctx, 'clusters', async () => ++reads.n) }),
    guards: () => [],
    plan: (_f, x) => ({ target: `15/${x.name}`, steps: withSteps ? [{ id: 'write', title: 'write', effect: 'write', run: async () => undefined }] : [], journal: false }),
    report: async () => undefined,
  };
}

describe('a batch shares host-wide reads', () => {
  it('targets that only read: one read for the whole batch', async () => {
    const { ctx } = fakeContext();
    const reads = { n: 0 };
    await runBatch(ctx, toy(reads, false), runs(['a', 'b', 'c']));
    expect(reads.n).toBe(1);
  });

  it('targets with steps gather again under their lock, fresh', async () => {
    const { ctx } = fakeContext();
    const reads = { n: 0 };
    await runBatch(ctx, toy(reads, true), runs(['a', 'b', 'c']));
    expect(reads.n).toBe(1 + 3);
  });

  it('outside a batch every read is made', async () => {
    const reads = { n: 0 };
    const { ctx } = fakeContext();
    await sharedRead(ctx, 'k', async () => ++reads.n);
    await sharedRead(ctx, 'k', async () => ++reads.n);
    expect(reads.n).toBe(2);
  });
});
