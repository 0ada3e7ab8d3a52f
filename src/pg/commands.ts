// Command builders for postgresql-common and the PostgreSQL binaries. Build only; nothing runs here.
import type { Cmd } from '../runner/types.js';

export const PG_LIB = '/usr/lib/postgresql';
export const pgBin = (version: string, tool: string) => `${PG_LIB}/${version}/bin/${tool}`;
export const SOCKET_DIR = '/var/run/postgresql';

export interface ClusterId {
  version: string;
  name: string;
}
export const clusterLabel = (c: ClusterId) => `${c.version}/${c.name}`;
/** The systemd unit postgresql-common installs for a cluster. */
export const unitName = (c: ClusterId) => `postgresql@${c.version}-${c.name}`;
/** postgresql-common's configuration root: /etc/postgresql/<version>/<name>/ per cluster. */
export const CONF_ROOT = '/etc/postgresql';
export const confDirOf = (c: ClusterId) => `${CONF_ROOT}/${c.version}/${c.name}`;

export const lsClusters = (): Cmd => ({ argv: ['pg_lsclusters', '--json'], effect: 'read' });

export function createCluster(c: ClusterId, port: number, dataDir: string): Cmd {
  // -d always: the data directory was resolved once (data-root or createcluster.conf), never guessed twice.
  // --data-checksums: so pgBackRest can detect torn or corrupted pages during backup.
  return { argv: ['pg_createcluster', c.version, c.name, '--port', String(port), '-d', dataDir, '--', '--data-checksums'], effect: 'write' };
}

export function dropCluster(c: ClusterId): Cmd {
  return { argv: ['pg_dropcluster', '--stop', c.version, c.name], effect: 'write' };
}

export type ControlAction = 'start' | 'stop' | 'restart' | 'reload';

/** systemctl when systemd runs (so the unit's state stays true), pg_ctlcluster directly otherwise. */
export function controlCluster(c: ClusterId, action: ControlAction, systemd: boolean): Cmd {
  if (systemd) return { argv: ['systemctl', action, unitName(c)], effect: 'write' };
  return { argv: ['pg_ctlcluster', c.version, c.name, action], effect: 'write' };
}

export interface PsqlTarget {
  version: string;
  port: number;
  db?: string;
}

/** One value from one query, over the cluster's Unix socket, as postgres. */
export function psqlValue(t: PsqlTarget, sql: string): Cmd {
  return {
    argv: [pgBin(t.version, 'psql'), '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-h', SOCKET_DIR, '-p', String(t.port), '-d', t.db ?? 'postgres', '-c', sql],
    asUser: 'postgres',
    effect: 'read',
  };
}

/** Several statements, each in its own transaction; one output line per statement. */
export function psqlStatements(t: PsqlTarget, statements: string[], effect: Cmd['effect']): Cmd {
  return {
    argv: [pgBin(t.version, 'psql'), '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-h', SOCKET_DIR, '-p', String(t.port), '-d', t.db ?? 'postgres', ...statements.flatMap((s) => ['-c', s])],
    asUser: 'postgres',
    effect,
  };
}

/** Client sessions connected now (this query's own not counted): what a stop or restart cuts. */
export const SESSIONS_SQL = "select count(*) from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid()";

/** A running cluster's state in one line: start time, sessions, recovery, archiver (fields split by |). */
export const STATUS_SQL = `select pg_postmaster_start_time()::text || '|' || (${SESSIONS_SQL}) || '|' || pg_is_in_recovery()::text || '|' || coalesce(last_archived_wal, '') || '|' || coalesce(to_char(last_archived_time at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), '') || '|' || failed_count || '|' || coalesce((last_failed_time > coalesce(last_archived_time, '-infinity'))::text, 'false') from pg_stat_archiver`;

/** A session the runner holds open (Runner.hold): statements arrive on stdin, one script at a time; the first error ends it. */
export function psqlHeld(t: PsqlTarget): Cmd {
  return {
    argv: [pgBin(t.version, 'psql'), '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-h', SOCKET_DIR, '-p', String(t.port), '-d', t.db ?? 'postgres'],
    asUser: 'postgres',
    effect: 'write',
  };
}

