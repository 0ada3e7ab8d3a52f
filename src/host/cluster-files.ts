// The host's clusters read straight from their files, the way pg_lsclusters reads them (PgCommon.pm's
// get_version_clusters and cluster_info), without its Perl start-up: list, check and show — run most
// often, and by monitoring — wait on nothing slower than pgBackRest. Whatever this reader does not read
// the way postgresql-common does (a line PgCommon refuses, a file it cannot open, a cluster half
// created, no data_directory setting) gives undefined: the caller asks pg_lsclusters instead, so both
// ways agree or the authoritative one answers. Read-only.
import type { HostFs } from '../host-fs.js';
import { CONF_ROOT, confDirOf, SOCKET_DIR } from '../pg/commands.js';
import { ConfLineError, includedConfFiles, parseConfLines, parsePidFile, parseStartConf } from '../pg/conf-file.js';

const DEFAULT_PORT = '5432';
/** PgCommon follows includes without a limit; a loop is left to pg_lsclusters. */
const MAX_INCLUDE_DEPTH = 10;

/** What pgmam does not read as postgresql-common does: pg_lsclusters decides. */
class NotLikePgCommon extends Error {}

/** A row as `pg_lsclusters --json` prints it (the fields pgmam reads), with its values' parsed types. */
export interface ClusterRow {
  version: string;
  cluster: string;
  port: number;
  running: boolean;
  pgdata: string;
  configdir: string;
  logfile: string;
  socketdir: string;
  start: string;
  recovery?: boolean;
  config: { archive_command?: string };
}

/** Every cluster under /etc/postgresql, or undefined when pg_lsclusters must be asked. */
export async function readClusterFiles(fs: HostFs): Promise<ClusterRow[] | undefined> {
  try {
    const versions = (await fs.readdir(CONF_ROOT)).filter((v) => /^\d+\.?\d+$/.test(v));
    const ids = (
      await Promise.all(
        versions.map(async (v) => {
          const names = await fs.readdir(`${CONF_ROOT}/${v}`);
          const has = await Promise.all(names.map((c) => fs.exists(`${confDirOf({ version: v, name: c })}/postgresql.conf`)));
          return names.filter((_, i) => has[i]).map((c) => ({ v, c }));
        }),
      )
    ).flat();
    return await Promise.all(ids.map(({ v, c }) => clusterInfo(fs, v, c)));
  } catch (e) {
    if (e instanceof NotLikePgCommon || e instanceof ConfLineError || isDenied(e)) return undefined;
    throw e;
  }
}

/** Whether `e` is a system error with one of these codes. */
const codeIn = (e: unknown, codes: readonly string[]) => codes.includes((e as NodeJS.ErrnoException).code ?? '');
const isDenied = (e: unknown) => codeIn(e, ['EACCES', 'EPERM', 'EISDIR', 'ELOOP']);

/** A file's text; undefined where PgCommon's open fails quietly (missing, or not readable by this user). */
async function readQuietly(fs: HostFs, file: string): Promise<string | undefined> {
  try {
    return await fs.readText(file);
  } catch (e) {
    if (codeIn(e, ['EACCES', 'EPERM'])) return undefined;
    throw e;
  }
}

/** Perl's -e and -d: a stat that says nothing when it cannot look. */
async function statQuietly(fs: HostFs, file: string) {
  try {
    return await fs.stat(file);
  } catch (e) {
    if (codeIn(e, ['EACCES', 'EPERM', 'ENOTDIR', 'ELOOP'])) return undefined;
    throw e;
  }
}

/** read_conf_file: settings in file order, includes merged where they stand. */
async function readConf(fs: HostFs, file: string, depth = 0, read?: string): Promise<Map<string, string>> {
  if (depth > MAX_INCLUDE_DEPTH) throw new NotLikePgCommon(`includes nested deeper than ${MAX_INCLUDE_DEPTH} at ${file}`);
  const conf = new Map<string, string>();
  const text = read ?? (await readQuietly(fs, file));
  if (text === undefined) return conf;
  const merge = (from: Map<string, string>) => from.forEach((v, k) => conf.set(k, v));
  for (const line of parseConfLines(text, file)) {
    if (line.kind === 'set') conf.set(line.key, line.value);
    else if (line.kind === 'include') merge(await readConf(fs, line.path, depth + 1));
    else if ((await statQuietly(fs, line.path))?.isDirectory) {
      for (const name of includedConfFiles(await fs.readdir(line.path))) merge(await readConf(fs, `${line.path}/${name}`, depth + 1));
    }
  }
  return conf;
}

