// The process-runner contract: commands are argv arrays (never a shell string), results have one shape.
import { redactText } from '../redact.js';

export interface Cmd {
  /** argv[0] is the program, resolved through PATH. */
  readonly argv: readonly string[];
  /** Run as this OS user (through runuser when pgmam is root). pgBackRest always runs as postgres. */
  readonly asUser?: 'postgres';
  /** 'read' commands may run while gathering facts; anything else only as a plan step. */
  readonly effect: 'read' | 'write';
  readonly cwd?: string;
  /** Sent on stdin; never logged and never shown (it may carry a password hash). */
  readonly input?: string;
  readonly env?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
  /** Run again (up to `attempts` times in all, `delayMs` apart) while it exits with `exitCode`: a lock another process holds briefly. */
  readonly retry?: { readonly exitCode: number; readonly attempts: number; readonly delayMs: number };
}

export interface RunResult {
  readonly argv: readonly string[];
  readonly exitCode: number;
  readonly signal?: string;
  readonly stdout: string;
  readonly stderr: string;
  readonly durationMs: number;
}

export interface RunOptions {
  /** Default true: a non-zero exit throws CommandFailedError. false is for probes. */
  readonly check?: boolean;
}

export interface Runner {
  run(cmd: Cmd, opts?: RunOptions): Promise<RunResult>;
  /**
   * Start `cmd` (psql reading its script from stdin) and keep it running between the statements
   * sent to it: what must happen in one database session across other work, such as a
   * non-exclusive pg_backup_start … pg_backup_stop around a copy (PostgreSQL aborts the backup
   * when its session ends — also when pgmam dies, since psql then reads end of input).
   */
  hold(cmd: Cmd): Promise<HeldSession>;
}

export interface HeldSession {
  /** Send SQL (psql's unaligned, tuples-only output) and resolve with what it printed; a failed statement ends the session and rejects with CommandFailedError. */
  query(sql: string): Promise<string>;
  /** End the session (end of input) and wait until the process has exited. */
  close(): Promise<RunResult>;
}

/** The marker a held psql session echoes after each script: what came before it is that script's output. */
export const heldMarker = (n: number) => `__pgmam_held_${n}__`;

const TAIL_LINES = 12;

/** The last lines of a tool's output, secrets redacted (it goes into error messages and logs). */
export function stderrTail(text: string, lines = TAIL_LINES): string {
  const all = redactText(text).trimEnd().split('\n');
  return all.slice(-lines).join('\n');
}

export class CommandFailedError extends Error {
  constructor(readonly result: RunResult) {
    const how = result.signal ? `signal ${result.signal}` : `exit code ${result.exitCode}`;
    const tail = stderrTail(result.stderr || result.stdout);
    super(`${renderArgv(result.argv)} failed with ${how}${tail ? `:\n${tail}` : ''}`);
    this.name = 'CommandFailedError';
  }
}

/** The argv actually executed: pgBackRest and psql run as postgres via runuser when we are root. */
export function effectiveArgv(cmd: Cmd, currentUid: number): string[] {
  if (cmd.asUser && currentUid === 0) return ['runuser', '-u', cmd.asUser, '--', ...cmd.argv];
  return [...cmd.argv];
}

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;
/** Quote for display only (copy-pasteable into a POSIX shell); never used to execute. */
export function renderArgv(argv: readonly string[]): string {
  return argv.map((a) => (a !== '' && SAFE.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** The command a log line names: the real program and its arguments, after `runuser -u postgres --` (argv never holds a secret). */
export function shownCommand(argv: readonly string[]): string {
  const i = argv[0] === 'runuser' ? argv.indexOf('--') : -1;
  const real = i >= 0 ? argv.slice(i + 1) : argv;
  const text = renderArgv([...real]);
  return `${i >= 0 ? `(as ${argv[2] ?? '?'}) ` : ''}${text.length > 300 ? `${text.slice(0, 297)}...` : text}`;
}
