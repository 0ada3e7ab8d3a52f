// The one object that holds every dependency a command uses (after GitHub CLI's factory).
import type { Logger } from 'pino';
import type { Config } from './config/schema.js';
import type { HostFs } from './host-fs.js';
import type { Runner } from './runner/types.js';

export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** stdin and stdout are terminals: prompts are possible. */
  readonly interactive: boolean;
}

export interface Prompter {
  confirm(message: string): Promise<boolean>;
  /** Ask the user to type `expected`; true when they did. */
  typeToConfirm(message: string, expected: string): Promise<boolean>;
  choose(message: string, choices: string[]): Promise<string>;
  ask(message: string, defaultValue: string): Promise<string>;
}

export interface HostInfo {
  uid: number;
  /** systemd is PID 1 (/run/systemd/system exists): start/stop goes through systemctl. */
  systemd: boolean;
  /** PATH of the pgmam process, for finding tools. */
  path: string;
  pid: number;
  isProcessAlive(pid: number): boolean;
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
