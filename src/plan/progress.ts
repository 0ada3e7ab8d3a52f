// A long step's live line (what, bytes done of total, rate, time left) and the figures its log line keeps.
import type { Context } from '../context.js';
import type { Progress } from './types.js';

/** How often the line is redrawn: each redraw reads the host once (a directory walk, a lock file, a query). */
export const PROGRESS_INTERVAL_MS = 1000;
/** The first draw comes sooner: a step of a few seconds still shows where it is. */
const FIRST_DRAW_MS = 500;
/** The rate is taken over this much of the recent past, so a burst or a stall shows soon. */
const RATE_WINDOW_MS = 10_000;

export interface ProgressFigures {
  what: string;
  unit: 'bytes' | 'share';
  bytes: number;
  total: number | null;
  seconds: number;
  bytesPerSecond: number | null;
}

interface Sample {
  ms: number;
  bytes: number;
}

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB'];
export function formatBytes(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1000 && u < UNITS.length - 1) {
    v /= 1000;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(v >= 100 ? 0 : 1)} ${UNITS[u]}`;
}

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** The rate over the recent window; null before two samples apart in time. */
export function rateOf(samples: readonly Sample[]): number | null {
  const last = samples.at(-1);
  if (!last) return null;
  const first = samples.find((x) => last.ms - x.ms <= RATE_WINDOW_MS) ?? samples[0]!;
  const dt = (last.ms - first.ms) / 1000;
  return dt > 0 ? Math.max(0, (last.bytes - first.bytes) / dt) : null;
}

/** `restore 15/app1: 1.2 GB of 3.0 GB (40%), 85 MB/s, 21 s left` — what is not known yet is left out. */
export function renderProgress(what: string, done: number | undefined, total: number | undefined, rate: number | null, elapsedMs: number, unit: 'bytes' | 'share' = 'bytes'): string {
  const parts: string[] = [];
  if (unit === 'share') {
    if (done === undefined) parts.push('starting');
    else parts.push(`${(Math.min(done, 10000) / 100).toFixed(1)}% done`);
    if (rate && done !== undefined && done < 10000) parts.push(`${formatDuration((10000 - done) / rate)} left`);
    parts.push(`${formatDuration(elapsedMs / 1000)} so far`);
    return `${what}: ${parts.join(', ')}`;
  }
  if (done === undefined) parts.push('starting');
  else if (total) parts.push(`${formatBytes(done)} of ${formatBytes(Math.max(total, done))} (${Math.min(100, Math.floor((done / total) * 100))}%)`);
  else parts.push(formatBytes(done));
  if (rate !== null && done !== undefined) {
    parts.push(`${formatBytes(rate)}/s`);
    if (total && rate > 0 && done < total) parts.push(`${formatDuration((total - done) / rate)} left`);
  }
  parts.push(`${formatDuration(elapsedMs / 1000)} so far`);
  return `${what}: ${parts.join(', ')}`;
}

export interface Meter {
  /** The last reading (taken now), for the step's end line in the log. */
  finish(): Promise<ProgressFigures>;
  /** Stops redrawing and clears the line (the step failed). */
  stop(): void;
}

/**
 * Measures a running step. On a terminal (ctx.io.progress) the line is redrawn every second; off one,
 * nothing is read until the end, when one reading gives the log its figures.
 */
export function startMeter(ctx: Context, p: Progress): Meter {
  const began = performance.now();
  const samples: Sample[] = [];
  const line = ctx.io.progress;
  let timer: NodeJS.Timeout | undefined;
  let reading: Promise<void> | undefined;
  let stopped = false;
  let total = p.total;
  const read = async (): Promise<number | undefined> => {
    try {
      const r = await p.done(ctx);
      if (typeof r !== 'object') return r;
      total = r.total || total;
      return r.done;
    } catch {
      return undefined; // not there yet (a data directory being made, a server still starting)
    }
  };
  const tick = async () => {
    const done = await read();
    if (stopped) return;
    if (done !== undefined) samples.push({ ms: performance.now(), bytes: done });
    line!.show(renderProgress(p.what, done, total, rateOf(samples), performance.now() - began, p.unit));
  };
  if (line) {
    const loop = () => {
      reading = tick().finally(() => {
        if (!stopped) timer = setTimeout(loop, PROGRESS_INTERVAL_MS);
      });
    };
    timer = setTimeout(loop, FIRST_DRAW_MS);
  }
  const stop = () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    line?.clear();
  };
  return {
    stop,
    async finish() {
      stop();
      await reading;
      // Finished: a measure that is gone now (a lock file) means all of it was done.
      const bytes = (await read()) ?? total ?? samples.at(-1)?.bytes ?? 0;
      const seconds = (performance.now() - began) / 1000;
      line?.clear();
      return { what: p.what, unit: p.unit ?? 'bytes', bytes, total: total ?? null, seconds, bytesPerSecond: seconds > 0 ? bytes / seconds : null };
    },
  };
}

/** The end of a step's log line: `1.2 GB at 85 MB/s`. */
export const figuresText = (f: ProgressFigures) => (f.unit === 'share' ? `${(f.bytes / 100).toFixed(1)}% done` : `${formatBytes(f.bytes)}${f.bytesPerSecond !== null ? ` at ${formatBytes(f.bytesPerSecond)}/s` : ''}`);
