// pgmam backup against real clusters, with its own configuration (own state directory), so
// `backup --all` only ever sees this file's clusters.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PGMAM, TEST_ROOT, testConfigLines, pgmam, queryDataDirCopy, removeTestCluster, sh, sql } from './helpers.js';
import { uniqueName } from './helpers.js';

const STATE = `${TEST_ROOT}/state-backup`;
const CONF = `${TEST_ROOT}/backup.conf`;
const base = testConfigLines({ state: STATE });
const a = uniqueName();
const b = uniqueName();
const ports: Record<string, number> = {};
const env = { PGMAM_CONFIG: CONF };
const run = (args: string[], opts: Parameters<typeof pgmam>[1] = {}) => pgmam(args, { env, ...opts });

async function info(stanza: string): Promise<Array<{ label: string; type: string }>> {
  const r = await sh('pgbackrest', [`--stanza=${stanza}`, '--output=json', 'info'], { user: 'postgres' });
  return (JSON.parse(r.stdout.replace(/"system-id":(\d+)/g, '"system-id":"$1"')) as Array<{ backup: Array<{ label: string; type: string }> }>)[0]!.backup.map((x) => ({ label: x.label, type: x.type }));
}
const types = async (s: string) => (await info(s)).map((x) => x.type);

beforeAll(async () => {
  writeFileSync(CONF, `${base.join('\n')}\n`);
  for (const n of [a, b]) {
    const r = await run(['initcluster', n, '-q']);
    if (r.code !== 0) throw new Error(r.stderr);
    const list = JSON.parse((await run(['list', '--json'])).stdout) as Array<{ name: string; port: number }>;
    ports[n] = list.find((e) => e.name === n)!.port;
    await sql(ports[n]!, 'create table s (v int)');
  }
});

afterAll(async () => {
  for (const n of [a, b]) await removeTestCluster(n);
  rmSync(STATE, { recursive: true, force: true });
});

