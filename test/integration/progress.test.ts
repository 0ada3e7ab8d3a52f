// The progress line of long steps: on a terminal (a real pseudo-terminal) during the restore of a
// pgbench -s 20 database, never when stdout is not a terminal; the log keeps the figures either way.
import { readFileSync } from 'node:fs';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFIG, PGMAM, ROOT, TEST_ROOT, initTestCluster, pgmamOk, removeTestCluster, sh, sql, uniqueName } from './helpers.js';

const app = uniqueName();
let port: number;
let accounts: string;

/** The step-end events of restore-backup in the log, newest last. */
const restoreEnds = () =>
  readFileSync(`${TEST_ROOT}/pgmam.log`, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { event?: string; step?: string; command?: string; progress?: { what: string; bytes: number; total: number | null; seconds: number } })
    .filter((e) => e.event === 'step-end' && e.step === 'restore-backup' && e.progress?.what === `restore into 15/${app}`);

beforeAll(async () => {
  port = await initTestCluster(app);
  const init = await sh('/usr/lib/postgresql/15/bin/pgbench', ['-i', '-s', '20', '-q', '-h', '/var/run/postgresql', '-p', String(port), 'postgres'], { user: 'postgres' });
  expect(init.code, init.stderr).toBe(0);
  accounts = await sql(port, 'select sum(abalance) + count(*) from pgbench_accounts');
  await pgmamOk(['backup', app, '--type', 'full']);
});

afterAll(async () => {
  await removeTestCluster(app);
});

describe('progress of long steps', () => {
  it('on a terminal: the restore of a pgbench -s 20 database shows a live line with bytes of the backup size; the log keeps the figures', async () => {
    const before = restoreEnds().length;
    const r = await execa('python3', [`${ROOT}/test/integration/pty-drive.py`, '600', '--', PGMAM, 'pitr', app, '--latest', '--yes'], {
      reject: false,
      env: { PGMAM_CONFIG: CONFIG },
      cwd: '/tmp',
    });
    expect(r.exitCode, r.stdout).toBe(0);
    // Each redraw wipes the line first (\r, erase to its end), then names what, done of total, percent.
    const lines = [...r.stdout.matchAll(new RegExp(`\\r\\x1b\\[Krestore into 15/${app}: ([0-9.]+ [kMG]?B) of ([0-9.]+ [kMG]?B) \\((\\d+)%\\)`, 'g'))];
    expect(lines.length, r.stdout).toBeGreaterThan(0);
    expect(lines.at(-1)![2]).toMatch(/MB$/);
    expect(await sql(port, 'select sum(abalance) + count(*) from pgbench_accounts')).toBe(accounts);
    const ends = restoreEnds();
    expect(ends.length).toBe(before + 1);
    const fig = ends.at(-1)!.progress!;
    expect(fig.total).toBeGreaterThan(300e6);
    // A restored data directory holds about what the backup says it holds (pg_wal aside).
    expect(fig.bytes).toBeGreaterThan(fig.total! * 0.9);
  });

  it('stdout not a terminal: no progress output at all; the log keeps the figures', async () => {
    const before = restoreEnds().length;
    // stderr on the pseudo-terminal, stdout into a pipe: still no line (a pipe reader wants no redraws).
    const r = await execa('python3', [`${ROOT}/test/integration/pty-drive.py`, '600', '--', 'sh', '-c', `${PGMAM} pitr ${app} --latest --yes | cat`], {
      reject: false,
      env: { PGMAM_CONFIG: CONFIG },
      cwd: '/tmp',
    });
    expect(r.exitCode, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/restore-backup done/);
    expect(r.stdout).not.toContain('\x1b[K');
    expect(r.stdout).not.toMatch(/so far/);
    expect(await sql(port, 'select sum(abalance) + count(*) from pgbench_accounts')).toBe(accounts);
    expect(restoreEnds().length).toBe(before + 1);
    expect(restoreEnds().at(-1)!.progress!.bytes).toBeGreaterThan(300e6);
  });

  it('on a terminal with -q: no progress line', async () => {
    const r = await execa('python3', [`${ROOT}/test/integration/pty-drive.py`, '600', '--', PGMAM, 'pitr', app, '--latest', '--yes', '-q'], {
      reject: false,
      env: { PGMAM_CONFIG: CONFIG },
      cwd: '/tmp',
    });
    expect(r.exitCode, r.stdout).toBe(0);
    expect(r.stdout).toContain('restored to the end of its archive');
    expect(r.stdout).not.toContain('\x1b[K');
    expect(await sql(port, 'select sum(abalance) + count(*) from pgbench_accounts')).toBe(accounts);
  });
});
