// Copy-on-write branches on a real XFS filesystem made with reflink=1 (a file, loop-mounted), and
// one-database branches: the parent keeps running and writing, and is never touched.
import { execa } from 'execa';
import { readdirSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, TEST_ROOT, freePort, initTestCluster, listEntry, mountXfs, ownClusters, unmountXfs, pgbackrestInfo, pgmam, removeTestCluster, sh, sql, testConfigLines, traces, uniqueName } from './helpers.js';

const IMAGE = `${TEST_ROOT}/xfs.img`;
const MOUNT = `${TEST_ROOT}/xfs`;
const XFS_CONFIG = `${TEST_ROOT}/xfs.conf`;
const onXfs = (args: string[]) => pgmam(args, { env: { PGMAM_CONFIG: XFS_CONFIG } });
const parent = uniqueName();
const cow = `${parent}_cow`;
const other = uniqueName(); // on the root filesystem (no reflink)
const one = `${other}_one`;
let port: number;
let otherPort: number;

const pgBin = (tool: string) => `/usr/lib/postgresql/15/bin/${tool}`;
const rows = (p: number) => sql(p, "select coalesce(string_agg(v, ',' order by v), '') from s");
const timelineOf = async (p: number) => parseInt((await sql(p, 'select pg_walfile_name(pg_current_wal_lsn())')).slice(0, 8), 16);

async function parentState() {
  const e = await listEntry(parent);
  return { status: e.status, port: e.port, dataDir: e.dataDir, rows: await rows(port), backups: (await pgbackrestInfo(parent))[0]!.backup.map((b) => b.label), timeline: await timelineOf(port) };
}

function parentArchive(): string[] {
  const base = `${REPO}/archive/${parent}/15-1`;
  return readdirSync(base).flatMap((e) => (e.endsWith('.history') ? [e] : readdirSync(`${base}/${e}`).map((f) => f.slice(0, 24))));
}

/** pgbench's invariant: every balance change is in the history, and the three balances agree. */
const pgbenchConsistent = (p: number) =>
  sql(p, 'select (select sum(abalance) from pgbench_accounts) = (select coalesce(sum(delta), 0) from pgbench_history) and (select sum(tbalance) from pgbench_tellers) = (select sum(bbalance) from pgbench_branches) and (select sum(bbalance) from pgbench_branches) = (select coalesce(sum(delta), 0) from pgbench_history)');

beforeAll(async () => {
  await mountXfs(IMAGE, MOUNT);
  writeFileSync(XFS_CONFIG, [...testConfigLines(), `data-root = ${MOUNT}/%v/%c`].join('\n') + '\n');
  const init = await onXfs(['initcluster', parent, '-q']);
  if (init.code !== 0) throw new Error(`initcluster ${parent} failed: ${init.stderr}`);
  port = (await listEntry(parent)).port;
  const bench = await sh('pgbench', ['-i', '-q', '-s', '5', '-h', '/var/run/postgresql', '-p', String(port), 'postgres'], { user: 'postgres' });
  if (bench.code !== 0) throw new Error(`pgbench -i failed: ${bench.stderr}`);
  await sql(port, "create table s (v text); insert into s values ('A')");

  otherPort = await initTestCluster(other);
  for (const db of ['shop', 'crm']) await sql(otherPort, `create database ${db}`);
  await sql(otherPort, "create table orders (id int); insert into orders select generate_series(1, 42)", 'shop');
  await sql(otherPort, 'create table contacts (id int); insert into contacts values (1)', 'crm');
}, 180_000);

afterAll(async () => {
  for (const n of [cow, one, parent, other]) await removeTestCluster(n);
  await unmountXfs(IMAGE, MOUNT);
}, 120_000);

