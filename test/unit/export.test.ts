import { describe, expect, it } from 'vitest';
import { expiredExports, exportStamp, tierOf } from '../../src/commands/export.js';
import { lastStartFailed } from '../../src/commands/resetwal.js';

describe('export tiers and retention', () => {
  it('the 1st is monthly, a Saturday weekly, any other day daily (UTC)', () => {
    expect(tierOf(new Date('2026-11-01T10:00:00Z'))).toBe('monthly');
    expect(tierOf(new Date('2026-11-21T10:00:00Z'))).toBe('weekly');
    expect(tierOf(new Date('2026-11-22T10:00:00Z'))).toBe('daily');
    expect(exportStamp(new Date('2026-11-22T10:11:12.345Z'))).toBe('20261122T101112Z');
  });
  it('removes exactly the exports past their tier\'s keep time, never the newest, never foreign names', () => {
    const now = new Date('2026-11-22T00:00:00Z');
    const keep = { daily: 7 * 86400, weekly: 30 * 86400, monthly: 365 * 86400 };
    const names = ['20261114T000000Z-daily', '20261116T000000Z-daily', '20261020T000000Z-weekly', '20261101T000000Z-weekly', '20251101T000000Z-monthly', '20260101T000000Z-monthly', '20261114T000000Z-daily-2', 'notes', '20261122T000000Z-daily'];
    expect(expiredExports(names, now, keep, '20261122T000000Z-daily').sort()).toEqual(['20251101T000000Z-monthly', '20261020T000000Z-weekly', '20261114T000000Z-daily', '20261114T000000Z-daily-2']);
  });
});

describe('resetwal: did the last start fail?', () => {
  const started = '2026-11-22 06:57:19.062 UTC [18831] LOG:  starting PostgreSQL 15.18 (Debian 15.18-0+deb12u1) on x86_64';
  it('a PANIC after the last start', () => {
    expect(lastStartFailed([started, '... LOG:  invalid primary checkpoint record', '... PANIC:  could not locate a valid checkpoint record', '... LOG:  database system is shut down'].join('\n'))).toMatchObject({ failed: true });
  });
  it('an earlier failure followed by a good start is not a failed start', () => {
    expect(lastStartFailed([started, '... FATAL:  boom', started, '... LOG:  database system is ready to accept connections'].join('\n'))).toEqual({ failed: false });
  });
  it('no start in the log', () => expect(lastStartFailed('')).toEqual({ failed: false }));
});
