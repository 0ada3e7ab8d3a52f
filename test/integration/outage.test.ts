// An S3 outage never takes the apps down: a gateway of this file's own (a second radosgw on the same
// RADOS cluster) is killed for 60 s while a client writes at 20 transactions a second. The local
// repository keeps receiving WAL, check names the failing repository, backup suspends it for an app
// whose WAL piles up past repo-suspend-mb and puts it back with a full once it answers, and a restore
// from S3 to a time after the outage has the client's rows.
import { execa } from 'execa';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, STATE, STANZA_DIR, TEST_ROOT, freePort, pgmam, removeTestCluster, sh, sql, targetBetween, testConfigLines, uniqueName, type Run } from './helpers.js';
import { startGateway, startRgw, stopGateway, stopRgw, type Rgw } from './rgw.js';

const CONFIG = `${TEST_ROOT}/outage.conf`;
const OUTAGE_MS = 60_000;
const SUSPEND_MB = 32;
let rgw: Rgw;
let gatewayPort = 0;
const run = (args: string[]): Promise<Run> => pgmam(args, { env: { PGMAM_CONFIG: CONFIG } });
const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));
const waitFor = async (what: string, ok: () => Promise<boolean> | boolean, ms: number) => {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(250)) if (await ok()) return;
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
};

/** The client's app (writes through the outage) and the app whose WAL piles up until backup suspends the repository. */
const client = { name: uniqueName(), port: 0 };
const piled = { name: uniqueName(), port: 0 };
const dataDir = (name: string) => `/var/lib/postgresql/15/${name}`;
const ready = (name: string) => readdirSync(`${dataDir(name)}/pg_wal/archive_status`).filter((f) => /^[0-9A-F]{24}\.ready$/.test(f)).length;
/** The WAL segments of timeline 1 the local repository holds for a stanza. */
const localSegments = (name: string) =>
  readdirSync(`${REPO}/archive/${name}/15-1`)
    .filter((d) => /^[0-9A-F]{16}$/.test(d))
    .flatMap((d) => readdirSync(`${REPO}/archive/${name}/15-1/${d}`))
    .map((f) => f.slice(0, 24))
    .filter((f) => /^00000001[0-9A-F]{16}$/.test(f))
    .sort();
const record = (name: string) => JSON.parse(readFileSync(`${STATE}/clusters/${name}.json`, 'utf8')) as { repos: Array<{ name: string; suspended: { since: string } | null; gaps: Array<{ from: string; to: string | null }> }> };
const repoKeysOfFulls = async (name: string) =>
  (JSON.parse((await sh('pgbackrest', [`--stanza=${name}`, '--output=json', 'info'], { user: 'postgres' })).stdout.replace(/"system-id":(\d+)/g, '"system-id":"$1"'))[0] as { backup: Array<{ type: string; label: string; database: { 'repo-key': number } }> }).backup.filter((b) => b.type === 'full');

let outageStart = 0;
let pgbench: ReturnType<typeof execa> | undefined;

beforeAll(async () => {
  mkdirSync(TEST_ROOT, { recursive: true, mode: 0o755 });
  writeFileSync(CONFIG, [...testConfigLines(), `log-file = ${TEST_ROOT}/outage.log`, `repo-suspend-mb = ${SUSPEND_MB}`].join('\n') + '\n');
  rgw = await startRgw();
  gatewayPort = rgw.port + 1;
  await startGateway(rgw, 'flaky', gatewayPort);
  const add = await run(['repo', 'add', 'flaky', '--s3-endpoint', `localhost:${gatewayPort}`, '--s3-bucket', rgw.bucket, '--s3-key-file', rgw.keyFile, '--ca-file', rgw.ca, '--path', `/${TEST_ROOT.split('/').at(-1)}/outage`]);
  if (add.code !== 0) throw new Error(`repo add: ${add.stderr}`);
  for (const app of [client, piled]) {
    app.port = await freePort();
    const init = await run(['initcluster', app.name, '--port', String(app.port), '--yes', '-q']);
    if (init.code !== 0) throw new Error(`initcluster ${app.name}: ${init.stderr}`);
  }
}, 240_000);

afterAll(async () => {
  pgbench?.kill();
  for (const app of [client, piled]) {
    await run(['drop', app.name, '--purge-backups', '--yes', '-q']);
    await removeTestCluster(app.name);
  }
  await run(['repo', 'remove', 'flaky', '--yes', '-q']);
  await stopRgw(rgw);
}, 120_000);

