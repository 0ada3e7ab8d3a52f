// Two hosts sharing one S3 repository (a real Ceph RGW reached over a veth pair by address): names are
// fleet-wide, backups say which host they came from, host B copies host A's app while it runs (A's
// stanza gains nothing of the copy's timeline), a takeover is refused while A still archives, and once
// A is lost B takes the app over on a new timeline in the same stanza; A's check then fences A.
import { hostname } from 'node:os';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PORT_MAX, PORT_MIN, TEST_ROOT, freePort, pgmam, removeTestCluster, sh, sql, switchWalAndWait, targetBetween, testConfigLines, uniqueName, type Run } from './helpers.js';
import { stopRgw, type Rgw } from './rgw.js';
import { onB, pgmamOnB, sqlOnB, startFleet, stopHostB, type HostB } from './hostb.js';

const CONFIG = `${TEST_ROOT}/fleet.conf`;
const TAKEOVER_IDLE = 15;
const run = (args: string[]): Promise<Run> => pgmam(args, { env: { PGMAM_CONFIG: CONFIG } });
const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));

let rgw: Rgw;
let b: HostB;
let endpoint = '';
const repoPath = `/${TEST_ROOT.split('/').at(-1)}/fleet`;
/** Host A's app: the origin. */
const app = { name: uniqueName(), port: 0 };
const copy = uniqueName();
let rows = 0;

/** Host A: commit rows, switch WAL, and wait until that segment is archived (into every repository). */
async function writeAndArchive(port: number, n: number, tag: string): Promise<void> {
  await sql(port, `insert into fleet select g, '${tag}' from generate_series(1, ${n}) g`);
  rows += n;
  await switchWalAndWait(port);
}

/** The entries of the app's archive in the shared repository, read on host A. */
const sharedArchive = async () => Object.keys(JSON.parse((await sh('pgbackrest', [`--stanza=${app.name}`, '--repo=2', '--output=json', 'repo-ls', `archive/${app.name}/15-1`], { user: 'postgres' })).stdout || '{}'));
const portOnB = async (name: string) => (JSON.parse((await pgmamOnB(b, ['list', '--json'])).stdout) as Array<{ name: string; port: number }>).find((e) => e.name === name)?.port ?? 0;
const clustersOnB = async () => (await onB(b, ['pg_lsclusters', '-h'])).stdout;

beforeAll(async () => {
  mkdirSync(TEST_ROOT, { recursive: true, mode: 0o755 });
  writeFileSync(CONFIG, [...testConfigLines(), `log-file = ${TEST_ROOT}/fleet.log`].join('\n') + '\n');
  // Host B: own ports (its own network), a takeover waits only TAKEOVER_IDLE seconds of an idle archive.
  ({ rgw, b, endpoint } = await startFleet({ runA: run, repo: 'fleet', path: repoPath, bConfig: [`port-min = ${PORT_MIN}`, `port-max = ${PORT_MAX}`, 'archive-timeout = 10', `takeover-min-idle = ${TAKEOVER_IDLE}`] }));
  app.port = await freePort();
  const init = await run(['initcluster', app.name, '--port', String(app.port), '--yes', '-q']);
  if (init.code !== 0) throw new Error(`initcluster ${app.name}: ${init.stderr}`);
  await sql(app.port, 'create table fleet(k int, tag text)');
}, 240_000);

afterAll(async () => {
  await stopHostB(b);
  await sh('pg_ctlcluster', ['15', app.name, 'stop', '-m', 'immediate']);
  await removeTestCluster(app.name);
  await stopRgw(rgw);
}, 120_000);

