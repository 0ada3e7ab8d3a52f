// pgmam branch against real clusters: the branch is independent, the parent untouched.
import { execa } from 'execa';
import { mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFIG, PGMAM, REPO, ROOT, clusters, ownClusters, freePort, initTestCluster, listEntry, pgbackrestInfo, pgmam, queryDataDirCopy, removeTestCluster, sh, sql, traces, uniqueName } from './helpers.js';

const parent = uniqueName();
const dev = `${parent}_dev`;
const noBackup = uniqueName();
const unmanaged = uniqueName();
let port: number;
const made = [dev, `${parent}_at1`, `${parent}_masked`, `${parent}_broken`, `${parent}_pty`];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rows = (p: number) => sql(p, "select coalesce(string_agg(v, ',' order by v), '') from s");
const timelineOf = async (p: number) => parseInt((await sql(p, 'select pg_walfile_name(pg_current_wal_lsn())')).slice(0, 8), 16);

/** The parent as the tests must find it after anything a branch does. */
async function parentState() {
  const e = await listEntry(parent);
  const info = (await pgbackrestInfo(parent))[0]!;
  return { status: e.status, port: e.port, rows: await rows(port), backups: info.backup.map((b) => b.label), timeline: await timelineOf(port) };
}

/** The parent's archive: history files and segments, by name. */
function parentArchive(): string[] {
  const base = `${REPO}/archive/${parent}/15-1`;
  const out: string[] = [];
  for (const e of readdirSync(base)) {
    if (e.endsWith('.history')) out.push(e);
    else for (const f of readdirSync(`${base}/${e}`)) out.push(f.slice(0, 24));
  }
  return out;
}

beforeAll(async () => {
  port = await initTestCluster(parent);
  await sql(port, 'create table s (v text)');
  await sql(port, "insert into s values ('A')");
});

afterAll(async () => {
  for (const n of [...made, noBackup, unmanaged, parent]) await removeTestCluster(n);
});

