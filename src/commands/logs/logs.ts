// `pgmam logs <app> [-n N] [-f] [--pgmam]`: the app's server log (the file pg_lsclusters names), or
// pgmam's own log filtered to the app (its JSON lines made readable). -f follows the file as it grows
// (and across a rotation) until Ctrl-C. Reads only.
import { z } from 'zod';
import type { Context } from '../../context.js';
import { managedApp, resolvingApp } from '../../host/facts.js';
import { clusterIsManaged } from '../../guards/cluster.js';
import { nameArg, nameSchema } from '../../names.js';
import type { HostCluster } from '../../pg/clusters.js';
import { runFlagsSchema, type CommandModule } from '../../plan/command.js';
import { fail, pass } from '../../plan/types.js';
import type { ManagedCluster } from '../../state/store.js';

export const logsOptionsSchema = runFlagsSchema.extend({ name: nameSchema, lines: z.number().int().min(0), follow: z.boolean(), pgmam: z.boolean() });
export type LogsOptions = z.infer<typeof logsOptionsSchema>;

export interface LogsFacts {
  record: ManagedCluster | undefined;
  cluster: HostCluster | undefined;
  /** The file shown: the server log, or pgmam's log. */
  file: string | undefined;
}

/** The last bytes read for the last lines: enough for long lines, bounded for a huge log. */
const TAIL_BYTES = 1 << 20;

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

/** pgmam's JSON log lines that concern the app (its name as a whole word anywhere in the line), readable. */
export function pgmamLines(text: string, app: string): string[] {
  const word = new RegExp(`(^|[^a-z0-9_])${app}([^a-z0-9_]|$)`);
  const out: string[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim() || !word.test(line)) continue;
    try {
      const j = JSON.parse(line) as { time?: string | number; level?: number | string; msg?: string; command?: string };
      const time = typeof j.time === 'number' ? new Date(j.time).toISOString() : (j.time ?? '');
      const level = typeof j.level === 'number' ? (LEVELS[j.level] ?? String(j.level)) : String(j.level ?? '').toUpperCase();
      out.push(`${time.replace('T', ' ').replace(/\.\d+Z$/, 'Z')} ${level.padEnd(5)} ${j.command ? `[${j.command}] ` : ''}${j.msg ?? ''}`);
    } catch {
      out.push(line);
    }
  }
  return out;
}

const lastLines = (lines: string[], n: number) => (n === 0 ? [] : lines.slice(-n));

export async function gatherLogs(ctx: Context, o: LogsOptions): Promise<LogsFacts> {
  const { record, cluster } = await managedApp(ctx, o.name);
  return { record, cluster, file: o.pgmam ? ctx.paths.logFile : cluster?.logFile };
}

async function reportLogs(ctx: Context, o: LogsOptions, f: LogsFacts): Promise<void> {
  const file = f.file!;
  const shown = (text: string) => (o.pgmam ? pgmamLines(text, o.name) : text.split('\n').filter((l, i, a) => l !== '' || i < a.length - 1));
  const size = (await ctx.fs.stat(file))?.size ?? 0;
  const first = await ctx.fs.readFrom(file, Math.max(0, size - TAIL_BYTES));
  if (first === undefined) throw new Error(`${file} disappeared`);
  // A partial first line (the tail began mid-line) is dropped.
  const lines = shown(size > TAIL_BYTES ? first.text.slice(first.text.indexOf('\n') + 1) : first.text);
  for (const l of lastLines(lines, o.lines)) ctx.io.out(`${l}\n`);
  if (!o.follow) return;
  let end = first.end;
  let partial = '';
  // Until Ctrl-C (or SIGTERM): what was appended since, each half second.
  while (!ctx.host.interrupted()) {
    await new Promise((ok) => setTimeout(ok, 500));
    const next = await ctx.fs.readFrom(file, end);
    if (!next) continue;
    // Smaller than before: rotated or truncated; readFrom read it from its start.
    end = next.end;
    const text = partial + next.text;
    const cut = text.lastIndexOf('\n');
    partial = cut < 0 ? text : text.slice(cut + 1);
    if (cut >= 0) for (const l of shown(text.slice(0, cut + 1))) ctx.io.out(`${l}\n`);
  }
}

export const logsCommand: CommandModule<LogsOptions, LogsFacts> = {
  spec: {
    name: 'logs',
    summary: "an app's server log, or pgmam's own log filtered to it (--pgmam); -f follows it",
    cli: {
      args: [{ syntax: '<app>', key: 'name', help: 'managed cluster' }],
      flags: [
        { flags: '-n, --lines <n>', help: 'how many of the last lines', default: '50' },
        { flags: '-f, --follow', help: 'keep printing what is appended (Ctrl-C ends)' },
        { flags: '--pgmam', help: "pgmam's log (its commands and steps on this app) instead of the server's" },
      ],
      input: z.object({
        name: nameArg('cluster name'),
        lines: z.string().regex(/^\d+$/, '--lines takes a whole number').transform(Number),
        follow: z.boolean().default(false),
        pgmam: z.boolean().default(false),
      }),
      prepare: resolvingApp,
    },
    options: logsOptionsSchema,
    examples: ['pgmam logs app1', 'pgmam logs app1 -f', 'pgmam logs app1 --pgmam -n 200'],
    destructive: false,
  },
  gather: gatherLogs,
  guards: (f, o) => [
    clusterIsManaged(o.name, f.record, f.cluster),
    { id: 'log-file-exists', check: () => (!f.record || !f.cluster || f.file ? pass : fail(`${f.record.cluster} has no log file that pg_lsclusters knows (logging_collector?)`, 'see log_directory in its configuration')) },
  ],
  plan: (f, o) => ({ target: f.record?.cluster ?? o.name, steps: [] }),
  report: reportLogs,
};