describe('an S3 outage', () => {
  it('a client writing at 20 tps through a 60 s outage sees no error, and the local repository keeps receiving WAL', async () => {
    expect((await sh('pgbench', ['-i', '-s', '1', '-q', '-h', '/var/run/postgresql', '-p', String(client.port), 'postgres'], { user: 'postgres' })).code).toBe(0);
    pgbench = execa('runuser', ['-u', 'postgres', '--', 'pgbench', '-n', '-R', '20', '-T', String(OUTAGE_MS / 1000 + 25), '-h', '/var/run/postgresql', '-p', String(client.port), 'postgres'], { reject: false, cwd: '/tmp' });
    await sleep(10_000);
    const before = localSegments(client.name).length;
    await stopGateway(rgw, 'flaky');
    outageStart = Date.now();
    // WAL piles up for the other app: each switch closes a segment S3 cannot take.
    await sql(piled.port, 'create table t(k int)');
    for (let i = 0; i < 4; i++) await sql(piled.port, `insert into t values (${i}); select pg_switch_wal()`);
    await waitFor('WAL piling up past repo-suspend-mb', () => ready(piled.name) * 16 >= SUSPEND_MB, 60_000);
    await sleep(Math.max(0, outageStart + OUTAGE_MS - Date.now() - 20_000));
    // The local archive grew during the outage: asynchronous archiving pushes to each repository on its own.
    await waitFor('the local repository to receive WAL during the outage', () => localSegments(client.name).length > before, outageStart + OUTAGE_MS - Date.now());
    expect(Date.now() - outageStart).toBeLessThan(OUTAGE_MS);
  }, 180_000);

  it('during the outage check exits 7 and names the failing repository', async () => {
    const check = await run(['check', client.name]);
    expect(check.code, check.stderr).toBe(7);
    expect(check.stdout).toMatch(/repository flaky/);
  }, 60_000);

  it('backup suspends the repository for the app whose WAL piled up past repo-suspend-mb; its pg_wal drains', async () => {
    const b = await run(['backup', piled.name, '--json']);
    expect(b.code, b.stderr).toBe(0);
    const outcomes = (JSON.parse(b.stdout) as { outcomes: Array<{ repo: string; result: string }> }).outcomes;
    expect(outcomes.find((x) => x.repo === 'flaky')?.result).toBe('suspended');
    expect(record(piled.name).repos[0]?.suspended).not.toBeNull();
    expect(readFileSync(`${STANZA_DIR}/${piled.name}.conf`, 'utf8')).not.toMatch(/^repo2-/m);
    await waitFor('pg_wal to drain into the local repository', () => ready(piled.name) === 0, 90_000);
    const check = await run(['check', piled.name]);
    expect(check.code, check.stderr).toBe(7);
    expect(check.stdout).toMatch(/repository flaky is suspended/);
  }, 180_000);

  it('the client saw no error, and the local repository holds every segment without a hole', async () => {
    await sleep(Math.max(0, outageStart + OUTAGE_MS - Date.now()));
    await startGateway(rgw, 'flaky', gatewayPort);
    const r = await pgbench!;
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(`${r.stdout}\n${r.stderr}`).not.toMatch(/error|abort/i);
    await sql(client.port, 'select pg_switch_wal()');
    await waitFor('the client app to archive its backlog', () => ready(client.name) === 0, 120_000);
    const segs = localSegments(client.name);
    const n = (s: string) => parseInt(s.slice(8), 16);
    expect(n(segs.at(-1)!) - n(segs[0]!) + 1).toBe(new Set(segs).size);
  }, 240_000);

  it('once the gateway is back, the next backup puts the repository back with a full, and check passes', async () => {
    const b = await run(['backup', piled.name, '--json']);
    expect(b.code, b.stderr).toBe(0);
    const back = (JSON.parse(b.stdout) as { outcomes: Array<{ repo: string; result: string; type?: string; label?: string; reattached?: boolean }> }).outcomes.find((x) => x.repo === 'flaky');
    expect(back).toMatchObject({ result: 'backed-up', type: 'full', reattached: true });
    expect((await repoKeysOfFulls(piled.name)).filter((x) => x.database['repo-key'] === 2).map((x) => x.label)).toContain(back!.label);
    const rec = record(piled.name).repos[0]!;
    expect(rec.suspended).toBeNull();
    expect(rec.gaps).toHaveLength(1);
    expect(rec.gaps[0]!.to).not.toBeNull();
    const check = await run(['check', client.name, piled.name]);
    expect(check.code, check.stdout).toBe(0);
  }, 180_000);

  it('a restore from S3 to a time after the outage has the client’s rows', async () => {
    const target = await targetBetween(client.port, 'create table mark as select count(*) c from pgbench_history', 'insert into mark values (-1)');
    const seg = await sql(client.port, 'select pg_walfile_name(pg_current_wal_lsn())');
    await sql(client.port, 'select pg_switch_wal()');
    const inS3 = async () => (await sh('pgbackrest', [`--stanza=${client.name}`, '--repo=2', 'repo-ls', `archive/${client.name}/15-1/${seg.slice(0, 16)}`], { user: 'postgres' })).stdout.includes(seg);
    await waitFor('the target’s WAL in S3', inS3, 120_000);
    const rows = await sql(client.port, 'select c from mark where c >= 0');
    expect(Number(rows)).toBeGreaterThan(1000);
    const pitr = await run(['pitr', client.name, '--to', target, '--repo', 'flaky', '--yes']);
    expect(pitr.code, pitr.stderr).toBe(0);
    expect(await sql(client.port, 'select count(*) from pgbench_history')).toBe(rows);
    expect(await sql(client.port, 'select count(*) from mark')).toBe('1');
  }, 240_000);

  it('a restore from the repository to a time inside the WAL it missed is refused before anything changes', async () => {
    const gap = record(piled.name).repos[0]!.gaps[0]!;
    const inside = new Date(Date.parse(gap.from) + 2000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, '+00');
    const before = await sql(piled.port, 'select count(*) from t');
    const pitr = await run(['pitr', piled.name, '--to', inside, '--repo', 'flaky', '--yes']);
    expect(pitr.code, pitr.stderr).toBe(4);
    expect(pitr.stderr).toMatch(/misses WAL from/);
    expect(await sql(piled.port, 'select count(*) from t')).toBe(before);
  }, 60_000);
});