describe('a fleet sharing one repository', () => {
  it('each backup names its host, app and role; repo list --apps shows the app on both hosts, from host A', async () => {
    const info = JSON.parse((await sh('pgbackrest', [`--stanza=${app.name}`, '--repo=2', '--output=json', 'info'], { user: 'postgres' })).stdout.replace(/"system-id":(\d+)/g, '"system-id":"$1"')) as Array<{ backup: Array<{ annotation?: Record<string, string> }> }>;
    expect(info[0]!.backup.at(-1)!.annotation).toEqual({ 'pgmam-host': hostname(), 'pgmam-app': app.name, 'pgmam-role': 'app' });
    const onA = JSON.parse((await run(['repo', 'list', '--apps', 'fleet', '--json'])).stdout) as Array<{ stanza: string; host: string; role: string; here: boolean; newestBackup: unknown; newestWal: string }>;
    expect(onA.find((r) => r.stanza === app.name)).toMatchObject({ host: hostname(), role: 'app', here: true });
    const listB = await pgmamOnB(b, ['repo', 'list', '--apps', 'fleet', '--json']);
    expect(listB.code, listB.stderr).toBe(0);
    const row = (JSON.parse(listB.stdout) as typeof onA).find((r) => r.stanza === app.name)!;
    expect(row).toMatchObject({ host: hostname(), role: 'app', here: false });
    expect(row.newestWal).toMatch(/^00000001[0-9A-F]{16}$/);
  });

  it("a name another host uses in the shared repository is refused on host B (exit 4), and nothing is made there", async () => {
    // B attaches this new cluster to the shared repository, where A's stanza of that name lives.
    const r = await pgmamOnB(b, ['initcluster', app.name, '--yes']);
    const attachNew = (await pgmamOnB(b, ['repo', 'list', '--json'])).stdout;
    expect(JSON.parse(attachNew).find((x: { name: string }) => x.name === 'fleet').attachNew).toBe(false);
    // attach-new no: B's initcluster only gets the local repository; attach it: refused for the name.
    expect(r.code, r.stderr).toBe(0);
    const attach = await pgmamOnB(b, ['repo', 'attach', 'fleet', app.name, '--yes']);
    expect(attach.code, attach.stderr).toBe(4);
    expect(attach.stdout + attach.stderr).toContain(`stanza ${app.name} exists in repository fleet (its newest backup is from host ${hostname()})`);
    expect((await pgmamOnB(b, ['drop', app.name, '--purge-backups', '--yes'])).code).toBe(0);
    // With attach-new yes, initcluster itself refuses the name before making anything.
    expect((await pgmamOnB(b, ['repo', 'remove', 'fleet', '--yes'])).code).toBe(0);
    const again = await pgmamOnB(b, ['repo', 'add', 'fleet', '--s3-endpoint', endpoint, '--s3-bucket', rgw.bucket, '--s3-key-file', '/etc/pgmam/s3.key', '--ca-file', '/etc/pgmam/ca.crt', '--path', repoPath, '--attach-new', 'yes']);
    expect(again.code, again.stderr).toBe(0);
    const refused = await pgmamOnB(b, ['initcluster', app.name, '--yes']);
    expect(refused.code, refused.stderr).toBe(4);
    expect(refused.stderr).toContain(`stanza ${app.name} exists in repository fleet`);
    expect(await clustersOnB()).not.toContain(app.name);
    expect((await onB(b, ['ls', '/etc/pgbackrest/conf.d'])).stdout).not.toContain(app.name);
  });

  it("host B copies the running app as it was at a time (--as --to): the rows are right, and A's stanza gains nothing of the copy's timeline", async () => {
    // The sentinel pattern: 100 rows before the target, one after it; both archived before the copy.
    const target = await targetBetween(app.port, "insert into fleet select g, 'before-copy' from generate_series(1, 100) g", "insert into fleet values (0, 'after-target')");
    await writeAndArchive(app.port, 0, 'none');
    rows += 101;
    const before = await sharedArchive();
    const r = await pgmamOnB(b, ['recover', app.name, '--from-repo', 'fleet', '--as', copy, '--to', target, '--yes', '-q']);
    expect(r.stderr).toBe('');
    expect(r.code, r.stderr).toBe(0);
    const port = await portOnB(copy);
    expect(await sqlOnB(b, port, "select count(*) from fleet where tag = 'before-copy'")).toBe('100');
    expect(await sqlOnB(b, port, "select count(*) from fleet where tag = 'after-target'")).toBe('0');
    // The copy wrote WAL on timeline 2 into its own stanza only.
    const after = await sharedArchive();
    expect(after.filter((e) => e.startsWith('00000002'))).toEqual([]);
    expect(after.filter((e) => !before.includes(e) && !e.startsWith('00000001'))).toEqual([]);
    const check = await pgmamOnB(b, ['check', copy]);
    expect(check.stdout).toContain('healthy');
    expect(check.code, check.stderr).toBe(0);
    const apps = JSON.parse((await pgmamOnB(b, ['repo', 'list', '--apps', 'fleet', '--json'])).stdout) as Array<{ stanza: string; host: string; here: boolean }>;
    expect(apps.find((x) => x.stanza === copy)).toMatchObject({ host: b.name, here: true });
    const listed = JSON.parse((await pgmamOnB(b, ['list', '--json'])).stdout) as Array<{ name: string; origin: unknown }>;
    expect(listed.find((e) => e.name === copy)!.origin).toEqual({ stanza: app.name, repo: 'fleet', host: hostname(), mode: 'copy' });
    // No secret in what recover shows or logs (the source configuration holds them, root:postgres 0640, and is gone).
    const dry = await pgmamOnB(b, ['recover', app.name, '--from-repo', 'fleet', '--as', `${copy}x`, '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    for (const text of [dry.stdout, dry.stderr, r.stdout, readFileSync(`${b.root}/var-log-pgmam/pgmam.log`, 'utf8')]) {
      expect(text).not.toContain(rgw.secret);
      expect(text).not.toContain(rgw.access);
    }
    expect((await onB(b, ['ls', '/var/lib/pgmam/recover'])).stdout.trim()).toBe('');
  });

  it('a takeover is refused while host A still archives (exit 4), and nothing is made on B', async () => {
    await writeAndArchive(app.port, 10, 'still-running');
    const r = await pgmamOnB(b, ['recover', app.name, '--from-repo', 'fleet', '--yes']);
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toMatch(new RegExp(`stanza ${app.name} in repository fleet received WAL \\d+ s ago`));
    expect(await clustersOnB()).not.toContain(`${app.name} `);
  });

  it("host A lost: B takes the app over on a new timeline in the same stanza; A's check, once A is back, reports it and fences A", async () => {
    await writeAndArchive(app.port, 25, 'last-before-loss');
    // The loss: A's cluster stops dead; its archive then stays idle.
    await sh('pg_ctlcluster', ['15', app.name, 'stop', '-m', 'immediate']);
    await sleep((TAKEOVER_IDLE + 2) * 1000);
    const r = await pgmamOnB(b, ['recover', app.name, '--from-repo', 'fleet', '--yes', '-q']);
    expect(r.stderr).toBe('');
    expect(r.code, r.stderr).toBe(0);
    const port = await portOnB(app.name);
    expect(await sqlOnB(b, port, 'select count(*) from fleet')).toBe(String(rows));
    await sqlOnB(b, port, "insert into fleet values (0, 'on-b')");
    expect(await sqlOnB(b, port, 'select pg_walfile_name(pg_current_wal_lsn())')).toMatch(/^00000002/);
    const shared = await sharedArchive();
    expect(shared).toContain('00000002.history');
    expect(shared.some((e) => /^00000002[0-9A-F]{8}$/.test(e))).toBe(true);
    expect((await pgmamOnB(b, ['check', app.name])).code).toBe(0);

    // A comes back (a reboot that started it). Its backup is refused before check runs: it would join B's stanza.
    expect((await sh('pg_ctlcluster', ['15', app.name, 'start'])).code).toBe(0);
    const backups = async () => (await sh('pgbackrest', [`--stanza=${app.name}`, '--output=json', 'info'], { user: 'postgres' })).stdout.match(/"label"/g)?.length ?? 0;
    const before = await backups();
    expect((await run(['backup', app.name, '--type', 'full'])).code).toBe(4);
    // check sees the takeover and fences it.
    const check = await run(['check', app.name, '--json']);
    expect(check.code, check.stderr).toBe(7);
    const health = (JSON.parse(check.stdout) as Array<{ name: string; takenOver: { timeline: number; host: string; fenced: boolean } | null }>).find((h) => h.name === app.name)!;
    expect(health.takenOver).toMatchObject({ timeline: 2, host: b.name, fenced: true });
    expect((await sh('pg_lsclusters', ['-h'])).stdout).toMatch(new RegExp(`15\\s+${app.name}\\s+\\d+\\s+down`));
    expect(readFileSync(`/etc/postgresql/15/${app.name}/start.conf`, 'utf8').trim()).toBe('disabled');
    const listedA = JSON.parse((await run(['list', '--json'])).stdout) as Array<{ name: string; fenced: { host: string; timeline: number } | null }>;
    expect(listedA.find((e) => e.name === app.name)!.fenced).toMatchObject({ host: b.name, timeline: 2 });
    // Every changing command refuses the fenced cluster: no backup is taken, it stays down.
    expect((await run(['backup', app.name, '--type', 'full'])).code).toBe(4);
    expect((await run(['pitr', app.name, '--latest', '--yes'])).code).toBe(4);
    expect(await backups()).toBe(before);
    expect((await sh('pg_lsclusters', ['-h'])).stdout).toMatch(new RegExp(`15\\s+${app.name}\\s+\\d+\\s+down`));
  });
});
