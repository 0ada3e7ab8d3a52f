// `pgmam repo remove <name>`: forget a repository pgmam added — refused while any app is attached to
// it. The backups in the bucket stay where they are: pgmam never deletes a repository's content.
import { z } from 'zod';
import type { Context } from '../../context.js';
import { runsAsRoot } from '../../guards/host.js';
import { managedClusters } from '../../host/facts.js';
import { NAME_PATTERN } from '../../names.js';
import { runFlagsSchema, type CommandModule, type PlanBody, type PlanEnv, type Recovery } from '../../plan/command.js';
import { fail, pass, type Guard, type Step } from '../../plan/types.js';
import type { Journal } from '../../state/journal.js';
import { readRepos, repoFiles, type RepoRecord } from '../../state/repos.js';
import { repoNameArg, repoTarget } from './add.js';

export const repoRemoveOptionsSchema = runFlagsSchema.extend({ name: z.string().regex(NAME_PATTERN) });
export type RepoRemoveOptions = z.infer<typeof repoRemoveOptionsSchema>;

export interface RepoRemoveFacts {
  uid: number;
  repo: RepoRecord | undefined;
  /** Managed clusters whose stanza has it. */
  attached: string[];
}

export async function gatherRepoRemove(ctx: Context, o: RepoRemoveOptions): Promise<RepoRemoveFacts> {
  const [{ repos }, managed] = await Promise.all([readRepos(ctx.fs, ctx.paths.stateDir), managedClusters(ctx)]);
  return { uid: ctx.host.uid, repo: repos.find((r) => r.name === o.name), attached: managed.records.filter((r) => r.repos.some((a) => a.name === o.name)).map((r) => r.name) };
}

export const repoRemoveGuards = (f: RepoRemoveFacts, o: RepoRemoveOptions): Guard[] => [
  runsAsRoot(f.uid, 'remove a repository'),
  { id: 'repo-exists', check: () => (f.repo ? pass : fail(`pgmam has no repository ${o.name}`, 'see pgmam repo list')) },
  { id: 'repo-is-detached', check: () => (f.attached.length ? fail(`repository ${o.name} is attached to ${f.attached.join(', ')}`, `pgmam repo detach ${o.name} ${f.attached.join(' ')}`) : pass) },
];

export const repoRemoveJournalSchema = z.object({ name: z.string() });
export type RepoRemoveJournal = z.infer<typeof repoRemoveJournalSchema>;

/** The record first (so the repository is no longer listed), then its secrets and certificate copies: each can run again. */
function removeSteps(stateDir: string, name: string): Step[] {
  const files = repoFiles(stateDir, name);
  return [{ id: 'forget-repo', title: `forget repository ${name} (its backups stay where they are)`, effect: 'destroy', run: async (c) => { for (const f of files) await c.fs.rm(f); }, show: [`rm -f ${files.join(' ')}`] }];
}

export function planRepoRemove(f: RepoRemoveFacts, o: RepoRemoveOptions, env: PlanEnv): PlanBody {
  return { target: repoTarget(o.name), steps: removeSteps(env.paths.stateDir, o.name), journal: { rerun: `pgmam repo remove ${o.name} --yes`, data: { name: o.name } satisfies RepoRemoveJournal } };
}

export async function recoverRepoRemove(ctx: Context, j: Journal, d: RepoRemoveJournal): Promise<Recovery> {
  return { way: 'finished', steps: removeSteps(ctx.paths.stateDir, d.name), finished: `repository ${d.name} was removed\n` };
}

export const repoRemoveCommand: CommandModule<RepoRemoveOptions, RepoRemoveFacts, RepoRemoveJournal> = {
  spec: {
    name: 'repo remove',
    summary: 'forget a repository no app is attached to (its backups stay in the bucket)',
    cli: { args: [{ syntax: '<name>' }], input: z.object({ name: repoNameArg }) },
    options: repoRemoveOptionsSchema,
    examples: ['pgmam repo remove offsite'],
    target: (o) => repoTarget(o.name),
    destructive: true,
    journal: repoRemoveJournalSchema,
  },
  gather: gatherRepoRemove,
  guards: repoRemoveGuards,
  plan: planRepoRemove,
  recover: recoverRepoRemove,
  report: async (ctx, o) => ctx.io.out(`removed repository ${o.name} from pgmam (its backups stay in the bucket)\n`),
};
