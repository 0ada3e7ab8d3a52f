// What a new cluster may get besides pgmam's own settings: --post-sql (branch create, branch sync) and
// --conf (those, and initcluster), with the keys pgmam sets itself refused.
import type { Context } from '../context.js';
import * as pg from '../pg/commands.js';
import { fail, pass, type Guard, type Step } from '../plan/types.js';
import type { LiveCluster } from '../restore/steps.js';

/** Settings --conf may not set: pgmam sets them itself (a branch's would break its isolation from the parent). */
export const FORBIDDEN_CONF_KEYS = [
  'port', 'archive_command', 'archive_mode', 'archive_library', 'data_directory', 'restore_command',
  'config_file', 'hba_file', 'ident_file', 'include', 'include_dir', 'include_if_exists',
];
export const BRANCH_CONF_NAME = '91-pgmam-branch.conf';

export interface BranchExtras {
  /** --post-sql DIR: its *.sql files, in name order, with their text. */
  postSql?: { dir: string; files: Array<{ name: string; text: string }> | undefined };
  /** --conf FILE: its text. */
  conf?: { file: string; text: string | undefined };
}

export async function gatherExtras(ctx: Context, o: { postSql?: string; conf?: string }): Promise<BranchExtras> {
  const extras: BranchExtras = {};
  if (o.postSql) {
    const exists = await ctx.fs.stat(o.postSql);
    const names = exists?.isDirectory ? (await ctx.fs.readdir(o.postSql)).filter((n) => n.endsWith('.sql')).sort() : undefined;
    extras.postSql = {
      dir: o.postSql,
      files: names && (await Promise.all(names.map(async (n) => ({ name: n, text: (await ctx.fs.readText(`${o.postSql}/${n}`)) ?? '' })))),
    };
  }
  if (o.conf) extras.conf = { file: o.conf, text: await ctx.fs.readText(o.conf).catch(() => undefined) };
  return extras;
}

/** `key = value` lines of a --conf file (comments and blank lines skipped). */
export function parseConfLines(text: string): Array<{ key: string; line: string }> {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((line) => ({ key: (/^([A-Za-z_][A-Za-z0-9_.]*)/.exec(line)?.[1] ?? line).toLowerCase(), line }));
}

export function extrasGuards(e: BranchExtras, breaks = "the branch's isolation from its parent"): Guard[] {
  const guards: Guard[] = [];
  if (e.postSql)
    guards.push({
      id: 'post-sql-dir-is-readable',
      check: () => (e.postSql!.files ? pass : fail(`--post-sql ${e.postSql!.dir} is not a readable directory`)),
    });
  if (e.conf)
    guards.push({
      id: 'conf-keeps-isolation',
      check() {
        if (e.conf!.text === undefined) return fail(`cannot read --conf ${e.conf!.file}`);
        const bad = parseConfLines(e.conf!.text).filter((l) => FORBIDDEN_CONF_KEYS.includes(l.key)).map((l) => l.key);
        return bad.length ? fail(`--conf ${e.conf!.file} sets ${bad.join(', ')}, which would break ${breaks}`, `pgmam sets those itself; remove them from ${e.conf!.file}`) : pass;
      },
    });
  return guards;
}

export function postSqlStep(c: LiveCluster, e: BranchExtras, systemd: boolean): Step[] {
  const files = e.postSql?.files;
  if (!files?.length) return [];
  return [
    {
      id: 'run-post-sql',
      title: `run ${files.length} script(s) of ${e.postSql!.dir} against ${pg.clusterLabel(c.id)}`,
      effect: 'write',
      keepOnFailure: true,
      run: async (ctx) => {
        for (const f of files) {
          try {
            await ctx.runner.run(pg.psqlScript({ version: c.id.version, port: c.port }, f.text));
          } catch (err) {
            // Handed over stopped, never half-masked: the branch stays listed for inspection.
            await ctx.runner.run(pg.controlCluster(c.id, 'stop', systemd), { check: false });
            throw new Error(`${e.postSql!.dir}/${f.name} failed; the branch is left stopped and listed:\n${err instanceof Error ? err.message : String(err)}`);
          }
        }
      },
      show: files.map((f) => `  psql -f ${e.postSql!.dir}/${f.name}`),
    },
  ];
}

/** --conf's lines (and `more`, e.g. initcluster's --listen) in a conf.d file of their own. */
export function confStep(confDir: string, e: BranchExtras, owner: { uid: number; gid: number }, o: { id?: string; file?: string; more?: string[] } = {}): Step[] {
  const lines = [...(e.conf?.text === undefined ? [] : parseConfLines(e.conf.text).map((l) => l.line)), ...(o.more ?? [])];
  if (!lines.length) return [];
  const file = `${confDir}/conf.d/${o.file ?? BRANCH_CONF_NAME}`;
  const body = `# Written by pgmam${e.conf ? ` from ${e.conf.file}` : ''}\n${lines.join('\n')}\n`;
  return [
    {
      id: o.id ?? 'apply-branch-conf',
      title: `apply ${[e.conf?.file, ...(o.more ?? [])].filter(Boolean).join(', ')} (${file})`,
      effect: 'write',
      run: (ctx) => ctx.fs.writeFileAtomic(file, body, { mode: 0o644, owner }),
      show: [`write ${file}:`, ...body.trimEnd().split('\n').map((l) => `  | ${l}`)],
    },
  ];
}
