// pgmam export and export --verify against a real cluster.
import { execa } from 'execa';
import { cpSync, existsSync, mkdirSync, readdirSync, writeFileSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initTestCluster, listEntry, pgmam, pgmamOk, removeTestCluster, REPO, sh, sql, TEST_ROOT, traces, uniqueName } from './helpers.js';

const app = uniqueName();
const to = `${TEST_ROOT}/exports`;
let port: number;

beforeAll(async () => {
  port = await initTestCluster(app);
  await sql(port, 'create database second');
  await sql(port, 'create table t as select g from generate_series(1, 500) g');
  await sql(port, 'create role t_export_owner login');
  await sql(port, 'alter table t owner to t_export_owner');
  await sql(port, 'create table u as select g from generate_series(1, 50) g', 'second');
});

const made: string[] = [];
afterAll(async () => {
  for (const n of [...made, app]) await removeTestCluster(n);
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
    await pgmamOk(['export', '--verify', dir]);
  });

  it('a base backup export verifies (pg_verifybackup on an extracted copy); one flipped byte: exit 4 naming the file', async () => {
    const r = await pgmam(['export', app, '--to', to, '--format', 'basebackup']);
    expect(r.code, r.stderr).toBe(0);
    const dir = `${to}/${app}/${exportsOf().at(-1)}`;
    expect(readdirSync(dir)).toEqual(expect.arrayContaining(['backup_manifest', 'base.tar.gz', 'pg_wal.tar.gz', 'SHA256SUMS', 'meta.json']));
    await pgmamOk(['export', '--verify', dir]);
    const file = `${dir}/base.tar.gz`;
    const bytes = readFileSync(file);
    bytes[1000] = bytes[1000]! ^ 0xff;
    writeFileSync(file, bytes);
    const bad = await pgmam(['export', '--verify', dir]);
    expect(bad.code, bad.stderr).toBe(4);
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

  it('initcluster --from-export: a new managed cluster with identical tables; --only-db; a damaged export is refused', async () => {
    const dump = `${to}/${app}/${exportsOf().find((d) => existsSync(`${to}/${app}/${d}/postgres.dump`))}`;
    const copy = `${app}_copy`;
    const only = `${app}_only`;
    made.push(copy, only);
    const r = await pgmam(['initcluster', copy, '--from-export', dump]);
    expect(r.code, r.stderr).toBe(0);
    const copyPort = (await listEntry(copy)).port;
    const digest = (p: number, table: string, db: string) => sql(p, `select count(*) || ':' || md5(string_agg(g::text, ',' order by g)) from ${table}`, db);
    expect(await digest(copyPort, 't', 'postgres')).toBe(await digest(port, 't', 'postgres'));
    expect(await digest(copyPort, 'u', 'second')).toBe(await digest(port, 'u', 'second'));
    expect((await listEntry(copy))).toMatchObject({ managed: true, status: 'online', stanza: copy, lastBackup: expect.objectContaining({ type: 'full' }) });
    expect((await sh('pgbackrest', [`--stanza=${copy}`, 'check'], { user: 'postgres' })).code).toBe(0);

    await pgmamOk(['initcluster', only, '--from-export', dump, '--only-db', 'second']);
    const onlyPort = (await listEntry(only)).port;
    expect(await sql(onlyPort, "select string_agg(datname, ',' order by datname) from pg_database where not datistemplate")).toBe('postgres,second');
    expect(await sql(onlyPort, "select count(*) from pg_class where relname = 't'")).toBe('0');

    const damaged = `${to}/${app}/damaged`;
    cpSync(dump, damaged, { recursive: true });
    const f = `${damaged}/second.dump`;
    const bytes = readFileSync(f);
    bytes[20] = bytes[20]! ^ 0xff;
    writeFileSync(f, bytes);
    const refused = await pgmam(['initcluster', `${app}_bad`, '--from-export', damaged]);
    expect(refused.code, refused.stderr).toBe(4);
    expect(refused.stderr).toContain('second.dump: checksum mismatch');
    expect(await traces(`${app}_bad`)).toEqual([]);
  });

  it('a base backup export restores into a new cluster that starts, has the rows, and archives to its own stanza only', async () => {
    const r = await pgmam(['export', app, '--to', to, '--format', 'basebackup', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const dir = (JSON.parse(r.stdout) as Array<{ dir: string }>)[0]!.dir;
    const sourceArchive = () => readdirSync(`${REPO}/archive/${app}/15-1`).flatMap((e) => (e.endsWith('.history') ? [e] : readdirSync(`${REPO}/archive/${app}/15-1/${e}`)));
    const before = sourceArchive();
    const bb = `${app}_bb`;
    made.push(bb);
    const c = await pgmam(['initcluster', bb, '--from-export', dir]);
    expect(c.code, c.stderr).toBe(0);
    const p = (await listEntry(bb)).port;
    expect(await sql(p, 'select count(*) from t')).toBe(await sql(port, 'select count(*) from t'));
    expect(await sql(p, 'show archive_command')).toBe(`pgbackrest --stanza=${bb} archive-push %p`);
    expect((await sh('pgbackrest', [`--stanza=${bb}`, 'check'], { user: 'postgres' })).code).toBe(0);
    const tli = (await sql(p, 'select pg_walfile_name(pg_current_wal_lsn())')).slice(0, 8);
    const added = sourceArchive().filter((f) => !before.includes(f));
    expect(added.filter((f) => f.startsWith(tli) || f.endsWith('.history'))).toEqual([]);
  });

  it('an unknown app is refused (exit 4)', async () => {
    expect((await pgmam(['export', 't_nosuch', '--to', to])).code).toBe(4);
  });
});
