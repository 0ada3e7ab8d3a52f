// Target times and timelines: pure functions behind pitr's guards and set selection.
import { describe, expect, it } from 'vitest';
import type { BackupInfo } from '../../../src/pgbackrest/info.js';
import { formatUs, parseTarget } from '../../../src/restore/target.js';
import { abandonedPeriods, backupIsOnLineage, chooseSet, lineage, parseHistory, parseLsn, usableBackups } from '../../../src/restore/timeline.js';

describe('target times', () => {
  it.each([
    ['2026-01-19 10:40:00+00', '2026-01-19 10:40:00.000000+00'],
    ['2026-01-19T10:40:00Z', '2026-01-19 10:40:00.000000+00'],
    ['2026-01-19 11:40:00+01', '2026-01-19 10:40:00.000000+00'],
    ['2026-01-19 11:40:00+01:00', '2026-01-19 10:40:00.000000+00'],
    ['2026-01-19 05:10:00-0530', '2026-01-19 10:40:00.000000+00'],
    ['2026-11-22 05:29:04.320473+00', '2026-11-22 05:29:04.320473+00'],
    ['2026-11-22 05:29:04.5+00', '2026-11-22 05:29:04.500000+00'],
    ['2026-01-19 10:40+00', '2026-01-19 10:40:00.000000+00'],
  ])('%s → %s', (input, text) => expect(parseTarget(input).text).toBe(text));

  it('keeps microseconds exactly', () => {
    expect(parseTarget('2026-11-22 05:29:04.320473+00').epochUs % 1_000_000).toBe(320473);
    expect(formatUs(parseTarget('2026-11-22 05:29:04.000001+00').epochUs)).toBe('2026-11-22 05:29:04.000001+00');
  });
  it('refuses a bare time, with a hint on the accepted forms (usage, exit 2)', () => {
    expect(() => parseTarget('2026-01-19 10:40')).toThrow(expect.objectContaining({ exitCode: 2, lines: expect.arrayContaining([expect.stringContaining('accepted forms')]) }));
  });
  it.each(['yesterday', '', '2026-13-01 00:00:00+00', '2026-02-30 00:00:00+00', '2026-01-19 25:00:00+00', '19/01/2026 10:40+00'])('refuses %j', (bad) => {
    expect(() => parseTarget(bad)).toThrow(expect.objectContaining({ exitCode: 2 }));
  });
});

const backup = (label: string, start: string, stopLsn: string, stopSec: number, type: 'full' | 'diff' | 'incr' = 'full'): BackupInfo => ({
  label,
  type,
  archive: { start, stop: start },
  lsn: { start: '0/0', stop: stopLsn },
  timestamp: { start: stopSec - 2, stop: stopSec },
});

describe('timelines', () => {
  const history2 = parseHistory('1\t0/7000160\tbefore 2026-11-22 05:29:04.667926+00\n');
  const history4 = parseHistory('1\t0/7000160\tbefore 2026-11-22 05:29:04.667926+00\n2\t0/B000000\tno recovery target specified\n');

  it('parses history files and LSNs', () => {
    expect(history4).toEqual([
      { timeline: 1, switchLsn: parseLsn('0/7000160'), reason: 'before 2026-11-22 05:29:04.667926+00' },
      { timeline: 2, switchLsn: parseLsn('0/B000000'), reason: 'no recovery target specified' },
    ]);
    expect(parseLsn('1/0')).toBe(4294967296n);
    expect(lineage(4, history4)).toEqual([1, 2, 4]);
  });

  it('a backup serves the current timeline when taken on it, or on an ancestor before the fork', () => {
    expect(backupIsOnLineage(backup('a', '000000010000000000000002', '0/3000050', 100), 2, history2)).toBe(true);
    expect(backupIsOnLineage(backup('b', '000000010000000000000008', '0/8000050', 200), 2, history2)).toBe(false); // after the fork
    expect(backupIsOnLineage(backup('c', '000000020000000000000009', '0/9000050', 300), 2, history2)).toBe(true);
    expect(backupIsOnLineage(backup('d', '000000030000000000000009', '0/9000050', 300), 2, history2)).toBe(false); // abandoned timeline
    expect(backupIsOnLineage(backup('e', '000000030000000000000009', '0/9000050', 300), 4, history4)).toBe(false);
  });

  it('chooses the newest usable set that ends before the target\'s whole second (pgBackRest #817, [075])', () => {
    const sets = usableBackups([backup('a', '000000010000000000000002', '0/3000050', 100), backup('c', '000000020000000000000009', '0/9000050', 300)], 2, history2);
    expect(chooseSet(sets, 300_999_999)).toMatchObject({ label: 'a' }); // same second as c's end: not c
    expect(chooseSet(sets, 301_000_000)).toMatchObject({ label: 'c' });
    expect(chooseSet(sets, 100_500_000)).toBeUndefined();
  });

  it('finds the periods only an abandoned timeline covers', () => {
    const records = [
      { timeline: 2, parent: 1, target: '2026-11-22T05:00:00.000Z', promotedAt: '2026-11-22T05:10:00.000Z' },
      { timeline: 3, parent: 2, target: '2026-11-22T05:20:00.000Z', promotedAt: '2026-11-22T05:30:00.000Z' },
      { timeline: 4, parent: 2, target: null, promotedAt: '2026-11-22T05:40:00.000Z' },
    ];
    // Lineage 1 → 2 → 4 (after an undo of the pitr that made 3): only 2's fork leaves a gap.
    expect(abandonedPeriods(records, [1, 2, 4])).toEqual([{ timeline: 1, fromUs: Date.parse('2026-11-22T05:00:00Z') * 1000, untilUs: Date.parse('2026-11-22T05:10:00Z') * 1000 }]);
    expect(abandonedPeriods(records, [1, 2, 3])).toHaveLength(2);
  });
});
