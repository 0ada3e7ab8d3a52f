// Read-only facts about the host that several commands need: clusters, managed records, tools,
// versions, pgBackRest's own configuration. Nothing here changes anything.
import type { Context } from '../context.js';
import { RefusedError } from '../errors.js';
import type { HostFs } from '../host-fs.js';
import { clustersOf, parseLsClusters, type HostCluster } from '../pg/clusters.js';
import { readClusterFiles } from './cluster-files.js';
import { lsClusters, PG_LIB, pgBin, SOCKET_DIR } from '../pg/commands.js';
import { parseListeningPorts } from '../pg/listening.js';
import { DNS_NAME } from '../config/schema.js';
import { CREATECLUSTER_CONF, parseDataDirectory, POSTGRESQL_COMMON_DATA_ROOT } from '../pg/data-root.js';
import { MAIN_CONFIG_FILES, FALLBACK_REPO_PATH, parseMainConfig, type MainConfig } from '../pgbackrest/config.js';
import { archiveMax, type StanzaInfo } from '../pgbackrest/info.js';
import * as pgbr from '../pgbackrest/commands.js';
import { currentPrimary, readManaged, type ManagedCluster } from '../state/store.js';
import type { Runner } from '../runner/types.js';
import { ownerAlive } from '../state/journal.js';
import { readLock, type LockHolder } from '../state/lock.js';

export const REQUIRED_TOOLS = ['pg_createcluster', 'pg_ctlcluster', 'pg_lsclusters', 'pg_dropcluster', 'pgbackrest', 'runuser'] as const;
export type Tool = (typeof REQUIRED_TOOLS)[number];

export async function which(fs: HostFs, pathEnv: string, tool: string): Promise<string | undefined> {
  for (const dir of pathEnv.split(':').filter(Boolean)) {
    if (await fs.isExecutable(`${dir}/${tool}`)) return `${dir}/${tool}`;
  }
  return undefined;
}

export async function findTools(ctx: Context): Promise<Record<Tool, string | undefined>> {
  const found = await Promise.all(REQUIRED_TOOLS.map((t) => which(ctx.fs, ctx.host.path, t)));
  return Object.fromEntries(REQUIRED_TOOLS.map((t, i) => [t, found[i]])) as Record<Tool, string | undefined>;
}

/**
 * While another cluster is half made or half dropped (e.g. by a pgmam command on another app),
 * pg_lsclusters fails (exit 1, no output: "Invalid data directory") or lists it without a port: try
 * again briefly, then refuse with one clear line rather than guess.
 */
export async function readClusters(runner: Runner, attempts = 10): Promise<HostCluster[]> {
  let problem = '';
  for (let i = 1; i <= attempts; i++) {
    const r = await runner.run(lsClusters(), { check: false });
    if (r.exitCode === 0) {
      try {
        return parseLsClusters(r.stdout);
      } catch (e) {
        problem = `its output does not describe every cluster completely (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`;
      }
    } else problem = `it failed with exit code ${r.exitCode}: ${r.stderr.trim().split('\n').at(-1) ?? ''}`;
    if (i < attempts) await new Promise((ok) => setTimeout(ok, 150));
  }
  throw new RefusedError('pgmam', [{ id: 'clusters-are-readable', reason: `pg_lsclusters --json: ${problem}`, hint: 'another cluster may be being created or dropped; try again, or look at pg_lsclusters' }]);
}

/**
 * The clusters as pg_lsclusters shows them, read from their files where pgmam reads them as
 * postgresql-common does (list, check and show: no Perl start); pg_lsclusters itself otherwise.
 */
export async function readClustersFast(fs: HostFs, runner: Runner): Promise<HostCluster[]> {
  const rows = await readClusterFiles(fs);
  return rows ? clustersOf(rows) : readClusters(runner);
}