describe('pgmam branch create', () => {
  it('makes an independent, writable branch with its own stanza; the parent is untouched', async () => {
    const before = await parentState();
    const archiveBefore = parentArchive();
    const r = await pgmam(['branch', 'create', parent, '--name', 'dev']);
    expect(r.code, r.stderr).toBe(0);

    const b = await listEntry(dev);
    expect(b).toMatchObject({ managed: true, status: 'online', stanza: dev });
    expect(b.port).not.toBe(port);
    expect(await rows(b.port)).toBe('A');
    await sql(b.port, "insert into s values ('branch-only')");
    expect(await sql(b.port, 'show archive_command')).toBe(`pgbackrest --stanza=${dev} archive-push %p`);
    const branchTimeline = await timelineOf(b.port);

    // Its own full backup; archiving to its own stanza works.
    expect((await pgbackrestInfo(dev))[0]!.backup.map((x) => x.type)).toEqual(['full']);
    expect((await sh('pgbackrest', [`--stanza=${dev}`, 'check'], { user: 'postgres' })).code).toBe(0);

    // The parent: online, same rows and backups and timeline; its archive has nothing of the branch.
    expect(await parentState()).toEqual(before);
    expect(await rows(port)).toBe('A');
    const hex = branchTimeline.toString(16).toUpperCase().padStart(8, '0');
    const added = parentArchive().filter((f) => !archiveBefore.includes(f));
    expect(added.filter((f) => f.startsWith(hex) || f.endsWith('.history'))).toEqual([]);
    expect((await sh('pgbackrest', [`--stanza=${parent}`, 'check'], { user: 'postgres' })).code).toBe(0);
  });

  it('--at T: the branch has only what the parent had at T', async () => {
    await sleep(1100);
    await sql(port, "insert into s values ('X')");
    const t = await sql(port, 'select now()');
    await sql(port, "insert into s values ('Y')");
    const r = await pgmam(['branch', 'create', parent, '--name', 'at1', '--at', t]);
    expect(r.code, r.stderr).toBe(0);
    const b = await listEntry(`${parent}_at1`);
    expect(await rows(b.port)).toBe('A,X');
    expect(await rows(port)).toBe('A,X,Y');
  });

  it('--post-sql and --conf shape the branch before it is handed over; the parent keeps its data', async () => {
    const dir = mkdtempSync('/tmp/pgmam-postsql-');
    writeFileSync(`${dir}/01-mask.sql`, "update s set v = 'masked';\n");
    writeFileSync(`${dir}/02-fixture.sql`, "insert into s values ('fixture');\n");
    writeFileSync(`${dir}/branch.conf`, "work_mem = '8MB'\n# a comment\n");
    const r = await pgmam(['branch', 'create', parent, '--name', 'masked', '--post-sql', dir, '--conf', `${dir}/branch.conf`]);
    expect(r.code, r.stderr).toBe(0);
    const b = await listEntry(`${parent}_masked`);
    expect(await rows(b.port)).toBe('fixture,masked,masked,masked');
    expect(await sql(b.port, 'show work_mem')).toBe('8MB');
    expect(await rows(port)).toBe('A,X,Y');

    // A failing script: exit 6, the branch left stopped and listed.
    writeFileSync(`${dir}/03-broken.sql`, 'select * from no_such_table;\n');
    const broken = await pgmam(['branch', 'create', parent, '--name', 'broken', '--post-sql', dir]);
    expect(broken.code, broken.stderr).toBe(6);
    expect(broken.stderr).toContain('03-broken.sql');
    expect(await listEntry(`${parent}_broken`)).toMatchObject({ managed: true, status: 'down' });
    expect(await rows(port)).toBe('A,X,Y');

    // Drop it with its backups: nothing of it is left.
    const drop = await pgmam(['branch', 'drop', `${parent}_broken`, '--yes', '--purge-backups']);
    expect(drop.code, drop.stderr).toBe(0);
    expect(await traces(`${parent}_broken`)).toEqual([]);
    rmSync(dir, { recursive: true });
  });

  it('the interactive pgbranch -c, on a real terminal, picks the parent and asks the label', async () => {
    const dir = mkdtempSync('/tmp/pgmam-legacy-');
    symlinkSync(PGMAM, `${dir}/pgbranch`);
    // A label that cannot make a branch name is asked again (not a ✔ and then exit 2); the port is offered.
    const r = await execa('python3', [`${ROOT}/test/integration/pty-drive.py`, '120', 'Branch which cluster', '\\r', 'Label of the branch', 'QA Test\\r', 'is not a branch name', '\\x15pty\\r', 'Port', '\\r', '--', `${dir}/pgbranch`, '-c', '-q'], {
      reject: false,
      env: { PGMAM_CONFIG: CONFIG },
    });
    rmSync(dir, { recursive: true });
    expect(r.exitCode, r.stdout).toBe(0);
    expect(r.stdout).toContain(`${parent}_QA Test is not a branch name`);
    const b = await listEntry(`${parent}_pty`);
    expect(b).toMatchObject({ status: 'online', managed: true });
    expect(await rows(b.port)).toBe('A,X,Y');
  });
});

describe('pgmam branch sync', () => {
  it("one-way: the branch gets the parent's newest commits, loses its own writes (preserved), twice in a row", async () => {
    await sql(port, "insert into s values ('B')");
    const before = await parentState();
    const r = await pgmam(['branch', 'sync', dev, '--yes']);
    expect(r.code, r.stderr).toBe(0);
    const b = await listEntry(dev);
    expect(await rows(b.port)).toBe('A,B,X,Y');
    const preserved = b.preserved.find((p) => p.reason === 'sync')!;
    expect(await queryDataDirCopy(preserved.path, `/etc/postgresql/15/${dev}/pg_hba.conf`, "select string_agg(v, ',' order by v) from s")).toBe('A,branch-only');
    expect(await parentState()).toEqual(before);

    // Again, right away: no archive-push conflicts on the branch's reset stanza (pgBackRest #1908).
    await sql(b.port, "insert into s values ('again')");
    const again = await pgmam(['branch', 'sync', dev, '--yes']);
    expect(again.code, again.stderr).toBe(0);
    expect(await rows(b.port)).toBe('A,B,X,Y');
    await sql(b.port, 'select pg_switch_wal()');
    await sleep(1500);
    expect(await sql(b.port, 'select failed_count from pg_stat_archiver')).toBe('0');
    expect((await sh('pgbackrest', [`--stanza=${dev}`, 'check'], { user: 'postgres' })).code).toBe(0);
    expect((await pgbackrestInfo(dev))[0]!.backup).toHaveLength(1);
    expect(await parentState()).toEqual(before);

    const list = JSON.parse((await pgmam(['branch', 'list', '--json'])).stdout) as Array<{ name: string; parent: string; syncedAt: string | null }>;
    expect(list.find((x) => x.name === dev)).toMatchObject({ parent, syncedAt: expect.any(String) });
  });

  it('the legacy pgbranch -b BRANCH sync -y', async () => {
    await sql(port, "insert into s values ('C')");
    const dir = mkdtempSync('/tmp/pgmam-legacy-');
    symlinkSync(PGMAM, `${dir}/pgbranch`);
    const r = await pgmam(['-b', dev, 'sync', '-y'], { bin: `${dir}/pgbranch` });
    rmSync(dir, { recursive: true });
    expect(r.code, r.stderr).toBe(0);
    expect(await rows((await listEntry(dev)).port)).toBe('A,B,C,X,Y');
  });
});

