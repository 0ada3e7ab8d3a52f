// list, check and show read the clusters from their files instead of running pg_lsclusters (its Perl
// start was most of list's time). On real clusters in the states that matter — running with ALTER SYSTEM
// settings, never started with a conf.d port, start.conf and a standby signal, stopped with a pid file
// left behind naming another program or no process, a log link — pgmam's reading and pg_lsclusters
// --json agree field by field, as root and as the clusters' owner, and `pgmam list --json` shows what
// pg_lsclusters shows.
import { execa } from 'execa';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readClusterFiles } from '../../src/host/cluster-files.js';
import { nodeFs } from '../../src/host-fs.js';
import { clustersFromRows, parseLsClusters, type HostCluster } from '../../src/pg/clusters.js';
import { freePort, PGMAM, pgmamOk, removeTestCluster, sh, sql, TEST_ROOT, uniqueName } from './helpers.js';

const names = { running: uniqueName(), fresh: uniqueName(), stale: uniqueName(), gone: uniqueName() };
const mine = Object.values(names);
const ports: Record<string, number> = {};
const conf = (n: string) => `/etc/postgresql/15/${n}`;
const data = (n: string) => `/var/lib/postgresql/15/${n}`;
const pidFile = (n: string) => `/var/run/postgresql/15-${n}.pid`;

async function create(name: string, start: boolean): Promise<void> {
  ports[name] = await freePort();
  const r = await sh('pg_createcluster', ['15', name, '-p', String(ports[name]), ...(start ? ['--start'] : [])]);
  if (r.code !== 0) throw new Error(r.stderr);
}
/** Written as postgres, whose directories these are. */
async function asPostgres(path: string, text: string): Promise<void> {
  const r = await sh('sh', ['-c', 'printf "%s" "$1" > "$2"', 'sh', text, path], { user: 'postgres' });
  if (r.code !== 0) throw new Error(r.stderr);
}

beforeAll(async () => {
  // Running, with settings ALTER SYSTEM wrote (postgresql.auto.conf, in the data directory).
  await create(names.running, true);
  await sql(ports[names.running]!, "alter system set archive_command = '/bin/true'");
  // Never started: a conf.d file moves its port, start.conf says manual, a standby signal is there.
  await create(names.fresh, false);
  ports[names.fresh] = await freePort();
  await asPostgres(`${conf(names.fresh)}/conf.d/zz-port.conf`, `port = ${ports[names.fresh]}\n`);
  await asPostgres(`${conf(names.fresh)}/start.conf`, 'manual\n');
  await asPostgres(`${data(names.fresh)}/standby.signal`, '');
  // Stopped, its pid file left naming a live process that is not postgres, and a log link.
  await create(names.stale, true);
  await sh('pg_ctlcluster', ['15', names.stale, 'stop']);
  await asPostgres(pidFile(names.stale), `${process.pid}\n`);
  mkdirSync(`${TEST_ROOT}/logs`, { recursive: true });
  symlinkSync(`${TEST_ROOT}/logs/${names.stale}.log`, `${conf(names.stale)}/log`);
  // Stopped, its pid file naming no process at all (a crash): pg_lsclusters then asks the socket.
  await create(names.gone, true);
  await sh('pg_ctlcluster', ['15', names.gone, 'stop']);
  await asPostgres(pidFile(names.gone), '4194300\n');
}, 120_000);

afterAll(async () => {
  for (const n of mine) await sh('rm', ['-f', pidFile(n)]);
  for (const n of mine) await removeTestCluster(n);
}, 120_000);

const ours = (cs: HostCluster[]) => cs.filter((c) => mine.includes(c.name));

describe("pgmam's reading of the clusters' files", () => {
  it('the states under test are the ones intended', async () => {
    const ls = ours(parseLsClusters((await sh('pg_lsclusters', ['--json'])).stdout));
    const by = (n: string) => ls.find((c) => c.name === n)!;
    expect(by(names.running)).toMatchObject({ running: true, archiveCommand: '/bin/true' });
    expect(by(names.fresh)).toMatchObject({ running: false, port: ports[names.fresh], startConf: 'manual', inRecovery: true });
    expect(by(names.stale)).toMatchObject({ running: false, logFile: `${TEST_ROOT}/logs/${names.stale}.log` });
    expect(by(names.gone)).toMatchObject({ running: false });
  });

  it('as root: every field pg_lsclusters --json gives, the same', async () => {
    const [rows, ls] = await Promise.all([readClusterFiles(nodeFs), sh('pg_lsclusters', ['--json'])]);
    expect(rows).toBeDefined();
    const fromFiles = ours(clustersFromRows(rows));
    expect(fromFiles.map((c) => c.name).sort()).toEqual([...mine].sort());
    expect(fromFiles).toEqual(ours(parseLsClusters(ls.stdout)));
  });

  it('as the clusters\' owner (postgres): pgmam list --json shows the status, port and data directory pg_lsclusters shows', async () => {
    const ls = ours(parseLsClusters((await sh('pg_lsclusters', ['--json'], { user: 'postgres' })).stdout));
    // A configuration postgres can read (list works for any user that can read it).
    const cfg = `${TEST_ROOT}/list-as-postgres.conf`;
    writeFileSync(cfg, `state-dir = ${TEST_ROOT}/state-postgres\n`, { mode: 0o644 });
    const r = await execa('runuser', ['-u', 'postgres', '--', PGMAM, 'list', '--json', '--config', cfg], { reject: false, cwd: '/tmp' });
    expect(r.exitCode, r.stderr).toBe(0);
    const list = (JSON.parse(r.stdout) as Array<{ name: string; status: string; port: number; dataDir: string }>).filter((e) => mine.includes(e.name));
    expect(list.map((e) => [e.name, e.status, e.port, e.dataDir]).sort()).toEqual(ls.map((c) => [c.name, c.running ? 'online' : 'down', c.port, c.dataDir]).sort());
  });

  it('as root: pgmam list --json shows what pg_lsclusters shows', async () => {
    const ls = ours(parseLsClusters((await sh('pg_lsclusters', ['--json'])).stdout));
    const list = (JSON.parse((await pgmamOk(['list', '--json'])).stdout) as Array<{ name: string; status: string; port: number; dataDir: string }>).filter((e) => mine.includes(e.name));
    expect(list.map((e) => [e.name, e.status, e.port, e.dataDir]).sort()).toEqual(ls.map((c) => [c.name, c.running ? 'online' : 'down', c.port, c.dataDir]).sort());
  });
});
