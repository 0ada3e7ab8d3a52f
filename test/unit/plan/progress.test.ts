// The progress line: its text, its rate, and the executor drawing it only where the io has a line.
import pino from 'pino';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { formatBytes, formatDuration, rateOf, renderProgress } from '../../../src/plan/progress.js';
import type { Plan, Progress } from '../../../src/plan/types.js';
import { executeSteps } from '../../../src/plan/executor.js';
import { fakeContext } from '../fakes.js';

describe('progress text', () => {
  it.each([
    [0, '0 B'],
    [999, '999 B'],
    [1500, '1.5 kB'],
    [337_000_000, '337 MB'],
    [2_500_000_000, '2.5 GB'],
  ])('formatBytes(%d) = %s', (n, text) => expect(formatBytes(n)).toBe(text));

  it.each([
    [4.4, '4 s'],
    [75, '1 min 15 s'],
    [3725, '1 h 02 min'],
  ])('formatDuration(%d) = %s', (s, text) => expect(formatDuration(s)).toBe(text));

  it('names what, done of total, share, rate and time left', () => {
    expect(renderProgress('restore into 15/app1', 100e6, 400e6, 50e6, 2000)).toBe('restore into 15/app1: 100 MB of 400 MB (25%), 50.0 MB/s, 6 s left, 2 s so far');
  });

  it('leaves out what is not known yet', () => {
    expect(renderProgress('dump app of 15/app1', 12e6, undefined, null, 1000)).toBe('dump app of 15/app1: 12.0 MB, 1 s so far');
    expect(renderProgress('restore into 15/app1', undefined, 400e6, null, 1000)).toBe('restore into 15/app1: starting, 1 s so far');
  });

  it('a total passed (an estimate) shows as the bytes done, never above 100%', () => {
    expect(renderProgress('copy into /d', 500e6, 400e6, 10e6, 1000)).toBe('copy into /d: 500 MB of 500 MB (100%), 10.0 MB/s, 1 s so far');
  });

  it('a share (pgBackRest backup) shows as a percentage', () => {
    expect(renderProgress('full backup of 15/app1', 4500, 10000, 500, 9000, 'share')).toBe('full backup of 15/app1: 45.0% done, 11 s left, 9 s so far');
  });

  it('the rate is taken over the last 10 s', () => {
    expect(rateOf([])).toBeNull();
    expect(rateOf([{ ms: 0, bytes: 0 }])).toBeNull();
    expect(rateOf([{ ms: 0, bytes: 0 }, { ms: 15_000, bytes: 10 }, { ms: 20_000, bytes: 110 }])).toBe(20);
  });
});

describe('the executor and a step with progress', () => {
  const plan = (progress: Progress, runMs: number): Plan => ({
    command: 'toy',
    target: '15/app1',
    locks: [],
    destructive: false,
    guards: [],
    journal: false,
    steps: [{ id: 'restore-backup', title: 'restore', effect: 'write', run: () => new Promise((ok) => setTimeout(ok, runMs)), progress }],
  });
  const counting = () => {
    let n = 0;
    return { progress: { what: 'restore into 15/app1', total: 1000, done: async () => (n += 100) } satisfies Progress, reads: () => n / 100 };
  };

  it('draws the line on a terminal while the step runs, clears it, and logs the figures at the end', async () => {
    const { ctx } = fakeContext();
    const shown: string[] = [];
    let cleared = 0;
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({ write: (b, _e, cb) => (lines.push(JSON.parse(String(b))), cb()) });
    const c = { ...ctx, log: pino({ level: 'debug' }, sink), io: { ...ctx.io, progress: { show: (l: string) => shown.push(l), clear: () => void cleared++ } } };
    const m = counting();
    await executeSteps(c, plan(m.progress, 1700), { dryRun: false, yes: true, keepOnError: false });
    expect(shown.length).toBeGreaterThanOrEqual(1);
    expect(shown[0]).toMatch(/^restore into 15\/app1: 100 B of 1.0 kB \(10%\)/);
    expect(cleared).toBeGreaterThan(0);
    const end = lines.find((l) => l['event'] === 'step-end')!;
    expect(end['progress']).toMatchObject({ what: 'restore into 15/app1', total: 1000, unit: 'bytes' });
    expect((end['progress'] as { bytes: number }).bytes).toBe(m.reads() * 100);
  });

  it('off a terminal reads the measure once, at the end, for the log', async () => {
    const { ctx } = fakeContext();
    const m = counting();
    await executeSteps(ctx, plan(m.progress, 1700), { dryRun: false, yes: true, keepOnError: false });
    expect(m.reads()).toBe(1);
  });
});