describe('refusals change nothing', () => {
  async function refused(code: number, args: string[], opts: Parameters<typeof pgmam>[1] = {}, newName?: string) {
    const before = await parentState();
    const hostBefore = (await ownClusters()).map((c) => c.cluster).sort();
    const r = await pgmam(args, opts);
    expect(r.code, r.stderr).toBe(code);
    expect(r.stderr).toMatch(/^pgmam: /m);
    expect(await parentState()).toEqual(before);
    expect((await ownClusters()).map((c) => c.cluster).sort()).toEqual(hostBefore);
    if (newName) expect(await traces(newName)).toEqual([]);
    return r;
  }

  it('sync of a parent: no reversed sync', async () => {
    const r = await refused(4, ['branch', 'sync', parent, '--yes']);
    expect(r.stderr).toContain('no bidirectional or reversed sync');
  });
  it('sync of an unmanaged cluster', async () => {
    expect((await sh('pg_createcluster', ['15', unmanaged, '--port', String(await freePort())])).code).toBe(0);
    await refused(4, ['branch', 'sync', unmanaged, '--yes']);
  });
  it('create with an existing name', async () => {
    await refused(4, ['branch', 'create', parent, '--name', 'dev']);
  });
  it('create from a parent with no backup', async () => {
    await initTestCluster(noBackup);
    for (const a of ['stop', 'stanza-delete --force', 'start', 'stanza-create']) await sh('pgbackrest', [`--stanza=${noBackup}`, ...a.split(' ')], { user: 'postgres' });
    const r = await refused(4, ['branch', 'create', noBackup, '--name', 'dev'], {}, `${noBackup}_dev`);
    expect(r.stderr).toContain('no backup');
  });
  it('--at outside the recovery window', async () => {
    await refused(4, ['branch', 'create', parent, '--name', 'old', '--at', '2020-01-01 00:00:00+00'], {}, `${parent}_old`);
  });
  it('a bad label', async () => {
    await refused(2, ['branch', 'create', parent, '--name', 'Bad-Label']);
  });
  it('a taken port', async () => {
    await refused(4, ['branch', 'create', parent, '--name', 'port', '--port', String(port)], {}, `${parent}_port`);
  });
  it('--conf that would break isolation', async () => {
    const dir = mkdtempSync('/tmp/pgmam-conf-');
    writeFileSync(`${dir}/bad.conf`, "archive_command = 'true'\nport = 5432\n");
    const r = await refused(4, ['branch', 'create', parent, '--name', 'conf', '--conf', `${dir}/bad.conf`], {}, `${parent}_conf`);
    expect(r.stderr).toContain('archive_command, port');
    rmSync(dir, { recursive: true });
  });
  it('pgbranch -c without a parent and without a terminal', async () => {
    const dir = mkdtempSync('/tmp/pgmam-legacy-');
    symlinkSync(PGMAM, `${dir}/pgbranch`);
    await refused(2, ['-c'], { bin: `${dir}/pgbranch` });
    rmSync(dir, { recursive: true });
  });
  it('drop of something that is not a branch, and drop without --yes off a terminal', async () => {
    await refused(4, ['branch', 'drop', parent, '--yes']);
    await refused(2, ['branch', 'drop', dev]);
    expect(existsSync(`/var/lib/postgresql/15/${dev}`)).toBe(true);
  });
});

describe('pgmam branch drop', () => {
  it('drops the branch, keeps its backups unless --purge-backups', async () => {
    const r = await pgmam(['branch', 'drop', `${parent}_at1`, '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect((await clusters()).some((c) => c.cluster === `${parent}_at1`)).toBe(false);
    expect((await pgbackrestInfo(`${parent}_at1`))[0]!.backup).toHaveLength(1);
    expect(await rows(port)).toBe('A,B,C,X,Y');
  });
});
