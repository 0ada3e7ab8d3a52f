// pgmam resetwal on a cluster whose start truly fails (its needed WAL removed).
import { existsSync, readdirSync, unlinkSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusters, initTestCluster, listEntry, pgbackrestInfo, pgmam, removeTestCluster, sh, sql, uniqueName } from './helpers.js';

const app = uniqueName();
const unmanaged = uniqueName();
let port: number;
const dataDir = `/var/lib/postgresql/15/${app}`;
const preservedDirs = () => readdirSync('/var/lib/postgresql/15').filter((d) => d.startsWith(`${app}.pre-`));

beforeAll(async () => {
  port = await initTestCluster(app);
  await sql(port, 'create table t as select g from generate_series(1, 100) g');
  await sql(port, 'checkpoint');
});

afterAll(async () => {
  await removeTestCluster(app);
  await removeTestCluster(unmanaged);
});

describe('pgmam resetwal', () => {
  it('refuses a running cluster and an unmanaged one, changing nothing', async () => {
    const r = await pgmam(['resetwal', app, '--yes']);
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toContain('is running');
    expect((await listEntry(app)).status).toBe('online');
    expect((await sh('pg_createcluster', ['15', unmanaged, '--port', '26991'])).code).toBe(0);
    expect((await pgmam(['resetwal', unmanaged, '--yes'])).code).toBe(4);
    expect(preservedDirs()).toEqual([]);
  });

  it('brings back a cluster whose WAL is gone: a full copy first, then a new full backup; check passes', async () => {
    await sh('pg_ctlcluster', ['15', app, 'stop', '-m', 'immediate']);
    for (const f of readdirSync(`${dataDir}/pg_wal`)) if (/^[0-9A-F]{24}$/.test(f)) unlinkSync(`${dataDir}/pg_wal/${f}`);
    expect((await sh('pg_ctlcluster', ['15', app, 'start'])).code).not.toBe(0);
    const backupsBefore = (await pgbackrestInfo(app))[0]!.backup.length;

    // Without --yes and without a terminal: refused, nothing changed.
    const noYes = await pgmam(['resetwal', app]);
    expect(noYes.code, noYes.stderr).toBe(2);
    expect(preservedDirs()).toEqual([]);
    expect((await clusters()).find((c) => c.cluster === app)!.running).toBe(0);

    const r = await pgmam(['resetwal', app, '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect((await listEntry(app)).status).toBe('online');
    expect(await sql(port, 'select count(*) from t')).toBe('100');
    const preserved = preservedDirs();
    expect(preserved).toHaveLength(1);
    expect(existsSync(`/var/lib/postgresql/15/${preserved[0]}/PG_VERSION`)).toBe(true);
    expect((await listEntry(app)).preserved.map((p) => p.reason)).toEqual(['resetwal']);
    const info = (await pgbackrestInfo(app))[0]!;
    expect(info.backup.length).toBe(backupsBefore + 1);
    expect(info.backup.at(-1)!.type).toBe('full');
    expect((await sh('pgbackrest', [`--stanza=${app}`, 'check'], { user: 'postgres' })).code).toBe(0);
  });

  it('the archive ahead of the last checkpoint, pg_wal lost: the reset starts after the archive\'s newest segment, and archiving goes on', async () => {
    const ahead = uniqueName();
    const p = await initTestCluster(ahead);
    await sql(p, 'create table t as select g from generate_series(1, 10) g');
    await sql(p, 'checkpoint');
    // Archived past the checkpoint: three more segments reach the repository.
    for (let i = 0; i < 3; i++) {
      await sql(p, `insert into t select g from generate_series(1, 10) g`);
      expect((await sh('pgbackrest', [`--stanza=${ahead}`, 'check'], { user: 'postgres' })).code).toBe(0);
    }
    const dir = `/var/lib/postgresql/15/${ahead}`;
    await sh('pg_ctlcluster', ['15', ahead, 'stop', '-m', 'immediate']);
    for (const f of readdirSync(`${dir}/pg_wal`)) if (/^[0-9A-F]{24}$/.test(f)) unlinkSync(`${dir}/pg_wal/${f}`);
    expect((await sh('pg_ctlcluster', ['15', ahead, 'start'])).code).not.toBe(0);
    const r = await pgmam(['resetwal', ahead, '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect((await sh('pgbackrest', [`--stanza=${ahead}`, 'check'], { user: 'postgres' })).code).toBe(0);
    expect((await pgbackrestInfo(ahead))[0]!.backup.at(-1)!.type).toBe('full');
    await removeTestCluster(ahead);
  });
});