/** PostgreSQL majors whose server binary is installed, newest first. */
export async function installedPgVersions(fs: HostFs): Promise<string[]> {
  const dirs = (await fs.readdir(PG_LIB)).filter((d) => /^\d+$/.test(d));
  const ok = await Promise.all(dirs.map((d) => fs.isExecutable(pgBin(d, 'postgres'))));
  return dirs.filter((_, i) => ok[i]).sort((a, b) => Number(b) - Number(a));
}

export async function pgbackrestVersion(runner: Runner): Promise<string | undefined> {
  const r = await runner.run(pgbr.version(), { check: false });
  return r.exitCode === 0 ? pgbr.parseVersion(r.stdout) : undefined;
}

export async function readMainConfig(fs: HostFs): Promise<MainConfig> {
  const texts = await Promise.all(MAIN_CONFIG_FILES.map(async (f) => [f, await fs.readText(f).catch(() => undefined)] as [string, string | undefined]));
  return parseMainConfig(texts);
}

/** pgmam's repo-path setting, else repo1-path from pgBackRest's own config, else pgBackRest's default. */
export function repoPathFrom(configured: string, main: MainConfig): string {
  return configured || main.globalRepoPath || FALLBACK_REPO_PATH;
}

/**
 * What holds `port` against a new postmaster, or undefined: a TCP listener, a Unix socket of that
 * number that answers, or a socket lock file naming a running process (postgres refuses to start
 * beside it). A socket and lock file left by a killed postmaster hold nothing: the next postmaster
 * on that port replaces both (PostgreSQL's CreateLockFile and StreamServerPort).
 */
export async function portHolder(ctx: Pick<Context, 'fs' | 'host'>, listening: Set<number>, port: number): Promise<string | undefined> {
  if (listening.has(port)) return 'something is listening on it';
  const socket = `${SOCKET_DIR}/.s.PGSQL.${port}`;
  if (await ctx.fs.socketAccepts(socket)) return `something answers on its Unix socket ${socket}`;
  // A single-user backend writes its PID negated.
  const pid = Math.abs(Number.parseInt((await ctx.fs.readText(`${socket}.lock`).catch(() => undefined)) ?? '', 10));
  if (pid > 0 && ctx.host.isProcessAlive(pid)) return `${socket}.lock names running process ${pid}`;
  return undefined;
}

/**
 * The port a new cluster gets: the one asked for, else the first in port-min..port-max that no
 * cluster's configuration names and nothing holds (portHolder); with what holds it, for the guard.
 */
export async function choosePort(
  ctx: Pick<Context, 'fs' | 'config' | 'host'>,
  clusters: HostCluster[],
  listening: Set<number>,
  asked: number | undefined,
): Promise<{ port: number | undefined; portConfiguredBy: string[]; portHeldBy: string | undefined }> {
  const configuredBy = (p: number) => clusters.filter((c) => c.port === p).map((c) => `${c.version}/${c.name}`);
  let port = asked;
  for (let p = ctx.config['port-min']; port === undefined && p <= ctx.config['port-max']; p++) if (!configuredBy(p).length && !(await portHolder(ctx, listening, p))) port = p;
  return { port, portConfiguredBy: port === undefined ? [] : configuredBy(port), portHeldBy: port === undefined ? undefined : await portHolder(ctx, listening, port) };
}

export async function listeningPorts(fs: HostFs): Promise<Set<number>> {
  const [v4, v6] = await Promise.all([fs.readText('/proc/net/tcp'), fs.readText('/proc/net/tcp6')]);
  return new Set([...parseListeningPorts(v4 ?? ''), ...parseListeningPorts(v6 ?? '')]);
}