describe('branch create --cow', () => {
  it('copies the running parent by reflink while pgbench writes to it: the load sees no error, the branch is consistent, the parent untouched', async () => {
    const before = await parentState();
    const archiveBefore = parentArchive();
    const load = execa('runuser', ['-u', 'postgres', '--', 'pgbench', '-n', '-c', '2', '-T', '15', '-h', '/var/run/postgresql', '-p', String(port), 'postgres'], { reject: false, cwd: '/tmp' });
    await new Promise((r) => setTimeout(r, 2000));
    const r = await onXfs(['branch', 'create', parent, '--name', 'cow', '--cow', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    const bench = await load;
    expect(bench.exitCode, String(bench.stderr)).toBe(0);
    expect(String(bench.stdout)).toMatch(/number of failed transactions: 0 /);

    const b = await listEntry(cow);
    expect(b).toMatchObject({ managed: true, status: 'online', stanza: cow, role: 'branch', parent, dataDir: `${MOUNT}/15/${cow}` });
    expect(await rows(b.port)).toBe('A');
    expect(await pgbenchConsistent(b.port)).toBe('t');
    const amcheck = await sh(pgBin('pg_amcheck'), ['-h', '/var/run/postgresql', '-p', String(b.port), '--all', '--heapallindexed', '--install-missing'], { user: 'postgres' });
    expect(amcheck.code, amcheck.stdout + amcheck.stderr).toBe(0);
    // The copy shares blocks with the parent: its largest table's file has shared extents.
    const rel = await sql(b.port, "select pg_relation_filepath('pgbench_accounts')");
    expect((await sh('filefrag', ['-v', `${b.dataDir}/${rel}`])).stdout).toMatch(/shared/);
    // Its own stanza, archiving and first full backup.
    expect(await sql(b.port, 'show archive_command')).toBe(`pgbackrest --stanza=${cow} archive-push %p`);
    expect((await pgbackrestInfo(cow))[0]!.backup.map((x) => x.type)).toEqual(['full']);
    await sql(b.port, "insert into s values ('branch-only')");

    // The parent: same rows of s, backups, timeline, still online; its archive has nothing of the branch's timeline.
    expect(await parentState()).toEqual(before);
    const hex = (await timelineOf(b.port)).toString(16).toUpperCase().padStart(8, '0');
    expect(parentArchive().filter((f) => !archiveBefore.includes(f) && (f.startsWith(hex) || f.endsWith('.history')))).toEqual([]);
    expect(await pgbenchConsistent(port)).toBe('t');
    expect((await sh('pgbackrest', [`--stanza=${parent}`, 'check'], { user: 'postgres' })).code).toBe(0);
  });

  it("branch sync --cow: the branch gets the parent's newest rows by reflink; its own data directory is preserved", async () => {
    await sql(port, "insert into s values ('B')");
    const before = await parentState();
    const r = await onXfs(['branch', 'sync', cow, '--cow', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    const b = await listEntry(cow);
    expect(await rows(b.port)).toBe('A,B');
    expect(await pgbenchConsistent(b.port)).toBe('t');
    expect(b.preserved).toHaveLength(1);
    expect(b.preserved[0]!.path.startsWith(`${MOUNT}/15/${cow}.pre-sync-`)).toBe(true);
    expect(await parentState()).toEqual(before);
  });

  it('is the default where the filesystem shares blocks, and --no-cow restores from the backups', async () => {
    const plan = await onXfs(['branch', 'create', parent, '--name', 'auto', '--dry-run']);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toContain('cow-copy');
    expect(plan.stdout).toMatch(/the copy: copy-on-write \(reflink\): XFS with reflink=1/);
    const restore = await onXfs(['branch', 'create', parent, '--name', 'auto', '--no-cow', '--dry-run']);
    expect(restore.stdout).toContain('restore-backup');
    expect(restore.stdout).not.toContain('cow-copy');
  });
});

describe('refusals change nothing', () => {
  async function refused(code: number, args: string[], run: typeof pgmam, newName: string) {
    const before = await parentState();
    const hostBefore = (await ownClusters()).map((c) => c.cluster).sort();
    const r = await run(args);
    expect(r.code, r.stderr).toBe(code);
    expect(await parentState()).toEqual(before);
    expect((await ownClusters()).map((c) => c.cluster).sort()).toEqual(hostBefore);
    expect(await traces(newName)).toEqual([]);
    return r;
  }
  it('--cow --at: a copy taken now cannot recover to an earlier time (exit 2)', async () => {
    const r = await refused(2, ['branch', 'create', parent, '--name', 'past', '--cow', '--at', new Date(Date.now() - 60_000).toISOString(), '--yes'], onXfs, `${parent}_past`);
    expect(r.stderr).toContain('--cow copies the running parent now');
  });
  it('--cow where the filesystem cannot share blocks (ext4): refused with the reason (exit 4), never a silent full copy', async () => {
    const r = await refused(4, ['branch', 'create', other, '--name', 'nocow', '--cow', '--yes'], pgmam, `${other}_nocow`);
    expect(r.stderr).toMatch(/--cow refused: .* cannot share blocks/);
  });
  it('--only-db of a database the backup does not hold (exit 4): one the parent lacks, and one made after the newest backup', async () => {
    const r = await refused(4, ['branch', 'create', other, '--name', 'none', '--only-db', 'nosuch', '--yes'], pgmam, `${other}_none`);
    expect(r.stderr).toMatch(/--only-db nosuch: the backup \S+ of 15\/\S+ has no database nosuch/);
    const later = await refused(4, ['branch', 'create', other, '--name', 'none', '--only-db', 'shop', '--yes'], pgmam, `${other}_none`);
    expect(later.stderr).toContain('has no database shop');
  });
});

describe('branch create --only-db', () => {
  it("holds the chosen database's rows and no other user database", async () => {
    expect((await pgmam(['backup', other, '-q'])).code).toBe(0);
    const p = await freePort();
    const r = await pgmam(['branch', 'create', other, '--name', 'one', '--only-db', 'shop', '--port', String(p), '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(await sql(p, 'select count(*) from orders', 'shop')).toBe('42');
    expect(await sql(p, "select string_agg(datname, ',' order by datname) from pg_database where not datistemplate")).toBe('postgres,shop');
    // The parent keeps both.
    expect(await sql(otherPort, "select string_agg(datname, ',' order by datname) from pg_database where not datistemplate")).toBe('crm,postgres,shop');
    expect(await sql(otherPort, 'select count(*) from contacts', 'crm')).toBe('1');
  });
});