/** Copy `entries` (paths) into `toDir` sharing their blocks (reflink; fails where the filesystem cannot), as postgres: the data directories are its own. */
export const reflinkCopy = (entries: string[], toDir: string): Cmd => ({
  argv: ['cp', '-a', '--reflink=always', '-t', toDir, '--', ...entries],
  asUser: 'postgres',
  effect: 'write',
});

/** The mount point of the filesystem holding `file` (util-linux findmnt). */
export const mountPointOf = (file: string): Cmd => ({ argv: ['findmnt', '-n', '-o', 'TARGET', '-T', file], effect: 'read' });

/** An XFS filesystem's geometry (xfsprogs): `reflink=1` when it shares blocks. */
export const xfsInfo = (mountPoint: string): Cmd => ({ argv: ['xfs_info', mountPoint], effect: 'read' });

/** A script sent on stdin (so secrets never reach argv or ps), stopping at the first error. */
export function psqlScript(t: PsqlTarget, script: string): Cmd {
  return {
    argv: [pgBin(t.version, 'psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', SOCKET_DIR, '-p', String(t.port), '-d', t.db ?? 'postgres', '-f', '-'],
    asUser: 'postgres',
    effect: 'write',
    input: script,
  };
}

export const pgControlData = (version: string, dataDir: string): Cmd => ({
  argv: [pgBin(version, 'pg_controldata'), dataDir],
  effect: 'read',
});

const conn = (t: PsqlTarget) => ['-h', SOCKET_DIR, '-p', String(t.port)];

export const dumpGlobals = (t: PsqlTarget, file: string): Cmd => ({
  argv: [pgBin(t.version, 'pg_dumpall'), ...conn(t), '--globals-only', '-f', file],
  asUser: 'postgres',
  effect: 'write',
});

export const dumpDatabase = (t: PsqlTarget, db: string, file: string): Cmd => ({
  argv: [pgBin(t.version, 'pg_dump'), ...conn(t), '-Fc', '-f', file, '-d', db],
  asUser: 'postgres',
  effect: 'write',
});

/** Tar format, compressed, WAL streamed, with PostgreSQL's backup_manifest. */
export const baseBackup = (t: PsqlTarget, dir: string): Cmd => ({
  argv: [pgBin(t.version, 'pg_basebackup'), ...conn(t), '-D', dir, '-Ft', '-z', '-X', 'stream', '-c', 'fast', '--manifest-checksums=SHA256'],
  asUser: 'postgres',
  effect: 'write',
});

/** pg_restore -j 2 of a custom-format dump; with `create`, the dump's CREATE DATABASE runs first. */
export const restoreDump = (t: PsqlTarget, file: string, create: boolean): Cmd => ({
  argv: [pgBin(t.version, 'pg_restore'), ...conn(t), '-j', '2', '--exit-on-error', ...(create ? ['-C'] : []), '-d', 'postgres', file],
  asUser: 'postgres',
  effect: 'write',
});

export const verifyBackup = (version: string, dir: string): Cmd => ({ argv: [pgBin(version, 'pg_verifybackup'), '-n', dir], asUser: 'postgres', effect: 'read' });

/** Quote an SQL identifier. */
export const ident = (s: string) => `"${s.replace(/"/g, '""')}"`;
/** Quote an SQL string literal. */
export const literal = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** The effective value of one setting, as the server would start with it (postgres -C), without starting it. */
export function showSetting(c: ClusterId, dataDir: string, name: string): Cmd {
  return { argv: [pgBin(c.version, 'postgres'), '-D', dataDir, '-c', `config_file=${confDirOf(c)}/postgresql.conf`, '-C', name], asUser: 'postgres', effect: 'read' };
}

/** pg_resetwal; `dryRun` (-n) only prints what it would do. */
/** `nextWal`: the first segment after the reset (-l), when pg_wal alone would choose one the archive already holds. */
export const resetWal = (version: string, dataDir: string, o: { dryRun: boolean; force: boolean; nextWal?: string }): Cmd => ({
  argv: [pgBin(version, 'pg_resetwal'), ...(o.dryRun ? ['-n'] : []), ...(o.force ? ['-f'] : []), ...(o.nextWal ? ['-l', o.nextWal] : []), dataDir],
  asUser: 'postgres',
  effect: o.dryRun ? 'read' : 'write',
});