export async function postgresOwner(fs: HostFs): Promise<{ uid: number; gid: number } | undefined> {
  const passwd = (await fs.readText('/etc/passwd')) ?? '';
  const line = passwd.split('\n').find((l) => l.startsWith('postgres:'));
  if (!line) return undefined;
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/** When the newest archived WAL segment of a stanza was written (its file's mtime in the repository). */
export async function newestArchivedAt(fs: HostFs, repoPath: string, stanza: StanzaInfo): Promise<Date | undefined> {
  const max = archiveMax(stanza);
  if (!max) return undefined;
  const dir = `${repoPath}/archive/${stanza.name}/${max.id}/${max.wal.slice(0, 16)}`;
  const file = (await fs.readdir(dir).catch(() => [] as string[])).find((f) => f.startsWith(max.wal));
  const st = file ? await fs.stat(`${dir}/${file}`) : undefined;
  return st ? new Date(st.mtimeMs) : undefined;
}

/** An app's name → the name of its primary now (after a failover, the promoted replica's); any other name unchanged. */
export async function resolveAppName(ctx: Pick<Context, 'fs' | 'paths'>, name: string): Promise<string> {
  return currentPrimary((await managedClusters(ctx)).records, name)?.name ?? name;
}

/** A cli spec's prepare for commands on one app: its `name` resolved to the app's primary now. */
export const resolvingApp = async (ctx: Pick<Context, 'fs' | 'paths'>, input: object): Promise<object> => ({ ...input, name: await resolveAppName(ctx, (input as { name: string }).name) });

/** One managed cluster by name, and the host's cluster for it (either undefined when missing). */
export async function managedApp(ctx: Context, name: string): Promise<{ record: ManagedCluster | undefined; cluster: HostCluster | undefined; managed: ManagedCluster[]; clusters: HostCluster[] }> {
  const [managed, clusters] = await Promise.all([managedClusters(ctx), readClusters(ctx.runner)]);
  const record = managed.records.find((r) => r.name === name);
  return { record, cluster: record && clusters.find((c) => c.name === record.name && c.version === record.version), managed: managed.records, clusters };
}

/** pgmam's records: the managed clusters, and apart from them the dropped ones kept for their preserved directories. */
export async function managedClusters(ctx: Pick<Context, 'fs' | 'paths'>): Promise<{ records: ManagedCluster[]; dropped: ManagedCluster[]; unreadable: string[] }> {
  const all = await readManaged(ctx.fs, ctx.paths.clustersDir);
  return { records: all.records.filter((r) => !r.dropped), dropped: all.records.filter((r) => r.dropped), unreadable: all.unreadable };
}

/**
 * Who holds the cluster's lock. This process's own lock does not count: runCommand gathers again
 * under the lock it took.
 */
export async function lockFacts(ctx: Pick<Context, 'fs' | 'paths' | 'host'>, name: string): Promise<{ holder: LockHolder | undefined; alive: boolean }> {
  const holder = await readLock(ctx.fs, ctx.paths.locksDir, name);
  if (!holder || holder.pid === ctx.host.pid) return { holder: undefined, alive: false };
  return { holder, alive: ownerAlive(ctx.host, holder) };
}

/** The template new clusters' data directories follow: pgmam's data-root, else createcluster.conf's data_directory, else postgresql-common's default. */
export async function dataRootTemplate(ctx: Pick<Context, 'fs' | 'config'>): Promise<string> {
  if (ctx.config['data-root']) return ctx.config['data-root'];
  const text = await ctx.fs.readText(CREATECLUSTER_CONF).catch(() => undefined);
  return parseDataDirectory(text ?? '') ?? POSTGRESQL_COMMON_DATA_ROOT;
}

/** The host's FQDN (`hostname --fqdn`), when it differs from its name; a host without DNS has none. */
export async function hostFqdn(runner: Runner, hostName: string): Promise<string | undefined> {
  const r = await runner.run({ argv: ['hostname', '--fqdn'], effect: 'read', timeoutMs: 5000 }, { check: false });
  const fqdn = r.exitCode === 0 ? r.stdout.trim() : '';
  return fqdn && fqdn !== hostName && DNS_NAME.test(fqdn) ? fqdn : undefined;
}
