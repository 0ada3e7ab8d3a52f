// Renders a plan for --dry-run and confirmation: every step with its exact command line.
import { effectiveArgv, renderArgv } from '../runner/types.js';
import { isCmd, type Action, type Plan } from './types.js';

function actionLines(a: Action, show: string[] | undefined, uid: number): string[] {
  if (isCmd(a)) return [`$ ${renderArgv(effectiveArgv(a, uid))}${a.input !== undefined ? ' < (script on stdin)' : ''}`, ...(show ?? [])];
  return show ?? [];
}

export function renderPlan(plan: Plan, uid: number): string {
  const out: string[] = [...(plan.downtime ? [`downtime: ${plan.downtime}`] : []), `plan: pgmam ${plan.command} ${plan.target}`];
  out.push(`guards: ${plan.guards.length} checked, all passed (${plan.guards.map((g) => g.id).join(', ')})`);
  plan.steps.forEach((s, i) => {
    out.push(`${i + 1}. ${s.id}: ${s.title}`);
    for (const l of actionLines(s.run, s.show, uid)) out.push(`     ${l}`);
  });
  const undos = plan.steps.filter((s) => s.undo);
  if (undos.length) {
    out.push('on failure, undone in reverse order (unless --keep-on-error):');
    for (const s of [...undos].reverse()) {
      out.push(`   - ${s.undo!.title}`);
      for (const l of actionLines(s.undo!.run, s.undo!.show, uid)) out.push(`       ${l}`);
    }
  }
  for (const n of plan.notes ?? []) out.push(n);
  return `${out.join('\n')}\n`;
}

/** Columns padded to their widest cell, two spaces apart (list-style tables). */
export function renderTable(head: string[], rows: string[][]): string {
  const table = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  return `${table.map((row) => row.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n')}\n`;
}

/** One format for times in human output, everywhere: 2026-12-01 04:38:32Z (JSON keeps ISO-8601). */
export const humanTime = (iso: string) => iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
