// Replicas end to end on real clusters: a replica from the app's backup and one from the primary over
// TLS stream rows within seconds; check reports lag and, for a stopped replica, exit 7 with what its
// slot keeps; bad input is refused with nothing changed; failover (promote --fence) makes the replica
// the app's primary archiving into the app's stanza, pitr of the app acts on it, and the old primary is
// rebuilt as its streaming replica; drop takes replicas only with --with-replicas.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusters, listEntry, pgmam, removeTestCluster, sh, sql, STATE, targetBetween, uniqueName } from './helpers.js';

const app = uniqueName();
const replica = `${app}_replica`;
const r2 = `${app}_r2`;
let port = 0;
let replicaPort = 0;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function waitFor(what: string, ok: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}
const rowsOn = async (p: number, k: string) => sql(p, `select count(*) from t where k = '${k}'`).catch(() => 'error');
const slots = async (p: number) => (await sql(p, 'select slot_name from pg_replication_slots order by 1')).split('\n').filter(Boolean);
const roles = async (p: number) => (await sql(p, "select rolname from pg_roles where rolname like 'pgmam_repl_%' order by 1")).split('\n').filter(Boolean);
const hba = (name: string) => readFileSync(`/etc/postgresql/15/${name}/pg_hba.conf`, 'utf8');
/** This file's clusters (others come and go beside them), the primary's slots, roles and rules: what a refusal must leave as it was. */
const snapshot = async () => JSON.stringify({ c: (await clusters()).filter((c) => c.cluster.startsWith(app)).map((c) => `${c.cluster}:${c.port}:${c.running}`).sort(), s: await slots(port), r: await roles(port), h: hba(app) });

beforeAll(async () => {
  const r = await pgmam(['initcluster', app, '--yes']);
  expect(r.code, r.stderr).toBe(0);
  port = (await listEntry(app)).port;
  await sql(port, "create table t (k text); insert into t values ('first')");
}, 120_000);

afterAll(async () => {
  for (const n of [r2, replica, app]) await removeTestCluster(n);
}, 120_000);

describe('replica create from the repository', () => {
  it('streams over TLS through its slot: a row written on the primary is on the replica within seconds', { timeout: 120_000 }, async () => {
    const r = await pgmam(['replica', 'create', app, '--yes']);
    expect(r.code, r.stderr).toBe(0);
    const e = await listEntry(replica);
    expect(e).toMatchObject({ role: 'replica', parent: app, status: 'online', stanza: app });
    replicaPort = e.port;
    await sql(port, "insert into t values ('streamed')");
    const t0 = Date.now();
    await waitFor('the row on the replica', async () => (await rowsOn(replicaPort, 'streamed')) === '1', 10_000);
    console.log(`row visible on the replica after ${Date.now() - t0} ms`);
    expect(await sql(port, `select r.state || '|' || s.ssl || '|' || r.application_name from pg_stat_replication r join pg_stat_ssl s using (pid)`)).toBe(`streaming|true|${replica}`);
    expect(await slots(port)).toEqual([`pgmam_${replica}`]);
  });

  it('keeps its settings in conf.d and its password in a 0600 file of postgres; the primary admits it only over TLS', async () => {
    const conf = readFileSync(`/etc/postgresql/15/${replica}/conf.d/92-pgmam-replica.conf`, 'utf8');
    expect(conf).toContain('sslmode=verify-full');
    expect(conf).toContain(`--pg1-path=/var/lib/postgresql/15/${replica} archive-get`);
    const auto = readFileSync(`/var/lib/postgresql/15/${replica}/postgresql.auto.conf`, 'utf8');
    expect(auto).not.toMatch(/^\s*(primary_conninfo|restore_command)\s*=/m);
    const pass = statSync(`${STATE}/replicas/${replica}.pgpass`);
    expect([pass.mode & 0o777, pass.uid]).toEqual([0o600, Number((await sh('id', ['-u', 'postgres'])).stdout)]);
    expect(hba(app)).toContain(`hostssl replication pgmam_repl_${replica} 127.0.0.1/32 scram-sha-256`);
    // The password is in no log line of pgmam's.
    const password = readFileSync(`${STATE}/replicas/${replica}.pgpass`, 'utf8').trim().split(':').at(-1)!;
    expect(readFileSync(`${STATE}/../pgmam.log`, 'utf8')).not.toContain(password);
    expect(await sql(port, "select setting from pg_settings where name = 'max_slot_wal_keep_size'")).toBe('1024');
  });

  it('never archives while it is a standby', async () => {
    await sql(port, 'select pg_switch_wal()');
    await sleep(1500);
    expect(await sql(replicaPort, 'select archived_count + failed_count from pg_stat_archiver')).toBe('0');
  });

  it('check reports it streaming with its lag', { timeout: 60_000 }, async () => {
    const r = await pgmam(['check', replica, '--json']);
    expect(r.code, r.stdout).toBe(0);
    const h = JSON.parse(r.stdout)[0];
    expect(h.replica).toMatchObject({ primary: `15/${app}`, streaming: true, slot: { name: `pgmam_${replica}`, active: true } });
    expect(typeof h.replica.replayLagBytes).toBe('number');
  });

  it('stopped, it makes check exit 7 with the WAL its slot keeps on the primary', { timeout: 60_000 }, async () => {
    expect((await sh('pg_ctlcluster', ['15', replica, 'stop'])).code).toBe(0);
    await sql(port, "insert into t select 'filler' from generate_series(1, 20000)");
    await sql(port, 'select pg_switch_wal()');
    const r = await pgmam(['check', replica, '--json']);
    expect(r.code, r.stderr).toBe(7);
    const h = JSON.parse(r.stdout)[0];
    expect(h.replica.streaming).toBe(false);
    expect(h.replica.slot.retainedBytes).toBeGreaterThan(0);
    expect(h.problems[0]).toMatch(/^not running; its slot .* retains/);
    expect((await sh('pg_ctlcluster', ['15', replica, 'start'])).code).toBe(0);
    await waitFor('the replica to catch up', async () => (await rowsOn(replicaPort, 'filler')) === '20000');
  });
});

