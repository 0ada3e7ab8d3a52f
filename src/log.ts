// Logging: JSON lines (pino) to the log file, and the same events, readable, to stderr.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import pino, { type Logger } from 'pino';
import { redactFields, redactText } from './redact.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

const NAMES: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warning', 50: 'error', 60: 'fatal' };
const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };

/** A pino destination that prints `pgmam: <msg>` lines for people. */
export function readableStream(write: (s: string) => void) {
  return {
    write(line: string) {
      try {
        const o = JSON.parse(line) as { level: number | string; msg?: string };
        // The file's lines carry level names (warn); older lines, numbers (40).
        const n = typeof o.level === 'number' ? o.level : (LEVELS[o.level] ?? 30);
        const prefix = n >= 40 ? `${NAMES[n]}: ` : '';
        write(`pgmam: ${prefix}${o.msg ?? ''}\n`);
      } catch {
        write(line);
      }
    },
  };
}

export function createLogger(opts: { file: string | undefined; stderrLevel: LogLevel; writeErr: (s: string) => void; command: string }): { log: Logger; fileProblem?: string } {
  const streams: pino.StreamEntry[] = [];
  let fileProblem: string | undefined;
  if (opts.file) {
    try {
      mkdirSync(dirname(opts.file), { recursive: true, mode: 0o755 });
      streams.push({ level: 'debug', stream: pino.destination({ dest: opts.file, sync: true, mkdir: false, mode: 0o640 }) });
    } catch (e) {
      fileProblem = `cannot write the log file ${opts.file}: ${(e as Error).message}`;
    }
  }
  if (opts.stderrLevel !== 'silent') streams.push({ level: opts.stderrLevel, stream: readableStream(opts.writeErr) });
  const log = pino(
    {
      level: 'debug',
      base: { pid: process.pid, command: opts.command },
      timestamp: pino.stdTimeFunctions.isoTime,
      // "level":"warn", not 40: the log is read by people and by tools that know level names.
      formatters: { level: (label) => ({ level: label }) },
      hooks: {
        // Secrets never reach a log line, whatever object carries them.
        logMethod(args, method) {
          return method.apply(this, args.map((a) => (typeof a === 'string' ? redactText(a) : a !== null && typeof a === 'object' && !(a instanceof Error) ? redactFields(a as Record<string, unknown>) : a)) as Parameters<typeof method>);
        },
      },
    },
    pino.multistream(streams),
  );
  return { log, fileProblem };
}
