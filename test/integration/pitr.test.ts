// pgmam pitr against real clusters: the sentinel pattern (rows A, time T, rows B, restore to T, only A).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PGMAM, STATE, initTestCluster, queryDataDirCopy, listEntry, pgbackrestInfo, pgmam, removeTestCluster, sh, sql, uniqueName } from './helpers.js';

const app = uniqueName();
const other = uniqueName();
let port: number;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rows = async () => sql(port, 'select coalesce(string_agg(v, \',\' order by v), \'\') from s');
const timeline = async () => parseInt((await sql(port, 'select pg_walfile_name(pg_current_wal_lsn())')).slice(0, 8), 16);
const now = () => sql(port, 'select now()');

/** Everything a refused pitr must leave as it was. */
async function snapshot() {
  const e = await listEntry(app);
  return { status: e.status, rows: await rows(), timeline: await timeline(), preserved: e.preserved.length, backups: (await pgbackrestInfo(app))[0]!.backup.length };
}

beforeAll(async () => {
  port = await initTestCluster(app);
  await sql(port, 'create table s (v text)');
});

afterAll(async () => {
  await removeTestCluster(app);
  await removeTestCluster(other);
});

describe('pgmam pitr', () => {
  it('restores to T: only rows written before T remain, on a new timeline with a new full backup; the old data is preserved', async () => {
    await sleep(1100); // the recovery window starts one whole second after the first backup's end
    await sql(port, "insert into s values ('A')");
    const t = await now();
    await sql(port, "insert into s values ('B')");

    const r = await pgmam(['pitr', app, '--to', t, '--yes']);
    expect(r.code, r.stderr).toBe(0);

    expect(await rows()).toBe('A');
    expect(await timeline()).toBe(2);
    await sql(port, "insert into s values ('writable')");
    await sql(port, "delete from s where v = 'writable'");
    const info = (await pgbackrestInfo(app))[0]!;
    expect(info.backup.map((b) => b.type)).toEqual(['full', 'full']);
    expect(info.backup[1]!.archive.start.slice(0, 8)).toBe('00000002');
    expect((await sh('pgbackrest', [`--stanza=${app}`, 'check'], { user: 'postgres' })).code).toBe(0);

    // The preserved directory holds the cluster as it was: started (on a copy) on a spare port, it shows A and B.
    const e = await listEntry(app);
    expect(e.status).toBe('online');
    expect(e.preserved).toHaveLength(1);
    expect(e.preserved[0]!.reason).toBe('pitr');
    expect(await queryDataDirCopy(e.preserved[0]!.path, `/etc/postgresql/15/${app}/pg_hba.conf`, "select string_agg(v, ',' order by v) from s")).toBe('A,B');
  });

  it('a second pitr works; --undo brings back the state before it; a later pitr follows the undone lineage', async () => {
    await sleep(1100); // past the first pitr's full backup
    await sql(port, "insert into s values ('C')");
    const t2 = await now();
    await sql(port, "insert into s values ('D')");
    const second = await pgmam(['pitr', app, '--to', t2, '--yes']);
    expect(second.code, second.stderr).toBe(0);
    expect(await rows()).toBe('A,C');
    expect(await timeline()).toBe(3);

    const undo = await pgmam(['pitr', app, '--undo', '--yes']);
    expect(undo.code, undo.stderr).toBe(0);
    expect(await rows()).toBe('A,C,D');
    // Back on the undone lineage, promoted onto a new timeline above the abandoned one (3), so
    // nothing ever follows timeline 3 and the newest backups sort last (pgBackRest's expire needs that).
    expect(await timeline()).toBe(4);
    expect((await sh('pgbackrest', [`--stanza=${app}`, 'check'], { user: 'postgres' })).code).toBe(0);
    const e = await listEntry(app);
    expect(e.preserved.map((p) => p.reason)).toEqual(['pitr', 'pitr-undo']);

    await sleep(1100); // past the undo's full backup
    await sql(port, "insert into s values ('E')");
    const t3 = await now();
    await sql(port, "insert into s values ('F')");
    const r = await pgmam(['pitr', app, '--to', t3, '--yes']);
    expect(r.code, r.stderr).toBe(0);
    // The undone lineage (timeline 2) with E — not the abandoned timeline 3, which lacked D.
    expect(await rows()).toBe('A,C,D,E');
  });

  it('--latest keeps every row committed before the command started', async () => {
    await sql(port, "insert into s values ('G')");
    const r = await pgmam(['pitr', app, '--latest', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(await rows()).toBe('A,C,D,E,G');
  });

  it('--latest of a stopped cluster keeps the commits of its last, never archived WAL segment', async () => {
    await sql(port, "insert into s values ('last-before-stop')");
    const before = await rows();
    expect((await sh('pg_ctlcluster', ['15', app, 'stop'])).code).toBe(0);
    const r = await pgmam(['pitr', app, '--latest', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(await rows()).toBe(before);
  });

  it('the legacy form pitr -a APP -t T -y', async () => {
    await sleep(1100);
    await sql(port, "insert into s values ('H')");
    const t = await now();
    await sql(port, "insert into s values ('I')");
    const dir = mkdtempSync('/tmp/pgmam-legacy-');
    symlinkSync(PGMAM, `${dir}/pitr`);
    const r = await pgmam(['-a', app, '-t', t, '-y'], { bin: `${dir}/pitr` });
    rmSync(dir, { recursive: true });
    expect(r.code, r.stderr).toBe(0);
    expect(await rows()).toBe('A,C,D,E,G,H,last-before-stop');
  });
});

describe('pgmam pitr refusals leave the cluster untouched', () => {
  async function refused(code: number, args: string[], env?: Record<string, string>) {
    const before = await snapshot();
    const r = await pgmam(args, { env });
    expect(r.code, r.stderr).toBe(code);
    expect(r.stderr).toMatch(/^pgmam: /m);
    expect(await snapshot()).toEqual(before);
    return r;
  }

  it('a target in the future', async () => {
    await refused(4, ['pitr', app, '--to', new Date(Date.now() + 3_600_000).toISOString(), '--yes']);
  });
  it("a target before the first backup's end", async () => {
    const r = await refused(4, ['pitr', app, '--to', '2020-01-01 00:00:00+00', '--yes']);
    expect(r.stderr).toContain('recovery window starts at');
  });
  it('a garbage target', async () => {
    await refused(2, ['pitr', app, '--to', 'yesterday', '--yes']);
  });
  it('a target without an offset, with a hint on the accepted forms', async () => {
    const r = await refused(2, ['pitr', app, '--to', '2026-01-19 10:40', '--yes']);
    expect(r.stderr).toContain('accepted forms');
  });
  it('an unknown app', async () => {
    await refused(4, ['pitr', 't_nosuchapp', '--latest', '--yes']);
  });
  it('no --yes without a terminal', async () => {
    await refused(2, ['pitr', app, '--latest']);
  });
  it('a cluster with standby.signal', async () => {
    const signal = `/var/lib/postgresql/15/${app}/standby.signal`;
    writeFileSync(signal, '');
    try {
      const r = await refused(4, ['pitr', app, '--latest', '--yes']);
      expect(r.stderr).toContain('standby.signal');
    } finally {
      unlinkSync(signal);
    }
  });
  it('a second pitr while one holds the lock', async () => {
    const holder = spawn('sleep', ['60'], { stdio: 'ignore' });
    mkdirSync(`${STATE}/locks`, { recursive: true });
    const lock = `${STATE}/locks/${app}.lock`;
    writeFileSync(lock, JSON.stringify({ pid: holder.pid, command: 'pitr', startedAt: new Date().toISOString() }));
    try {
      const r = await refused(4, ['pitr', app, '--latest', '--yes']);
      expect(r.stderr).toContain('locked');
    } finally {
      holder.kill();
      unlinkSync(lock);
    }
  });
  it('an app whose stanza belongs to another cluster', async () => {
    await initTestCluster(other);
    // Point the other app's record at this app's stanza: a cross-cluster restore must be refused.
    const recFile = `${STATE}/clusters/${other}.json`;
    const rec = JSON.parse(readFileSync(recFile, 'utf8'));
    writeFileSync(recFile, JSON.stringify({ ...rec, stanza: app, stanzaFile: `/etc/pgbackrest/conf.d/${app}.conf` }));
    const otherPort = (await listEntry(other)).port;
    await sql(otherPort, 'create table o (v int)');
    const before = await sql(otherPort, 'select pg_walfile_name(pg_current_wal_lsn())');
    const r = await refused(4, ['pitr', other, '--latest', '--yes']);
    expect(r.stderr).toContain(`stanza ${app} does not belong to 15/${other}`);
    expect(await sql(otherPort, 'select pg_walfile_name(pg_current_wal_lsn())')).toBe(before);
    expect(existsSync(`/var/lib/postgresql/15/${other}`)).toBe(true);
    writeFileSync(recFile, JSON.stringify(rec));
  });
});
