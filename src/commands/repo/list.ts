// `pgmam repo list [--json]`: the local repository and every one pgmam added — kind, where, retention,
// encryption, the apps attached, and whether it answers now. Read-only; no secret is shown.
import { z } from 'zod';
import { retentionOf } from '../../config/schema.js';
import type { Context } from '../../context.js';
import { managedClusters, readMainConfig, repoPathFrom } from '../../host/facts.js';
import { runFlagsSchema, type CommandModule } from '../../plan/command.js';
import { renderTable } from '../../plan/render.js';
import * as pgbr from '../../pgbackrest/commands.js';
import { classifyProbe } from '../../pgbackrest/probe.js';
import { probeEnv, s3Options } from '../../pgbackrest/repo-options.js';
import { LOCAL_REPO, readRepoSecrets, readRepos, type RepoRecord } from '../../state/repos.js';
import type { ManagedCluster } from '../../state/store.js';

export const repoListOptionsSchema = runFlagsSchema;
export type RepoListOptions = z.infer<typeof repoListOptionsSchema>;

export interface RepoRow {
  name: string;
  kind: 'posix' | 's3';
  where: string;
  retention: { full: number; fullType: 'count' | 'time' };
  encrypted: boolean;
  attachNew: boolean;
  /** The managed clusters whose stanza has it. */
  apps: string[];
  /** It answers now (a listing as root, or the local path exists); null when pgmam could not tell (not root). */
  reachable: boolean | null;
  problem: string | null;
}

/** The local repository's paths (a cluster keeps the one it was created with), and attached apps per repository. */
export function repoRows(repos: RepoRecord[], managed: ManagedCluster[], local: { paths: string[]; retention: RepoRow['retention'] }, reach: Map<string, { ok: boolean; detail?: string } | null>): RepoRow[] {
  const live = managed.filter((r) => !r.dropped);
  const rows: RepoRow[] = [
    { name: LOCAL_REPO, kind: 'posix', where: local.paths.join(', '), retention: local.retention, encrypted: false, attachNew: true, apps: live.map((r) => r.name), reachable: reach.get(LOCAL_REPO)?.ok ?? null, problem: reach.get(LOCAL_REPO)?.detail ?? null },
  ];
  for (const r of repos) {
    const p = reach.get(r.name);
    rows.push({
      name: r.name,
      kind: r.kind,
      where: `s3://${r.s3.bucket}${r.path} at ${r.s3.host}:${r.s3.port}`,
      retention: r.retention,
      encrypted: r.encrypted,
      attachNew: r.attachNew,
      apps: live.filter((m) => m.repos.some((a) => a.name === r.name)).map((m) => m.name),
      reachable: p?.ok ?? null,
      problem: p && !p.ok ? (p.detail ?? 'unreachable') : null,
    });
  }
  return rows;
}

export async function gatherRepoList(ctx: Context): Promise<RepoRow[]> {
  const [{ repos }, managed] = await Promise.all([readRepos(ctx.fs, ctx.paths.stateDir), managedClusters(ctx)]);
  // An empty repo-path means pgBackRest's own (its main configuration's repo1-path, or its default).
  const configured = repoPathFrom(ctx.config['repo-path'], await readMainConfig(ctx.fs));
  const localPaths = [...new Set([configured, ...managed.records.map((r) => r.repoPath)])];
  const reach = new Map<string, { ok: boolean; detail?: string } | null>();
  if (ctx.host.uid === 0) {
    const missing = [];
    for (const p of localPaths) if (!(await ctx.fs.exists(p))) missing.push(p);
    reach.set(LOCAL_REPO, missing.length ? { ok: false, detail: `${missing.join(', ')} does not exist` } : { ok: true });
    await Promise.all(
      repos.map(async (r) => {
        try {
          const env = probeEnv(s3Options(r, await readRepoSecrets(ctx.fs, ctx.paths.stateDir, r.name)));
          reach.set(r.name, classifyProbe(await ctx.runner.run(pgbr.repoProbe(env, ['repo-ls', '--output=json']), { check: false })));
        } catch (e) {
          reach.set(r.name, { ok: false, detail: String(e instanceof Error ? e.message : e) });
        }
      }),
    );
  }
  return repoRows(repos, managed.records, { paths: localPaths, retention: retentionOf(ctx.config) }, reach);
}

export function renderRepoTable(rows: RepoRow[]): string {
  return renderTable(
    ['REPO', 'KIND', 'WHERE', 'RETENTION', 'ENCRYPTED', 'APPS', 'REACHABLE'],
    rows.map((r) => [r.name, r.kind, r.where, `${r.retention.full} ${r.retention.fullType === 'count' ? 'full' : 'days'}`, r.encrypted ? 'yes' : 'no', r.apps.join(',') || '-', r.reachable === null ? '?' : r.reachable ? 'yes' : `no: ${r.problem}`]),
  );
}

export const repoListCommand: CommandModule<RepoListOptions, RepoRow[]> = {
  spec: {
    name: 'repo list',
    summary: 'the repositories: kind, where, retention, encryption, apps attached, reachable',
    cli: { input: z.object({}) },
    options: repoListOptionsSchema,
    examples: ['pgmam repo list', 'pgmam repo list --json'],
    destructive: false,
  },
  gather: gatherRepoList,
  guards: () => [],
  plan: () => ({ target: 'repositories', steps: [] }),
  report: async (ctx, o, rows) => ctx.io.out(o.json ? `${JSON.stringify(rows, null, 2)}\n` : renderRepoTable(rows)),
};