describe('pgmam backup', () => {
  it('--all --type incr adds one incr to each; with no writes the next run skips both; after a write only that one', async () => {
    const first = await run(['backup', '--all', '--type', 'incr']);
    expect(first.code, first.stderr).toBe(0);
    // Each cluster's line: the type taken, why, its label, what expired (without a terminal too).
    const labelA = (await info(a)).at(-1)!.label;
    expect(first.stdout).toContain(`15/${a}: incr backup ${labelA} (--type incr); nothing expired\n`);
    expect(await types(a)).toEqual(['full', 'incr']);
    expect(await types(b)).toEqual(['full', 'incr']);

    // Maintenance WAL is not a change: a WAL switch and a checkpoint on b.
    await sql(ports[b]!, 'select pg_switch_wal()');
    await sql(ports[b]!, 'checkpoint');
    const second = await run(['backup', '--all', '--type', 'incr']);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain('2 skipped (no changes)');
    // An explicit type skipped: why, and how to force it.
    expect(second.stdout).toContain(`15/${a}: skipped: no changes since ${labelA} (--force takes it anyway)\n`);
    expect(await types(a)).toEqual(['full', 'incr']);
    expect(await types(b)).toEqual(['full', 'incr']);

    await sql(ports[a]!, 'insert into s values (1)');
    const third = await run(['backup', '--all', '--type', 'incr', '--json']);
    expect(third.code, third.stderr).toBe(0);
    const outcomes = (JSON.parse(third.stdout) as { outcomes: Array<{ cluster: string; result: string }> }).outcomes;
    expect(outcomes).toEqual(expect.arrayContaining([expect.objectContaining({ cluster: `15/${a}`, result: 'backed-up' }), expect.objectContaining({ cluster: `15/${b}`, result: 'skipped' })]));
    expect(await types(a)).toEqual(['full', 'incr', 'incr']);
    expect(await types(b)).toEqual(['full', 'incr']);

    // --force backs up anyway.
    expect((await run(['backup', b, '--type', 'incr', '--force'])).code).toBe(0);
    expect(await types(b)).toEqual(['full', 'incr', 'incr']);
  });

  it('--type auto takes a full when the last full is older than full-interval (age faked through the configuration)', async () => {
    const short = `${TEST_ROOT}/backup-short.conf`;
    writeFileSync(short, `${[...base, 'full-interval = 1s'].join('\n')}\n`);
    await new Promise((r) => setTimeout(r, 1100));
    const r = await pgmam(['backup', a, '--config', short]);
    expect(r.code, r.stderr).toBe(0);
    expect((await types(a)).at(-1)).toBe('full');
    // With the default intervals the next auto backup is an incr (skipped: nothing written).
    await sql(ports[a]!, 'insert into s values (2)');
    expect((await run(['backup', a])).code).toBe(0);
    expect((await types(a)).at(-1)).toBe('incr');
  });

  it('pgbackup -path DIR backs up all and exports a repository pgBackRest can restore from', async () => {
    await sql(ports[a]!, 'insert into s values (42)');
    await sql(ports[b]!, 'insert into s values (43)');
    const dir = `${TEST_ROOT}/export`;
    const links = mkdtempSync('/tmp/pgmam-legacy-');
    symlinkSync(PGMAM, `${links}/pgbackup`);
    const r = await run(['-path', dir], { bin: `${links}/pgbackup` });
    rmSync(links, { recursive: true });
    expect(r.code, r.stderr).toBe(0);
    for (const s of [a, b]) {
      const exported = await sh('pgbackrest', [`--repo1-path=${dir}`, `--stanza=${s}`, '--output=json', 'info'], { user: 'postgres' });
      const labels = (JSON.parse(exported.stdout.replace(/"system-id":(\d+)/g, '"system-id":"$1"')) as Array<{ backup: Array<{ label: string }> }>)[0]!.backup.map((x) => x.label);
      expect(labels).toEqual((await info(s)).map((x) => x.label));
      expect((await sh('pgbackrest', [`--repo1-path=${dir}`, `--stanza=${s}`, 'verify'], { user: 'postgres' })).code).toBe(0);
    }
    // Restore a's newest backup from the export into a scratch directory: it starts and shows the rows.
    const scratch = `${TEST_ROOT}/scratch`;
    mkdirSync(scratch, { mode: 0o700 });
    await sh('chown', ['postgres:postgres', scratch]);
    const restore = await sh('pgbackrest', [`--repo1-path=${dir}`, `--stanza=${a}`, `--pg1-path=${scratch}`, '--archive-mode=off', 'restore'], { user: 'postgres' });
    expect(restore.code, restore.stderr).toBe(0);
    expect(await queryDataDirCopy(scratch, `/etc/postgresql/15/${a}/pg_hba.conf`, 'select string_agg(v::text, \',\' order by v) from s', { inPlace: true })).toBe('1,2,42');
    rmSync(scratch, { recursive: true, force: true });

    // Again: only new or changed files are copied.
    const again = await run(['backup', '--all', '--export-to', dir, '--json']);
    const exported = (JSON.parse(again.stdout) as { exported: { copied: number; unchanged: number } }).exported;
    expect(exported.unchanged).toBeGreaterThan(exported.copied);
  });

  it('a stopped cluster is reported and the other backed up: exit 7', async () => {
    await sh('pg_ctlcluster', ['15', b, 'stop']);
    try {
      const before = await types(a);
      const r = await run(['backup', '--all', '--type', 'incr', '--force']);
      expect(r.code, r.stderr).toBe(7);
      expect(r.stdout).toContain(`15/${b}: failed: 15/${b} is down`);
      expect((await types(a)).length).toBe(before.length + 1);
    } finally {
      await sh('pg_ctlcluster', ['15', b, 'start']);
    }
  });

  it('never runs while another pgmam command holds the lock: it waits, or is skipped as locked', async () => {
    const holder = spawn('sleep', ['60'], { stdio: 'ignore' });
    mkdirSync(`${STATE}/locks`, { recursive: true });
    const lock = `${STATE}/locks/${a}.lock`;
    writeFileSync(lock, JSON.stringify({ pid: holder.pid, command: 'pitr', startedAt: new Date().toISOString() }));
    const noWait = `${TEST_ROOT}/backup-nowait.conf`;
    writeFileSync(noWait, `${[...base, 'lock-wait = 1'].join('\n')}\n`);
    try {
      const before = await types(a);
      const skipped = await pgmam(['backup', a, '--type', 'incr', '--force', '--config', noWait]);
      expect(skipped.code, skipped.stderr).toBe(4);
      expect(skipped.stdout).toContain('locked');
      expect(await types(a)).toEqual(before);

      // The lock goes away after 2 s; with the default lock-wait the backup waits for it, then runs.
      setTimeout(() => unlinkSync(lock), 2000);
      const t0 = Date.now();
      const waited = await run(['backup', a, '--type', 'incr', '--force']);
      expect(waited.code, waited.stderr).toBe(0);
      expect(Date.now() - t0).toBeGreaterThan(1500);
      expect((await types(a)).length).toBe(before.length + 1);
    } finally {
      holder.kill();
      if (existsSync(lock)) unlinkSync(lock);
    }
  });
});

