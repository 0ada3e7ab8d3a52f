// Command builders for pgBackRest. Every call runs as postgres, never as root (pgBackRest #2407, #1693).
import { type Retention } from '../config/schema.js';
import type { Cmd } from '../runner/types.js';
import { DEFAULT_INCLUDE_PATH, SPOOL_PATH } from './config.js';
import type { ProbeTarget } from './repo-options.js';

/** pgBackRest options that address a managed cluster's stanza. */
export function stanzaScope(stanza: string, stanzaDir: string): PgbrScope {
  return { stanza, configIncludePath: includePathOf(stanzaDir) };
}

/** pgBackRest options that address a whole repository (one `info` for all its stanzas). */
export function repoScope(repoPath: string, stanzaDir: string): PgbrScope {
  return { repoPath, configIncludePath: includePathOf(stanzaDir) };
}

/** --config-include-path only when the stanza files are not where pgBackRest looks by default. */
const includePathOf = (stanzaDir: string) => (stanzaDir === DEFAULT_INCLUDE_PATH ? undefined : stanzaDir);

export interface PgbrScope {
  stanza?: string;
  /** Set when stanza files live outside pgBackRest's default include path. */
  configIncludePath?: string;
  /** Overrides repo1-path (used to read a repository no stanza section names). */
  repoPath?: string;
}

function pgbr(scope: PgbrScope, args: string[], effect: Cmd['effect']): Cmd {
  const opts: string[] = [];
  if (scope.configIncludePath) opts.push(`--config-include-path=${scope.configIncludePath}`);
  if (scope.stanza) opts.push(`--stanza=${scope.stanza}`);
  if (scope.repoPath) opts.push(`--repo1-path=${scope.repoPath}`);
  return { argv: ['pgbackrest', ...opts, ...args], asUser: 'postgres', effect };
}

export const version = (): Cmd => ({ argv: ['pgbackrest', 'version'], asUser: 'postgres', effect: 'read' });
/** Asynchronous archive-push holds the stanza's archive lock while it pushes: stanza-create waits for it ([050]). */
export const stanzaCreate = (s: PgbrScope): Cmd => ({ ...pgbr(s, ['stanza-create'], 'write'), retry: { exitCode: 50, attempts: 60, delayMs: 500 } });
export const check = (s: PgbrScope) => pgbr(s, ['check'], 'write');
/** Retention on the command line too: the configured one applies whatever the stanza file says. */
export const backup = (s: PgbrScope, type: 'full' | 'diff' | 'incr', r: Retention, repo = 1) =>
  pgbr(s, [`--repo=${repo}`, `--repo${repo}-retention-full=${r.full}`, `--repo${repo}-retention-full-type=${r.fullType}`, `--type=${type}`, 'backup'], 'write');
/** One repository's backups and archive (default the local one, repo1): what every restore reads. */
export const info = (s: PgbrScope, repo: number | 'all' = 1, ioTimeoutSec?: number) =>
  pgbr(s, [...(repo === 'all' ? [] : [`--repo=${repo}`]), ...(ioTimeoutSec ? [`--io-timeout=${ioTimeoutSec}`] : []), '--output=json', 'info'], 'read');

/** Checks one backup set's files against their checksums (and the WAL it needs), naming each damaged file at info level. */
export const verify = (s: PgbrScope, label: string, repo = 1): Cmd => ({ ...pgbr(s, [`--repo=${repo}`, `--set=${label}`, '--log-level-console=info', '--log-level-file=off', 'verify'], 'read'), timeoutMs: 3_600_000 });

/** One backup set's info, which (unlike the stanza's) lists the databases it holds (database-ref). */
export const infoOfSet = (s: PgbrScope, label: string, repo = 1) => pgbr(s, [`--repo=${repo}`, `--set=${label}`, '--output=json', 'info'], 'read');
/**
 * Push one WAL or history file by absolute path (pgBackRest checks the cwd only for relative paths), now:
 * asynchronous archiving would wait for PostgreSQL to have queued it (.ready), which pgmam's own pushes never are.
 */
export const archivePush = (s: PgbrScope, file: string) => pgbr(s, ['--no-archive-async', 'archive-push', file], 'write');
/** A stanza's async archive-push status files (spool): stale once its cluster is gone, misleading to a new one of the same name. */
export const clearSpool = (stanza: string): Cmd => ({ argv: ['rm', '-rf', '--', `${SPOOL_PATH}/archive/${stanza}`], asUser: 'postgres', effect: 'write' });
/** One directory of a repository, as JSON (names, types, times): an S3 repository cannot be read with the filesystem. */
export const repoLs = (s: PgbrScope, repo: number, path: string, ioTimeoutSec?: number) =>
  pgbr(s, [`--repo=${repo}`, ...(ioTimeoutSec ? [`--io-timeout=${ioTimeoutSec}`] : []), '--output=json', 'repo-ls', path], 'read');
