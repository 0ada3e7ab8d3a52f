// Helpers for integration tests: drive the built bin/pgmam (or PGMAM_BIN) against real clusters, and clean up
// only what the tests made (names start with t_, ports 26000-26999 (below the ephemeral range: S3 traffic on loopback takes local ports from 32768 up), everything else under TEST_BASE).
// Test files run in parallel: each file gets its own TEST_ROOT (repository, state directory, config,
// log) and each worker its own port range, so files share nothing but the host's tools.
import { execa } from 'execa';
import { randomBytes } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '../..');
/** The executable under test: bin/pgmam of this clone, or another one (PGMAM_BIN=dist/pgmam, /usr/sbin/pgmam). */
export const PGMAM = process.env['PGMAM_BIN'] ? resolve(process.env['PGMAM_BIN']) : `${ROOT}/bin/pgmam`;
export const TEST_BASE = '/var/lib/pgmam-test';
/** This file's own directory (helpers is evaluated once per test file). */
export const FILE_TAG = randomBytes(3).toString('hex');
export const TEST_ROOT = `${TEST_BASE}/${FILE_TAG}`;
export const REPO = `${TEST_ROOT}/repo`;
export const STATE = `${TEST_ROOT}/state`;
export const CONFIG = `${TEST_ROOT}/pgmam.conf`;
export const STANZA_DIR = '/etc/pgbackrest/conf.d';
/** Worker 1..n (one file at a time per worker): 100 ports each, so concurrent files never race for a port. */
const WORKER = Math.max(1, Number(process.env['VITEST_POOL_ID'] ?? 1));
export const PORT_MIN = 26000 + ((WORKER - 1) % 9) * 100;
export const PORT_MAX = PORT_MIN + 99;

export function writeTestConfig(): void {
  mkdirSync(TEST_ROOT, { recursive: true, mode: 0o755 });
  writeFileSync(CONFIG, testConfigLines().join('\n') + '\n');
}

/** The lines of this file's configuration, with `state-dir` (and more) overridable by a test that needs its own. */
export function testConfigLines(over: { state?: string } = {}): string[] {
  return [`repo-path = ${REPO}`, `state-dir = ${over.state ?? STATE}`, `log-file = ${TEST_ROOT}/pgmam.log`, `port-min = ${PORT_MIN}`, `port-max = ${PORT_MAX}`, 'archive-timeout = 10', `tls-dir = ${TEST_ROOT}/tls`];
}

