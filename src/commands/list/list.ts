// `pgmam list`: every cluster on the host, managed or not, with its backups and recovery window.
// Host facts (port, status, backups) are read from the host; pgmam's records add role, parent, preserved.
import { humanTime } from '../../plan/render.js';
import { z } from 'zod';
import type { Context } from '../../context.js';
import { buildList, gatherListFacts, type ListEntry, type ListFacts } from '../../host/inventory.js';
import { runFlagsSchema, type CommandModule } from '../../plan/command.js';
import { RefusedError } from '../../errors.js';
import { flag } from '../../plan/cli-spec.js';

export const listOptionsSchema = runFlagsSchema.extend({ names: z.array(z.string()).default([]), wide: z.boolean().default(false), /** Also what dropped apps left (role dropped). */ all: z.boolean().default(false) });
export type ListOptions = z.infer<typeof listOptionsSchema>;

const short = humanTime;

/** The status cell: interrupted, failed and fenced clusters say so (the lines after the table say more). */
const statusOf = (e: ListEntry, wide: boolean) =>
  e.interrupted
    ? wide
      ? `${e.status}, ${e.interrupted.status === 'failed' ? 'failed' : 'interrupted'} ${e.interrupted.command} at ${e.interrupted.step}`
      : `${e.status}!`
    : e.successor && e.fenced
      ? wide ? `${e.status}, fenced (failed over to ${e.successor})` : `${e.status}, fenced`
      : e.fenced
        ? wide ? `${e.status}, fenced (taken over${e.fenced.host ? ` by ${e.fenced.host}` : ''})` : `${e.status}, fenced`
        : e.status;

/** Columns padded to their widest cell; the first (the cluster) shortened with … when the table would pass `width`. */
function table(head: string[], rows: string[][], width: number | undefined): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const total = widths.reduce((a, w) => a + w, 0) + 2 * (widths.length - 1);
  if (width && total > width) widths[0] = Math.max(head[0]!.length, widths[0]! - (total - width));
  const cell = (c: string, i: number) => (c.length > widths[i]! ? `${c.slice(0, widths[i]! - 1)}…` : c.padEnd(widths[i]!));
  return `${[head, ...rows].map((r) => r.map(cell).join('  ').trimEnd()).join('\n')}\n`;
}

/** The default list fits 80 columns: cluster, port, status, role, last backup, preserved count. `wide`: every column. */
export function renderTable(entries: ListEntry[], o: { wide?: boolean; width?: number } = {}): string {
  if (!o.wide) {
    const rows = entries.map((e) => [e.cluster, e.port === null ? '-' : String(e.port), statusOf(e, false), e.role, e.lastBackup ? `${e.lastBackup.type} ${short(e.lastBackup.stoppedAt)}` : '-', e.preserved.length ? String(e.preserved.length) : '-']);
    return table(['CLUSTER', 'PORT', 'STATUS', 'ROLE', 'LAST BACKUP', 'PRES'], rows, o.width ?? 80);
  }
  const head = ['CLUSTER', 'PORT', 'STATUS', 'ROLE', 'PARENT', 'STANZA', 'LAST BACKUP', 'RECOVERY WINDOW', 'PRESERVED'];
  const rows = entries.map((e) => [
    e.cluster,
    e.port === null ? '-' : String(e.port),
    statusOf(e, true),
    e.role,
    e.parent ?? '-',
    e.stanza ?? '-',
    e.lastBackup ? `${e.lastBackup.type} ${short(e.lastBackup.stoppedAt)}` : '-',
    e.recoveryWindow ? `${short(e.recoveryWindow.from)} .. ${short(e.recoveryWindow.to)}` : '-',
    e.preserved.length ? e.preserved.map((p) => `${p.path} (${p.reason}, ${short(p.createdAt)})`).join(', ') : '-',
  ]);
  return table(head, rows, undefined);
}

/** Names filter by app name or VERSION/NAME; none: every cluster. */
const chosen = (entries: ListEntry[], names: string[]) => (names.length ? entries.filter((e) => names.includes(e.name) || names.includes(e.cluster)) : entries);

async function reportList(ctx: Context, o: ListOptions, facts: ListFacts): Promise<void> {
  for (const p of facts.problems) ctx.io.err(`pgmam: ${p}\n`);
  // A dropped app named on the command line is shown without --all.
  const entries = chosen(buildList(facts, { all: o.all || o.names.length > 0 }), o.names);
  const unknown = o.names.filter((n) => !entries.some((e) => e.name === n || e.cluster === n));
  if (unknown.length) throw new RefusedError('list', [{ id: 'clusters-exist', reason: `no such cluster: ${unknown.join(', ')}`, hint: 'see pgmam list' }]);
  ctx.io.out(o.json ? `${JSON.stringify(entries, null, 2)}\n` : renderTable(entries, { wide: o.wide, width: ctx.io.columns }));
  const hidden = o.all || o.names.length ? 0 : facts.leftovers.length;
  if (!o.json && hidden) ctx.io.out(`${hidden} dropped app${hidden === 1 ? '' : 's'} left backups or preserved directories: pgmam list --all\n`);
  if (!o.json) for (const e of entries) if (e.interrupted) ctx.io.out(`${e.cluster}: ${e.interrupted.status === 'failed' ? 'failed' : 'interrupted'} ${e.interrupted.command} at ${e.interrupted.step}\n  to finish or undo it, run: ${e.interrupted.rerun}\n`);
}

/** Read-only: no guards, no steps; any user who can read the configuration may list. */
export const listCommand: CommandModule<ListOptions, ListFacts> = {
  spec: {
    name: 'list',
    summary: 'every cluster on the host, managed or not: status, port, role, backups, recovery window, preserved directories',
    cli: {
      args: [{ syntax: '[apps...]', key: 'names', help: 'only these clusters (app name or VERSION/NAME)' }],
      flags: [
        { flags: '-o, --output <format>', help: 'wide: every column (parent, stanza, recovery window, preserved directories)', choices: ['wide'] },
        { flags: '-a, --all', help: "also what dropped apps left: their kept backups and preserved data directories (role dropped; pgmam purge deletes them)" },
      ],
      input: z.object({ names: z.array(z.string()).default([]), output: z.enum(['wide']).optional(), all: flag }).transform((r) => ({ names: r.names, wide: r.output === 'wide', all: r.all })),
    },
    options: listOptionsSchema,
    examples: ['pgmam list', 'pgmam list app1 app1_dev', 'pgmam list -o wide', 'pgmam list --all', 'pgmam list --json'],
    destructive: false,
  },
  gather: (ctx, o) => gatherListFacts(ctx, { all: o.all || o.names.length > 0 }),
  guards: () => [],
  plan: () => ({ target: 'all clusters', steps: [] }),
  report: reportList,
};
