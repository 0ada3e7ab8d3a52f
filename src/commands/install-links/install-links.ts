// `pgmam install-links [--prefix DIR]`: pgmam and the four legacy names as symlinks.
import { absolutePath } from '../../plan/cli-spec.js';
import { z } from 'zod';
import type { Context } from '../../context.js';
import { runsAsRoot } from '../../guards/host.js';
import { LEGACY_NAMES } from '../../names.js';
import { runFlagsSchema, type CommandModule, type PlanBody } from '../../plan/command.js';
import { fail, pass, type Guard, type Step } from '../../plan/types.js';

export const installLinksOptionsSchema = runFlagsSchema.extend({ prefix: z.string().startsWith('/'), selfPath: z.string() });
export type InstallLinksOptions = z.infer<typeof installLinksOptionsSchema>;

export interface LinkFacts {
  uid: number;
  /** link path → what is there now: undefined (nothing), a symlink target, or 'file'. */
  existing: Map<string, string | undefined>;
}

const wanted = (o: Pick<InstallLinksOptions, 'prefix' | 'selfPath'>): Array<[string, string]> => [[`${o.prefix}/pgmam`, o.selfPath], ...LEGACY_NAMES.map((n) => [`${o.prefix}/${n}`, `${o.prefix}/pgmam`] as [string, string])];

export async function gatherLinks(ctx: Context, o: InstallLinksOptions): Promise<LinkFacts> {
  const existing = new Map<string, string | undefined>();
  for (const [link] of wanted(o)) {
    const target = await ctx.fs.readlink(link);
    existing.set(link, target ?? ((await ctx.fs.exists(link)) ? 'file' : undefined));
  }
  return { uid: ctx.host.uid, existing };
}

export function linkGuards(f: LinkFacts, o: InstallLinksOptions): Guard[] {
  const foreign = wanted(o).filter(([link]) => f.existing.get(link) === 'file').map(([l]) => l);
  return [runsAsRoot(f.uid), { id: 'links-do-not-replace-files', check: () => (foreign.length ? fail(`not replacing existing files: ${foreign.join(', ')}`, 'move them away first') : pass) }];
}

export function planInstallLinks(f: LinkFacts, o: InstallLinksOptions): PlanBody {
  const steps: Step[] = wanted(o)
    .filter(([link, target]) => f.existing.get(link) !== target)
    .map(([link, target]) => ({
      id: 'create-link',
      title: `link ${link} → ${target}`,
      effect: 'write',
      run: async (ctx: Context) => {
        await ctx.fs.mkdirp(o.prefix, { mode: 0o755 });
        await ctx.fs.rm(link); // only ever an old symlink of ours: the guard refused anything else
        await ctx.fs.symlink(target, link);
      },
      show: [`ln -sfn ${target} ${link}`],
    }));
  return { target: o.prefix, steps, journal: false };
}

export const installLinksCommand: CommandModule<InstallLinksOptions, LinkFacts> = {
  spec: {
    name: 'install-links',
    summary: 'link pgmam and the legacy names (initcluster, pitr, pgbranch, pgbackup) into a directory',
    cli: {
      flags: [{ flags: '--prefix <dir>', help: 'where the links go', default: '/usr/local/bin' }],
      input: z.object({ prefix: absolutePath('--prefix'), selfPath: z.string() }),
    },
    options: installLinksOptionsSchema,
    examples: ['pgmam install-links --prefix /usr/local/bin'],
    destructive: false,
  },
  gather: gatherLinks,
  guards: linkGuards,
  plan: planInstallLinks,
  report: async (ctx, o) => ctx.io.out(`pgmam and ${LEGACY_NAMES.join(', ')} are linked in ${o.prefix}\n`),
};
