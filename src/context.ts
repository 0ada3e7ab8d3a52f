// The one object that holds every dependency a command uses (after GitHub CLI's factory).
import type { Logger } from 'pino';
import type { Config } from './config/schema.js';
import type { HostFs } from './host-fs.js';
import type { ChildGroups } from './runner/children.js';
import type { Runner } from './runner/types.js';

export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** stdin and stdout are terminals: prompts are possible. */
  readonly interactive: boolean;
  /** One live line on the terminal; absent when output is not a terminal, under --json or -q. */
  readonly progress?: ProgressLine;
  /** The width tables must fit: the terminal's, else COLUMNS, else 80. */
  readonly columns?: number;
  /** -q (or a log level above info): a command with nothing wrong to say prints nothing (check from cron). */
  readonly quiet?: boolean;
}

export interface ProgressLine {
  show(line: string): void;
  clear(): void;
}

export interface Prompter {
  confirm(message: string): Promise<boolean>;
  /** Ask the user to type `expected`; true when they did. */
  typeToConfirm(message: string, expected: string): Promise<boolean>;
  choose(message: string, choices: string[]): Promise<string>;
  /** `validate`: true, or why the answer is refused (asked again, never a usage error after the fact). */
  ask(message: string, defaultValue: string, validate?: (answer: string) => true | string): Promise<string>;
}

export interface HostInfo {
  uid: number;
  /** This host's name (os.hostname()): what a shared repository's backups say they came from. */
  name: string;
  /** systemd is PID 1 (/run/systemd/system exists): start/stop goes through systemctl. */
  systemd: boolean;
  /** PATH of the pgmam process, for finding tools. */
  path: string;
  pid: number;
  isProcessAlive(pid: number): boolean;
  /** Some process of this group still exists. */
  isGroupAlive(pgid: number): boolean;
  /** The signal pgmam received (SIGINT, SIGTERM), once it has; steps stop at the next boundary. */
  interrupted(): string | undefined;
  /** Test seam (PGMAM_TEST_PAUSE_BEFORE): stop for good just before this step, journal written, so a test can SIGKILL there. */
  pauseBefore: string | undefined;
}

export interface Paths {
  stateDir: string;
  clustersDir: string;
  locksDir: string;
  stanzaDir: string;
  logFile: string;
}

export interface Context {
  runner: Runner;
  /** Process groups of the running children (written to the journal and the lock). */
  children: ChildGroups;
  fs: HostFs;
  clock: { now(): Date };
  log: Logger;
  io: Io;
  prompter: Prompter;
  config: Config;
  /** The configuration file named by --config or PGMAM_CONFIG; undefined for the default. */
  configFile: string | undefined;
  paths: Paths;
  host: HostInfo;
  version: string;
  /**
   * A batch's host-wide reads (the clusters, pgmam's records, a repository's info), made once and
   * shared by its targets' first gathers; absent elsewhere. A plan with steps is gathered again,
   * fresh, under its lock, so a shared read never decides a change.
   */
  readCache?: Map<string, Promise<unknown>>;
}

/** `read` once per batch (see readCache), else every time. */
export function sharedRead<T>(ctx: Pick<Context, 'readCache'>, key: string, read: () => Promise<T>): Promise<T> {
  if (!ctx.readCache) return read();
  let p = ctx.readCache.get(key) as Promise<T> | undefined;
  if (!p) ctx.readCache.set(key, (p = read()));
  return p;
}

export function pathsFrom(config: Config): Paths {
  const stateDir = config['state-dir'];
  return {
    stateDir,
    clustersDir: `${stateDir}/clusters`,
    locksDir: `${stateDir}/locks`,
    stanzaDir: config['stanza-dir'],
    logFile: config['log-file'],
  };
}