/** One small file into a repository, from stdin (a registration pgmam writes). */
export const repoPut = (s: PgbrScope, repo: number, path: string, input: string): Cmd => ({ ...pgbr(s, [`--repo=${repo}`, 'repo-put', path], 'write'), input });
/** pgBackRest's lock-path default: where `stop` leaves <stanza>.stop. */
export const LOCK_PATH = '/tmp/pgbackrest';
export const stop = (s: PgbrScope) => pgbr(s, ['stop'], 'write');
export const start = (s: PgbrScope) => pgbr(s, ['start'], 'write');
/**
 * One repository at a time (`--repo`): a stanza's copies in other repositories are deleted each on its own.
 * An asynchronous archive-push still running holds the stanza's archive lock ([050]): waited for, as stanza-create does.
 */
export const stanzaDelete = (s: PgbrScope, force: boolean, repo?: number): Cmd => ({ ...pgbr(s, [...(repo ? [`--repo=${repo}`] : []), 'stanza-delete', ...(force ? ['--force'] : [])], 'write'), retry: { exitCode: 50, attempts: 60, delayMs: 500 } });
/**
 * A probe of an object-store repository given entirely by the environment (probeEnv): no configuration
 * file is read, nothing local is written. As root, so it reads the CA file where the user keeps it
 * (postgres later reads pgmam's copy).
 */
export const repoProbe = (target: ProbeTarget, args: string[], input?: string): Cmd => ({
  argv: ['pgbackrest', '--config=/dev/null', '--log-level-console=warn', '--log-level-file=off', '--io-timeout=2', ...args],
  // A probe leaves nothing behind (repo-put and repo-rm of one object of its own): it may run while gathering facts.
  effect: 'read',
  env: target.env,
  ...(target.asPostgres ? { asUser: 'postgres' as const } : {}),
  input,
  timeoutMs: 60_000,
});

/** "pgBackRest 2.45" → "2.45" */
export function parseVersion(stdout: string): string | undefined {
  return /pgBackRest\s+(\d+\.\d+)/.exec(stdout)?.[1];
}

// The newest PostgreSQL major each pgBackRest release supports (from its release notes).
const SUPPORT: ReadonlyArray<[string, number]> = [
  ['2.56', 18],
  ['2.53', 17],
  ['2.47', 16],
  ['2.41', 15],
  ['2.34', 14],
  ['2.30', 13],
  ['2.18', 12],
];

export function newestSupportedPg(pgbackrestVersion: string): number {
  const v = versionNumber(pgbackrestVersion);
  for (const [since, pg] of SUPPORT) if (v >= versionNumber(since)) return pg;
  return 11;
}

const versionNumber = (v: string) => {
  const [maj, min] = v.split('.').map(Number);
  return (maj ?? 0) * 1000 + (min ?? 0);
};

export interface RestoreOptions {
  /** undefined: the newest backup (pgBackRest's default). */
  set: string | undefined;
  /** 'time' with a target, or 'default' (to the end of the archive; promotes by itself). */
  type: 'time' | 'default' | 'immediate' | 'standby';
  target?: string;
  /** Pinned, so a restore never follows an abandoned timeline in the archive. */
  targetTimeline?: number | 'current';
  /** Restore into another data directory (a branch) than the stanza's pg1-path. */
  pg1Path?: string;
  /** Archiving off during recovery: a restored copy must not push WAL into the source stanza. */
  archiveModeOff?: boolean;
  /** The repository whose info the set was chosen from (default the local one, repo1). */
  repo?: number;
  /** Only this user database (and the system ones): the others are restored as zeroed files, to be dropped. */
  dbInclude?: string;
}

export function restore(s: PgbrScope, o: RestoreOptions): Cmd {
  const args = o.set === undefined ? [] : [`--set=${o.set}`];
  if (o.pg1Path) args.push(`--pg1-path=${o.pg1Path}`);
  // pgBackRest 2.45 refuses --target-action without --type ([031], #1989); the default type promotes by itself.
  // A standby never promotes by itself: no target action.
  if (o.type === 'standby') args.push('--type=standby');
  else if (o.type !== 'default') args.push(`--type=${o.type}`, '--target-action=promote');
  if (o.target) args.push(`--target=${o.target}`);
  if (o.targetTimeline !== undefined) args.push(`--target-timeline=${o.targetTimeline}`);
  if (o.archiveModeOff) args.push('--archive-mode=off');
  if (o.dbInclude) args.push(`--db-include=${o.dbInclude}`);
  // The set was chosen from this repository's own info.
  args.push(`--repo=${o.repo ?? 1}`, 'restore');
  return pgbr(s, args, 'write');
}
