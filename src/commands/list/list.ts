// `pgmam list`: every cluster on the host, managed or not, with its backups and recovery window.
// Host facts (port, status, backups) are read from the host; pgmam's records add role, parent, preserved.
import { z } from 'zod';
import type { Context } from '../../context.js';
import { buildList, gatherListFacts, type ListEntry, type ListFacts } from '../../host/inventory.js';
import { runFlagsSchema, type CommandModule } from '../../plan/command.js';

export const listOptionsSchema = runFlagsSchema;
export type ListOptions = typeof listOptionsSchema._output;

const short = (isoTime: string) => isoTime.replace('T', ' ').replace(/\.\d+Z$/, 'Z');

export function renderTable(entries: ListEntry[]): string {
  const head = ['CLUSTER', 'PORT', 'STATUS', 'ROLE', 'PARENT', 'STANZA', 'LAST BACKUP', 'RECOVERY WINDOW', 'PRESERVED'];
  const rows = entries.map((e) => [
    e.cluster,
    e.port === null ? '-' : String(e.port),
    e.interrupted ? `${e.status}, ${e.interrupted.status === 'failed' ? 'failed' : 'interrupted'} ${e.interrupted.command} at ${e.interrupted.step}` : e.successor && e.fenced ? `${e.status}, fenced (failed over to ${e.successor})` : e.fenced ? `${e.status}, fenced (taken over${e.fenced.host ? ` by ${e.fenced.host}` : ''})` : e.status,
    e.role,
    e.parent ?? '-',
    e.stanza ?? '-',
    e.lastBackup ? `${e.lastBackup.type} ${short(e.lastBackup.stoppedAt)}` : '-',
    e.recoveryWindow ? `${short(e.recoveryWindow.from)} .. ${short(e.recoveryWindow.to)}` : '-',
    e.preserved.length ? e.preserved.map((p) => `${p.path} (${p.reason}, ${short(p.createdAt)})`).join(', ') : '-',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return `${[head, ...rows].map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n')}\n`;
}

async function reportList(ctx: Context, o: ListOptions, facts: ListFacts): Promise<void> {
  for (const p of facts.problems) ctx.io.err(`pgmam: ${p}\n`);
  const entries = buildList(facts);
  ctx.io.out(o.json ? `${JSON.stringify(entries, null, 2)}\n` : renderTable(entries));
  if (!o.json) for (const e of entries) if (e.interrupted) ctx.io.out(`${e.cluster}: ${e.interrupted.status === 'failed' ? 'failed' : 'interrupted'} ${e.interrupted.command} at ${e.interrupted.step}; to finish or undo it, run: ${e.interrupted.rerun}\n`);
}

/** Read-only: no guards, no steps; any user who can read the configuration may list. */
export const listCommand: CommandModule<ListOptions, ListFacts> = {
  spec: {
    name: 'list',
    summary: 'every cluster on the host, managed or not: status, port, role, backups, recovery window, preserved directories',
    cli: { input: z.object({}) },
    options: listOptionsSchema,
    examples: ['pgmam list', 'pgmam list --json'],
    destructive: false,
  },
  gather: (ctx) => gatherListFacts(ctx),
  guards: () => [],
  plan: () => ({ target: 'all clusters', steps: [] }),
  report: reportList,
};