/** cluster_info, for the fields pgmam reads. */
async function clusterInfo(fs: HostFs, v: string, c: string): Promise<ClusterRow> {
  const configdir = confDirOf({ version: v, name: c });
  // A postgresql.conf that is a dead link or unreadable: PgCommon falls back to /etc/postgresql-common's file, or reads nothing.
  const text = await readQuietly(fs, `${configdir}/postgresql.conf`);
  if (text === undefined) throw new NotLikePgCommon(`${configdir}/postgresql.conf cannot be read`);
  const conf = await readConf(fs, `${configdir}/postgresql.conf`, 0, text);
  // The pgdata link and a data directory inside /etc are older layouts: pg_lsclusters reads those.
  const pgdata = conf.get('data_directory');
  if (!pgdata) throw new NotLikePgCommon(`${configdir}: no data_directory`);
  if (Number(v) >= 9.4) {
    const auto = await readConf(fs, `${pgdata}/postgresql.auto.conf`);
    auto.forEach((value, key) => key !== 'data_directory' && conf.set(key, value));
  }
  const port = conf.get('port') || DEFAULT_PORT;
  // PgCommon's cluster_port_running dies on a port without a digit; pg_lsclusters then fails, and says so.
  if (!/\d/.test(port)) throw new NotLikePgCommon(`${configdir}: port ${port}`);
  const socketdir = await socketDir(fs, conf, pgdata);
  const pidFile = conf.get('external_pid_file');
  let running = pidFile && pidFile !== '(none)' ? await pidFileRunning(fs, pidFile) : undefined;
  // PgCommon's fallback (a stale pid file, none configured): is a server answering on the port's socket?
  if (running === undefined) running = await fs.socketAccepts(`${socketdir}/.s.PGSQL.${port}`);
  const signals = Number(v) >= 12 ? ['recovery.signal', 'standby.signal'] : ['recovery.conf'];
  const recovery = (await Promise.all(signals.map((s) => statQuietly(fs, `${pgdata}/${s}`)))).some(Boolean);
  const start = await startConf(fs, `${configdir}/start.conf`);
  const log = await fs.readlink(`${configdir}/log`);
  const archive = conf.get('archive_command');
  return {
    version: v,
    cluster: c,
    port: Number(port),
    running,
    pgdata,
    configdir,
    logfile: log ?? `/var/log/postgresql/postgresql-${v}-${c}.log`,
    socketdir,
    start,
    ...(recovery ? { recovery: true } : {}),
    config: archive === undefined ? {} : { archive_command: archive },
  };
}

/** get_cluster_socketdir: the first configured directory, else /var/run/postgresql for a cluster owned by its owner, else /tmp. */
async function socketDir(fs: HostFs, conf: Map<string, string>, pgdata: string): Promise<string> {
  const configured = conf.get('unix_socket_directories')?.replace(/\s*,.*/s, '');
  if (configured) return configured;
  const [dir, data] = await Promise.all([statQuietly(fs, SOCKET_DIR), statQuietly(fs, pgdata)]);
  if (!dir || !data) throw new NotLikePgCommon(`cannot stat ${dir ? pgdata : SOCKET_DIR}`);
  return dir.uid === data.uid ? SOCKET_DIR : '/tmp';
}

/** check_pidfile_running: true or false when the pid file tells, undefined when it cannot (unreadable, or its process gone). */
async function pidFileRunning(fs: HostFs, pidFile: string): Promise<boolean | undefined> {
  const text = await readQuietly(fs, pidFile);
  // No pid file: down. One this user cannot read: not known here.
  if (text === undefined) return (await statQuietly(fs, pidFile)) ? undefined : false;
  const pid = parsePidFile(text);
  if (pid === undefined) return undefined;
  const cmdline = await readQuietly(fs, `/proc/${pid}/cmdline`);
  if (cmdline === undefined) return undefined;
  return /\bpostgres\b/.test(cmdline);
}

async function startConf(fs: HostFs, file: string): Promise<string> {
  const text = await readQuietly(fs, file);
  if (text === undefined && (await statQuietly(fs, file))) throw new NotLikePgCommon(`cannot read ${file}`);
  const mode = parseStartConf(text);
  if (!mode) throw new NotLikePgCommon(`${file}: not auto, manual or disabled`);
  return mode;
}