describe('pgmam schedule', () => {
  // This file's log directory is not the package's /var/log/pgmam: a logrotate file of its own.
  const logDir = TEST_ROOT;
  const rotateFile = `/etc/logrotate.d/pgmam-${logDir.replace(/^\/+/, '').replace(/[^A-Za-z0-9]+/g, '-')}`;
  /** The rotation of pgmam's logs, which logrotate itself accepts. */
  const expectLogrotate = async () => {
    expect(readFileSync(rotateFile, 'utf8')).toContain(`${logDir}/*.log {\n\tweekly\n\trotate 8\n`);
    const check = await sh('logrotate', ['--debug', rotateFile]);
    expect(check.code, check.stderr).toBe(0);
  };
  // The host's facts choose: systemd timers where systemd runs (PID 1), a cron file otherwise.
  const systemd = existsSync('/run/systemd/system');
  it.runIf(!systemd)('without systemd: install writes a cron file (backups, weekly drills) that cron accepts; show prints it; remove removes it', async () => {
    const file = '/etc/cron.d/pgmam';
    if (existsSync(file)) throw new Error(`${file} exists on this host already: not touching it`);
    try {
      expect((await run(['schedule', 'install'])).code).toBe(0);
      const text = readFileSync(file, 'utf8');
      expect(text).toContain(`0 * * * * root ${PGMAM} backup --all --config ${CONF}`);
      // And the weekly restore drills (drill-schedule's default).
      expect(text).toContain(`30 4 * * 0 root ${PGMAM} drill --all -q --config ${CONF}`);
      // crontab -n checks the syntax of a user crontab: the same lines without the user field.
      const userTab = `${TEST_ROOT}/crontab-check`;
      writeFileSync(userTab, text.split('\n').map((l) => (/^[\d*]/.test(l) ? l.replace(/^((?:\S+\s+){5})root\s+/, '$1') : l)).join('\n'));
      const check = await sh('crontab', ['-n', userTab]);
      expect(check.code, check.stderr).toBe(0);
      expect((await run(['schedule', 'show'])).stdout).toContain('backup --all');
      await expectLogrotate();
    } finally {
      expect((await run(['schedule', 'remove'])).code).toBe(0);
    }
    expect(existsSync(file)).toBe(false);
    expect(existsSync(rotateFile)).toBe(false);
    expect((await run(['schedule', 'show'])).stdout).toContain('no pgmam schedule is installed');
  });

  it.runIf(systemd)('with systemd: install writes a service and a timer systemd accepts and enables; remove removes them', async () => {
    const timer = '/etc/systemd/system/pgmam-backup.timer';
    if (existsSync(timer)) throw new Error(`${timer} exists on this host already: not touching it`);
    try {
      expect((await run(['schedule', 'install'])).code).toBe(0);
      expect(readFileSync('/etc/systemd/system/pgmam-backup.service', 'utf8')).toContain(`ExecStart=${PGMAM} backup --all --config ${CONF}`);
      expect(readFileSync(timer, 'utf8')).toContain('OnCalendar=*-*-* *:00:00');
      expect((await sh('systemd-analyze', ['verify', timer])).code).toBe(0);
      expect((await sh('systemctl', ['is-enabled', 'pgmam-backup.timer'])).stdout.trim()).toBe('enabled');
      expect(readFileSync('/etc/systemd/system/pgmam-drill.timer', 'utf8')).toContain('OnCalendar=Sun *-*-* 04:30:00');
      expect((await sh('systemd-analyze', ['verify', '/etc/systemd/system/pgmam-drill.timer'])).code).toBe(0);
      expect((await sh('systemctl', ['is-enabled', 'pgmam-drill.timer'])).stdout.trim()).toBe('enabled');
      await expectLogrotate();
    } finally {
      expect((await run(['schedule', 'remove'])).code).toBe(0);
    }
    expect(existsSync(timer)).toBe(false);
    expect(existsSync('/etc/systemd/system/pgmam-drill.timer')).toBe(false);
    expect(existsSync(rotateFile)).toBe(false);
  });
});