writeTestConfig();

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export async function pgmam(args: string[], opts: { env?: Record<string, string>; bin?: string; user?: string; input?: string } = {}): Promise<Run> {
  const bin = opts.bin ?? PGMAM;
  const argv = opts.user ? ['runuser', '-u', opts.user, '--', bin, ...args] : [bin, ...args];
  const r = await execa(argv[0]!, argv.slice(1), {
    reject: false,
    env: { PGMAM_CONFIG: CONFIG, ...opts.env },
    input: opts.input,
    stdin: opts.input === undefined ? 'ignore' : undefined,
    cwd: '/tmp',
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** A pgmam run that must succeed: a failure carries its stderr, so a rare one in CI can be read. */
export async function pgmamOk(args: string[], opts: Parameters<typeof pgmam>[1] = {}): Promise<Run> {
  const r = await pgmam(args, opts);
  if (r.code !== 0) throw new Error(`pgmam ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
  return r;
}

/** Every name this file made up: other files' clusters come and go beside them. */
const MINE = new Set<string>();
export const uniqueName = () => {
  const n = `t_${randomBytes(4).toString('hex')}`;
  MINE.add(n);
  return n;
};
/** Another test file's cluster (its name from uniqueName, not ours): left out of host snapshots, which run beside other files. */
export const isOtherFilesName = (n: string, mine: string[] = []) =>
  /^t_[0-9a-f]{8}/.test(n) && ![...MINE, ...mine].some((m) => n === m || n.startsWith(`${m}_`) || n.startsWith(`${m}.`));

export async function sh(cmd: string, args: string[], opts: { user?: string; env?: Record<string, string> } = {}): Promise<Run> {
  const argv = opts.user ? ['runuser', '-u', opts.user, '--', cmd, ...args] : [cmd, ...args];
  const r = await execa(argv[0]!, argv.slice(1), { reject: false, cwd: '/tmp', env: opts.env });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

export async function sql(port: number, query: string, db = 'postgres'): Promise<string> {
  const r = await sh('psql', ['-X', '-At', '-h', '/var/run/postgresql', '-p', String(port), '-d', db, '-c', query], { user: 'postgres' });
  if (r.code !== 0) throw new Error(`psql failed: ${r.stderr}`);
  return r.stdout.trim();
}

export interface HostCluster {
  version: number;
  cluster: string;
  port: string | number;
  running: number;
}

/** pg_lsclusters fails while another file's cluster is half made or half dropped: try again. */
export async function clusters(): Promise<HostCluster[]> {
  for (let i = 0; ; i++) {
    const r = await sh('pg_lsclusters', ['--json']);
    if (r.code === 0 || i === 20) return JSON.parse(r.stdout) as HostCluster[];
    await new Promise((ok) => setTimeout(ok, 150));
  }
}

/** The host's clusters but other test files' (this file's, unmanaged ones like 15/main, and anything else). */
export const ownClusters = async () => (await clusters()).filter((c) => !isOtherFilesName(c.cluster));

const listeningPorts = (): Set<number> => {
  const ports = new Set<number>();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const c = line.trim().split(/\s+/);
      if (c[3] === '0A') ports.add(parseInt(c[1]!.split(':').pop()!, 16));
    }
  }
  return ports;
};

/**
 * A random port in the tests' own range that no cluster configures, nothing listens on, and no Unix
 * socket lock file names (one a killed postmaster left may name a PID reused since: pgmam then refuses).
 */
export async function freePort(): Promise<number> {
  const used = new Set((await clusters()).map((c) => Number(c.port)));
  const listening = listeningPorts();
  for (;;) {
    const p = PORT_MIN + Math.floor(Math.random() * (PORT_MAX - PORT_MIN + 1));
    if (!used.has(p) && !listening.has(p) && !existsSync(`/var/run/postgresql/.s.PGSQL.${p}.lock`)) return p;
  }
}

/** Everything on the host that a cluster named `name` could leave behind. */
export async function traces(name: string): Promise<string[]> {
  const found: string[] = [];
  for (const c of await clusters()) if (c.cluster === name) found.push(`cluster ${c.version}/${c.cluster}`);
  for (const p of [
    `/etc/postgresql/15/${name}`,
    `/var/lib/postgresql/15/${name}`,
    `${STANZA_DIR}/${name}.conf`,
    `${REPO}/backup/${name}`,
    `${REPO}/archive/${name}`,
    `/var/lib/pgbackrest/backup/${name}`,
    `/var/lib/pgbackrest/archive/${name}`,
    `${STATE}/clusters/${name}.json`,
    `${STATE}/locks/${name}.lock`,
    `${STATE}/journal/${name}.json`,
  ])
    if (existsSync(p)) found.push(p);
  return found;
}

/** Removes a test cluster by hand with the raw tools, whatever state a test left it in. Only ever t_ names. */
export async function removeTestCluster(name: string, repo = REPO): Promise<void> {
  if (!name.startsWith('t_')) throw new Error(`refusing to remove ${name}: not a test cluster`);
  const stanzaFile = `${STANZA_DIR}/${name}.conf`;
  if (existsSync(stanzaFile)) {
    await sh('pgbackrest', [`--stanza=${name}`, 'stop'], { user: 'postgres' });
    // One repository at a time: pgBackRest 2.45 wants --repo when a stanza has several (S3 ones too).
    const repos = [...new Set([...readFileSync(stanzaFile, 'utf8').matchAll(/^repo(\d+)-/gm)].map((m) => m[1]!))];
    for (const n of repos.reverse()) await sh('pgbackrest', [`--stanza=${name}`, `--repo=${n}`, 'stanza-delete', '--force'], { user: 'postgres' });
  }
  if ((await clusters()).some((c) => c.cluster === name)) await sh('pg_dropcluster', ['--stop', '15', name]);
  // Preserved data directories (pitr, undo) of this test cluster.
  for (const d of existsSync('/var/lib/postgresql/15') ? readdirSync('/var/lib/postgresql/15') : [])
    if (d.startsWith(`${name}.pre-`)) await sh('rm', ['-rf', `/var/lib/postgresql/15/${d}`]);
  for (const p of [`/etc/postgresql/15/${name}`, `/var/lib/postgresql/15/${name}`, stanzaFile, `${repo}/backup/${name}`, `${repo}/archive/${name}`, `${STATE}/clusters/${name}.json`, `${STATE}/locks/${name}.lock`, `${STATE}/journal/${name}.json`, `${STATE}/replicas/${name}.pgpass`, `/tmp/pgbackrest/${name}.stop`, `/var/spool/pgbackrest/archive/${name}`])
    await sh('rm', ['-rf', p]);
}

export function testNamesOnHost(): string[] {
  const names = new Set<string>();
  for (const dir of ['/etc/postgresql/15', '/var/lib/postgresql/15']) if (existsSync(dir)) for (const n of readdirSync(dir)) if (n.startsWith('t_')) names.add(n.split('.')[0]!);
  if (existsSync(STANZA_DIR)) for (const f of readdirSync(STANZA_DIR)) if (f.startsWith('t_')) names.add(f.replace(/\.conf$/, ''));
  return [...names];
}

export interface ListEntry {
  name: string;
  port: number;
  dataDir: string | null;
  status: string;
  managed: boolean;
  stanza: string | null;
  lastBackup: { type: string; label: string; stoppedAt: string } | null;
  recoveryWindow: { from: string; to: string } | null;
  preserved: Array<{ path: string; reason: string; createdAt: string }>;
  interrupted: { command: string; step: string; status: string; rerun: string } | null;
  role: string;
  parent: string | null;
}

export async function listEntry(name: string): Promise<ListEntry> {
  const r = await pgmam(['list', '--json']);
  const e = (JSON.parse(r.stdout) as ListEntry[]).find((x) => x.name === name);
  if (!e) throw new Error(`${name} is not in pgmam list`);
  return e;
}

/** Creates a managed test cluster through pgmam; returns its port. */
export async function initTestCluster(name: string): Promise<number> {
  const r = await pgmam(['initcluster', name, '-q']);
  if (r.code !== 0) throw new Error(`initcluster ${name} failed: ${r.stderr}`);
  return (await listEntry(name)).port;
}

export async function pgbackrestInfo(stanza: string): Promise<Array<{ name: string; status: { code: number }; backup: Array<{ type: string; label: string; archive: { start: string; stop: string } }>; archive: Array<{ min: string; max: string }> }>> {
  const r = await sh('pgbackrest', [`--stanza=${stanza}`, '--output=json', 'info'], { user: 'postgres' });
  return JSON.parse(r.stdout.replace(/"system-id":(\d+)/g, '"system-id":"$1"'));
}

/**
 * Runs a query against a copy of a (stopped) data directory, started on a spare port; the original is
 * not touched. `inPlace` starts the directory itself (a scratch restore whose restore_command names
 * its path: pgBackRest refuses any other working directory).
 */
export async function queryDataDirCopy(dataDir: string, hbaFile: string, query: string, opts: { inPlace?: boolean } = {}): Promise<string> {
  const copy = opts.inPlace ? dataDir : `${TEST_ROOT}/datadir-copy`;
  const log = `/tmp/pgmam-datadir-copy-${FILE_TAG}.log`;
  if (!opts.inPlace) {
    rmSync(copy, { recursive: true, force: true });
    cpSync(dataDir, copy, { recursive: true });
  }
  await sh('chown', ['-R', 'postgres:postgres', copy]);
  chmodSync(copy, 0o700);
  rmSync(`${copy}/postmaster.pid`, { force: true });
  writeFileSync(`${TEST_ROOT}/empty.conf`, '');
  const spare = await freePort();
  const start = await sh(
    '/usr/lib/postgresql/15/bin/pg_ctl',
    ['-D', copy, '-w', '-l', log, '-o', `-c config_file=${TEST_ROOT}/empty.conf -c hba_file=${hbaFile} -c port=${spare} -c unix_socket_directories=/var/run/postgresql -c listen_addresses='' -c archive_mode=off`, 'start'],
    { user: 'postgres' },
  );
  if (start.code !== 0) throw new Error(`cannot start the copy of ${dataDir}: ${start.stderr}\n${readFileSync(log, 'utf8')}`);
  try {
    return await sql(spare, query);
  } finally {
    await sh('/usr/lib/postgresql/15/bin/pg_ctl', ['-D', copy, '-m', 'fast', 'stop'], { user: 'postgres' });
    if (!opts.inPlace) rmSync(copy, { recursive: true, force: true });
  }
}

/**
 * The sentinel pattern: run `before`, note a whole-second time (UTC offset) at least a second after
 * it, run `after` a second later; returns that time, a pitr target between the two.
 */
export async function targetBetween(port: number, before: string, after: string): Promise<string> {
  const pause = () => new Promise((r) => setTimeout(r, 1100));
  await sql(port, before);
  await pause();
  const target = await sql(port, "select to_char(now() at time zone 'utc', 'YYYY-MM-DD HH24:MI:SS') || '+00'");
  await pause();
  await sql(port, after);
  return target;
}

/** Switch WAL on the cluster at `port` and wait until that segment is archived (into every repository, S3 too). */
export async function switchWalAndWait(port: number, ms = 60_000): Promise<void> {
  const seg = await sql(port, 'select pg_walfile_name(pg_switch_wal())');
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((ok) => setTimeout(ok, 200)))
    if ((await sql(port, "select coalesce(last_archived_wal, '') from pg_stat_archiver")) >= seg) return;
  throw new Error(`segment ${seg} was not archived within ${ms / 1000} s`);
}

/** An XFS filesystem made with reflink=1 in a file, loop-mounted at `mount` (copy-on-write branches need one). */
export async function mountXfs(image: string, mount: string, size = '3G'): Promise<void> {
  mkdirSync(mount, { recursive: true });
  for (const [cmd, args] of [['truncate', ['-s', size, image]], ['mkfs.xfs', ['-q', '-m', 'reflink=1', image]], ['mount', ['-o', 'loop', image, mount]]] as const) {
    const r = await sh(cmd, [...args]);
    if (r.code !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
  }
}

export async function unmountXfs(image: string, mount: string): Promise<void> {
  await sh('umount', [mount]);
  rmSync(image, { force: true });
  rmSync(mount, { recursive: true, force: true });
}
