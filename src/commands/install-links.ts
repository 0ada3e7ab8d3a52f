// `pgmam install-links [--prefix DIR]`: pgmam and the four legacy names as symlinks.
import type { Context } from '../context.js';
import { LEGACY_NAMES } from '../cli/legacy.js';
import { runsAsRoot } from '../guards/host.js';
import { executePlan, type ExecuteFlags } from '../plan/executor.js';
import { fail, pass, type Plan, type Step } from '../plan/types.js';

export interface LinkFacts {
  uid: number;
  /** link path → what is there now: undefined (nothing), a symlink target, or 'file'. */
  existing: Map<string, string | undefined>;
}

export function planInstallLinks(f: LinkFacts, prefix: string, selfPath: string): Plan {
  const links: Array<[string, string]> = [[`${prefix}/pgmam`, selfPath], ...LEGACY_NAMES.map((n) => [`${prefix}/${n}`, `${prefix}/pgmam`] as [string, string])];
  const steps: Step[] = links
    .filter(([link, target]) => f.existing.get(link) !== target)
    .map(([link, target]) => ({
      id: 'create-link',
      title: `link ${link} → ${target}`,
      effect: 'write',
      run: async (ctx: Context) => {
        await ctx.fs.mkdirp(prefix, { mode: 0o755 });
        await ctx.fs.rm(link); // only ever an old symlink of ours: the guard refused anything else
        await ctx.fs.symlink(target, link);
      },
      show: [`ln -sfn ${target} ${link}`],
    }));
  const foreign = links.filter(([link]) => f.existing.get(link) === 'file').map(([l]) => l);
  return {
    command: 'install-links',
    target: prefix,
    locks: [],
    destructive: false,
    guards: [
      runsAsRoot(f.uid),
      { id: 'links-do-not-replace-files', check: () => (foreign.length ? fail(`not replacing existing files: ${foreign.join(', ')}`, 'move them away first') : pass) },
    ],
    steps,
  };
}

export async function runInstallLinks(ctx: Context, o: ExecuteFlags & { prefix: string; selfPath: string }): Promise<void> {
  const existing = new Map<string, string | undefined>();
  for (const n of ['pgmam', ...LEGACY_NAMES]) {
    const link = `${o.prefix}/${n}`;
    const target = await ctx.fs.readlink(link);
    existing.set(link, target ?? ((await ctx.fs.exists(link)) ? 'file' : undefined));
  }
  const plan = planInstallLinks({ uid: ctx.host.uid, existing }, o.prefix, o.selfPath);
  if ((await executePlan(ctx, plan, o)) === 'done') ctx.io.out(`pgmam and ${LEGACY_NAMES.join(', ')} are linked in ${o.prefix}\n`);
}