describe('refusals change nothing', () => {
  const refused = async (args: string[]) => {
    const before = await snapshot();
    const r = await pgmam(args);
    expect(await snapshot()).toBe(before);
    return r;
  };
  it('a replica of an unknown app', async () => expect((await refused(['replica', 'create', 't_nosuchapp', '--yes'])).code).toBe(4));
  it('a replica of a replica', async () => expect((await refused(['replica', 'create', replica, '--yes'])).code).toBe(4));
  it('a taken name', async () => expect((await refused(['replica', 'create', app, '--yes'])).code).toBe(4));
  it('a taken port', async () => expect((await refused(['replica', 'create', app, '--name', 'r9', '--port', String(port), '--yes'])).code).toBe(4));
  it('promote while the old primary runs, without --fence', async () => expect((await refused(['replica', 'promote', replica, '--yes'])).code).toBe(4));
  it('promote a cluster that is not a replica', async () => expect((await refused(['replica', 'promote', app, '--yes'])).code).toBe(4));
  it('pitr, resetwal and branch sync of a replica', async () => {
    expect((await refused(['pitr', `15/${replica}`, '--latest', '--yes'])).code).toBe(4);
    expect((await refused(['resetwal', replica, '--yes'])).code).toBe(4);
    expect((await refused(['branch', 'sync', replica, '--yes'])).code).toBe(4);
  });
  it('drop of an app with replicas, without --with-replicas', async () => expect((await refused(['drop', app, '--yes'])).code).toBe(4));
});

describe('replica create from the primary, and replica drop', () => {
  it('pg_basebackup over TLS: it streams; drop takes its slot, role, rule and password file away', { timeout: 120_000 }, async () => {
    const r = await pgmam(['replica', 'create', app, '--name', 'r2', '--source', 'primary', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    const p2 = (await listEntry(r2)).port;
    await sql(port, "insert into t values ('to-r2')");
    await waitFor('the row on r2', async () => (await rowsOn(p2, 'to-r2')) === '1', 10_000);
    const d = await pgmam(['replica', 'drop', r2, '--yes']);
    expect(d.code, d.stderr).toBe(0);
    expect((await clusters()).some((c) => c.cluster === r2)).toBe(false);
    expect(await slots(port)).toEqual([`pgmam_${replica}`]);
    expect(await roles(port)).toEqual([`pgmam_repl_${replica}`]);
    expect(hba(app)).not.toContain(`pgmam_repl_${r2}`);
    expect(existsSync(`${STATE}/replicas/${r2}.pgpass`)).toBe(false);
  });
});

describe('failover', () => {
  let target = '';
  it('promote --fence: the old primary is stopped and disabled; the replica is writable and archives into the app stanza', { timeout: 180_000 }, async () => {
    await sql(port, "insert into t values ('before-failover')");
    await waitFor('the row on the replica', async () => (await rowsOn(replicaPort, 'before-failover')) === '1', 10_000);
    const r = await pgmam(['replica', 'promote', replica, '--fence', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect((await clusters()).find((c) => c.cluster === app)?.running).toBe(0);
    expect(readFileSync(`/etc/postgresql/15/${app}/start.conf`, 'utf8').trim()).toBe('disabled');
    expect(await sql(replicaPort, 'select pg_is_in_recovery()')).toBe('f');
    expect(await rowsOn(replicaPort, 'before-failover')).toBe('1');
    expect((await sh('pgbackrest', [`--stanza=${app}`, 'check'], { user: 'postgres' })).code).toBe(0);
    expect(readFileSync(`/etc/pgbackrest/conf.d/${app}.conf`, 'utf8')).toContain(`pg1-path=/var/lib/postgresql/15/${replica}`);
    expect(await listEntry(replica)).toMatchObject({ role: 'app', parent: null });
    target = await targetBetween(replicaPort, "insert into t values ('after-failover')", "insert into t values ('too-late')");
  });

  it('pitr <app> to a time after the promotion restores the promoted cluster', { timeout: 180_000 }, async () => {
    const r = await pgmam(['pitr', app, '--to', target, '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(await rowsOn(replicaPort, 'after-failover')).toBe('1');
    expect(await rowsOn(replicaPort, 'too-late')).toBe('0');
  });

  it('rebuild makes the old primary a replica of the new one, streaming; its own data directory is preserved', { timeout: 180_000 }, async () => {
    const r = await pgmam(['replica', 'rebuild', app, '--yes']);
    expect(r.code, r.stderr).toBe(0);
    const e = await listEntry(app);
    expect(e).toMatchObject({ role: 'replica', parent: replica, status: 'online' });
    expect(e.preserved.map((p) => p.reason)).toEqual(['failover']);
    await sql(replicaPort, "insert into t values ('after-rebuild')");
    await waitFor('the row on the rebuilt old primary', async () => (await rowsOn(port, 'after-rebuild')) === '1', 10_000);
    const c = await pgmam(['check', '--json', `15/${app}`, `15/${replica}`]);
    expect(c.code, c.stdout).toBe(0);
  });

  it('drop --with-replicas removes the app and its replica', { timeout: 120_000 }, async () => {
    const refused = await pgmam(['drop', replica, '--yes']);
    expect(refused.code, refused.stderr).toBe(4);
    const r = await pgmam(['drop', replica, '--with-replicas', '--purge-backups', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect((await clusters()).filter((c) => c.cluster === app || c.cluster === replica)).toEqual([]);
  });
});
