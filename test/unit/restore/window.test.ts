// The recovery window: one function for what list shows and what pitr accepts (issue 24, item 8).
import { describe, expect, it } from 'vitest';
import type { BackupInfo } from '../../../src/pgbackrest/info.js';
import { parseHistory } from '../../../src/restore/timeline.js';
import { placeInWindow, recoveryWindow } from '../../../src/restore/window.js';
import { heldRetention } from '../../../src/steps/retention.js';

const T0 = Date.parse('2026-12-01T04:30:00Z') / 1000;
const backup = (label: string, start: string, stopLsn: string, stopSec: number, type: 'full' | 'diff' | 'incr' = 'full'): BackupInfo => ({
  label, type, archive: { start, stop: start }, lsn: { start: '0/0', stop: stopLsn }, timestamp: { start: stopSec - 2, stop: stopSec },
});
// The incident of issue 24: F1 on timeline 1; a pitr forks timeline 2 at 0/5000000 and takes F2 there;
// its undo puts the timeline-1 directory back, forked again as timeline 3 at 0/9000000, and takes F3.
const F1 = backup('F1', '000000010000000000000002', '0/3000050', T0 + 21);
const F2 = backup('F2', '000000020000000000000006', '0/6000050', T0 + 27);
const F3 = backup('F3', '00000003000000000000000A', '0/A000050', T0 + 33);
const history3 = parseHistory('1\t0/9000000\tno recovery target specified\n');
const timelines = [
  { timeline: 2, parent: 1, target: '2026-12-01T04:30:23.000Z', promotedAt: '2026-12-01T04:30:25.000Z' },
  { timeline: 3, parent: 1, target: null, promotedAt: '2026-12-01T04:30:31.000Z' },
];

describe('recovery window', () => {
  it('starts a second after the first backup on the current history; the abandoned timeline\'s full does not count', () => {
    const w = recoveryWindow({ backups: [F2, F3], currentTimeline: 3, history: history3, end: new Date((T0 + 60) * 1000), timelines });
    // F1 expired (the incident): the window starts after F3, not after F2 (timeline 2 is abandoned).
    expect(w).toEqual({ from: '2026-12-01T04:30:34.000Z', to: '2026-12-01T04:31:00.000Z', excluded: [] });
  });
  it('with F1 kept, it starts after F1; a target just after F1 is inside, one in the same second is before', () => {
    const w = recoveryWindow({ backups: [F1, F2, F3], currentTimeline: 3, history: history3, end: new Date((T0 + 60) * 1000), timelines });
    expect(w?.from).toBe('2026-12-01T04:30:22.000Z');
    expect(placeInWindow(w, (T0 + 22) * 1_000_000)).toBe('inside');
    expect(placeInWindow(w, (T0 + 21) * 1_000_000 + 999_999)).toBe('before');
    expect(placeInWindow(w, (T0 + 61) * 1_000_000)).toBe('after');
  });
  it('read within a second of the only backup\'s end: from and to are that second, never reversed', () => {
    const w = recoveryWindow({ backups: [F1], currentTimeline: 1, history: [], end: new Date((T0 + 21) * 1000 + 400), timelines: [] });
    expect(w).toMatchObject({ from: '2026-12-01T04:30:22.000Z', to: '2026-12-01T04:30:22.000Z' });
  });
  it('names the periods only an abandoned timeline covers', () => {
    const history2 = parseHistory('1\t0/5000000\tbefore 2026-12-01 04:30:23+00\n');
    const w = recoveryWindow({ backups: [F1, F2], currentTimeline: 2, history: history2, end: new Date((T0 + 60) * 1000), timelines: [timelines[0]!] });
    expect(w?.excluded).toEqual([{ from: '2026-12-01T04:30:23.000Z', to: '2026-12-01T04:30:25.000Z' }]);
    expect(placeInWindow(w, (T0 + 24) * 1_000_000)).toEqual({ excluded: w!.excluded[0] });
  });
  it('no timeline known, or no backup on its history: no window', () => {
    expect(recoveryWindow({ backups: [F1], currentTimeline: undefined, history: [], end: undefined, timelines: [] })).toBeNull();
    expect(recoveryWindow({ backups: [F2], currentTimeline: 3, history: history3, end: undefined, timelines })).toBeNull();
  });
});

describe('incident-safe retention', () => {
  const base = { full: 2, fullType: 'count' as const };
  const now = new Date((T0 + 40) * 1000);
  const pre = (path: string, atSec: number) => ({ path, reason: 'pitr', createdAt: new Date(atSec * 1000).toISOString() });
  const F0 = backup('F0', '000000010000000000000001', '0/1000050', T0 - 100);

  it('without preserved directories the configured retention applies as it is', () => {
    expect(heldRetention(base, [F0, F1], [], now, 1)).toEqual({ retention: base, held: [] });
  });
  it("the pitr's and the undo's fulls expire nothing: F1 stays (retention-full = 2 alone would expire it at the undo)", () => {
    expect(heldRetention(base, [F1], [pre('/d.pre-pitr-1', T0 + 24)], now, 1, true)).toEqual({ retention: base, held: [] });
    const undo = heldRetention(base, [F1, F2], [pre('/d.pre-undo-1', T0 + 30)], now, 1, true);
    expect(undo).toEqual({ retention: { full: 3, fullType: 'count' }, held: ['F1'] });
  });
  it('a scheduled backup keeps the window the app had when a preserved directory was made', () => {
    // After the undo: its directory (made at +30) saw F1 and F2, the two newest then; F3 is the undo's.
    const r = heldRetention(base, [F1, F2, F3], [pre('/d.pre-undo-1', T0 + 30)], now, 1);
    expect(r).toEqual({ retention: { full: 4, fullType: 'count' }, held: ['F1', 'F2'] });
    // Fulls older than that window go as retention says.
    expect(heldRetention(base, [F0, F1, F2, F3], [pre('/d.pre-undo-1', T0 + 30)], now, 1).held).toEqual(['F1', 'F2']);
    expect(heldRetention(base, [F0, F1, F2, F3], [pre('/d.pre-undo-1', T0 + 30)], now, 1).retention.full).toBe(4);
  });
  it('an incremental adds no full to count', () => {
    expect(heldRetention(base, [F1, F2, F3], [pre('/d.pre-undo-1', T0 + 30)], now, 0).retention.full).toBe(3);
  });
  it('time retention: enough days to reach the oldest full of that window', () => {
    const old = backup('old', '000000010000000000000002', '0/3000050', T0 - 10 * 86400);
    const week = { full: 7, fullType: 'time' as const };
    // Made 5 days ago with 7 days of retention: its window reached back to `old` (10 days old now).
    expect(heldRetention(week, [old, F1], [pre('/d.pre-pitr-1', T0 - 5 * 86400)], now, 1).retention).toEqual({ full: 11, fullType: 'time' });
    expect(heldRetention({ full: 14, fullType: 'time' }, [old, F1], [pre('/d.pre-pitr-1', T0 - 5 * 86400)], now, 1).retention.full).toBe(14);
  });
});
