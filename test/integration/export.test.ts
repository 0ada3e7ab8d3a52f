// pgmam export and export --verify against a real cluster.
import { execa } from 'execa';
import { mkdirSync, readdirSync, writeFileSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_ROOT, initTestCluster, pgmam, removeTestCluster, sql, uniqueName } from './helpers.js';

const app = uniqueName();
const to = `${TEST_ROOT}/exports`;
let port: number;

beforeAll(async () => {
  port = await initTestCluster(app);
  await sql(port, 'create database second');
  await sql(port, 'create table t as select g from generate_series(1, 500) g');
  await sql(port, 'create table u as select g from generate_series(1, 50) g', 'second');
});

afterAll(async () => {
  await removeTestCluster(app);
});

const exportsOf = () => readdirSync(`${to}/${app}`).sort();

describe('pgmam export', () => {
  it('dumps every database and the globals, with a SHA256SUMS that sha256sum -c accepts and a meta.json', async () => {
    const r = await pgmam(['export', app, '--to', to]);
    expect(r.code, r.stderr).toBe(0);
    const dir = `${to}/${app}/${exportsOf().at(-1)}`;
    expect(readdirSync(dir).sort()).toEqual(['SHA256SUMS', 'globals.sql', 'meta.json', 'postgres.dump', 'second.dump']);
    const check = await execa('sha256sum', ['-c', 'SHA256SUMS'], { cwd: dir, reject: false });
    expect(check.exitCode, check.stdout).toBe(0);
    const meta = JSON.parse(readFileSync(`${dir}/meta.json`, 'utf8'));
    expect(meta).toMatchObject({ format: 'dump', cluster: `15/${app}`, pgVersion: '15' });
    expect(meta.databases.map((d: { name: string }) => d.name)).toEqual(['postgres', 'second']);
    expect((await pgmam(['export', '--verify', dir])).code).toBe(0);
  });

  it('a base backup export verifies (pg_verifybackup on an extracted copy); one flipped byte: exit 4 naming the file', async () => {
    const r = await pgmam(['export', app, '--to', to, '--format', 'basebackup']);
    expect(r.code, r.stderr).toBe(0);
    const dir = `${to}/${app}/${exportsOf().at(-1)}`;
    expect(readdirSync(dir)).toEqual(expect.arrayContaining(['backup_manifest', 'base.tar.gz', 'pg_wal.tar.gz', 'SHA256SUMS', 'meta.json']));
    expect((await pgmam(['export', '--verify', dir])).code).toBe(0);
    const file = `${dir}/base.tar.gz`;
    const bytes = readFileSync(file);
    bytes[1000] = bytes[1000]! ^ 0xff;
    writeFileSync(file, bytes);
    const bad = await pgmam(['export', '--verify', dir]);
    expect(bad.code).toBe(4);
    expect(bad.stderr).toContain(`${file}: checksum mismatch`);
  });

  it('retention: a new export removes exactly the exports past their tier\'s keep time', async () => {
    const day = 86400_000;
    const stamp = (msAgo: number) => new Date(Date.now() - msAgo).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
    const dated = {
      oldDaily: `${stamp(8 * day)}-daily`,
      freshDaily: `${stamp(6 * day)}-daily`,
      oldWeekly: `${stamp(31 * day)}-weekly`,
      freshWeekly: `${stamp(20 * day)}-weekly`,
      oldMonthly: `${stamp(366 * day)}-monthly`,
      freshMonthly: `${stamp(200 * day)}-monthly`,
    };
    for (const d of Object.values(dated)) mkdirSync(`${to}/${app}/${d}`);
    const before = exportsOf();
    const r = await pgmam(['export', app, '--to', to, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const removed = (JSON.parse(r.stdout) as Array<{ removed: string[] }>)[0]!.removed.sort();
    expect(removed).toEqual([dated.oldDaily, dated.oldMonthly, dated.oldWeekly].sort());
    const after = exportsOf();
    expect(after.filter((d) => !before.includes(d))).toHaveLength(1); // the new one
    for (const d of [dated.freshDaily, dated.freshWeekly, dated.freshMonthly]) expect(after).toContain(d);
  });

  it('an unknown app is refused (exit 4)', async () => {
    expect((await pgmam(['export', 't_nosuch', '--to', to])).code).toBe(4);
  });
});
