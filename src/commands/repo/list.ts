// `pgmam repo list [--json]`: the local repository and every one pgmam added — kind, where, retention,
// encryption, the apps attached, and whether it answers now. Read-only; no secret is shown.
import { z } from 'zod';
import { retentionOf } from '../../config/schema.js';
import type { Context } from '../../context.js';
import { managedClusters, readMainConfig, repoPathFrom } from '../../host/facts.js';
import { runFlagsSchema, type CommandModule } from '../../plan/command.js';
import { humanTime, renderTable } from '../../plan/render.js';
import * as pgbr from '../../pgbackrest/commands.js';
import { classifyProbe } from '../../pgbackrest/probe.js';
import { LOCAL_REPO, readRepos, repoWhere, type RepoRecord } from '../../state/repos.js';
import type { ManagedCluster } from '../../state/store.js';
import { archiveMax, lastBackup, parseInfo, type StanzaInfo } from '../../pgbackrest/info.js';
import { newestAnnotation, repoProbeTarget } from '../../host/repo-stanza.js';
import { optionalNameArg } from '../../names.js';
import { fail, pass } from '../../plan/types.js';

export const repoListOptionsSchema = runFlagsSchema.extend({ apps: z.string().optional() });
export type RepoListOptions = z.infer<typeof repoListOptionsSchema>;

export interface RepoRow {
  name: string;
  kind: 'posix' | 's3' | 'tls';
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
      where: repoWhere(r),
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

/** One stanza of a (shared) repository, as `repo list --apps` shows it. */
export interface RepoAppRow {
  stanza: string;
  /** From the newest backup's pgmam annotations; null when it has none (taken by hand, or by an older pgmam). */
  host: string | null;
  role: string | null;
  /** A cluster pgmam manages on this host has this stanza. */
  here: boolean;
  status: string;
  newestBackup: { label: string; type: string; stoppedAt: string } | null;
  /** The newest WAL segment in its archive (timeline and position). */
  newestWal: string | null;
  systemId: string | null;
}

export function repoAppRows(stanzas: StanzaInfo[], managed: ManagedCluster[]): RepoAppRow[] {
  return stanzas.map((s) => {
    const b = lastBackup(s);
    const a = newestAnnotation(s);
    return {
      stanza: s.name,
      host: a.host ?? null,
      role: a.role ?? null,
      here: managed.some((m) => !m.dropped && m.stanza === s.name),
      status: s.status.message,
      newestBackup: b ? { label: b.label, type: b.type, stoppedAt: new Date(b.timestamp.stop * 1000).toISOString() } : null,
      newestWal: archiveMax(s)?.wal ?? null,
      systemId: s.db.at(-1)?.['system-id'] ?? null,
    };
  });
}

/** Every stanza a repository holds, whichever host it came from: one `pgbackrest info` over the whole repository. */
export async function gatherRepoApps(ctx: Context, name: string): Promise<{ rows: RepoAppRow[]; problem: string | null; known: boolean }> {
  const [{ repos }, managed] = await Promise.all([readRepos(ctx.fs, ctx.paths.stateDir), managedClusters(ctx)]);
  const repo = repos.find((r) => r.name === name);
  if (name !== LOCAL_REPO && !repo) return { rows: [], problem: null, known: false };
  if (ctx.host.uid !== 0) return { rows: [], problem: 'reading a repository needs root (run with sudo)', known: true };
  let r;
  if (repo) {
    try {
      r = await ctx.runner.run(pgbr.repoProbe(await repoProbeTarget(ctx, repo), ['--output=json', 'info']), { check: false });
    } catch (e) {
      return { rows: [], problem: e instanceof Error ? e.message : String(e), known: true };
    }
  } else {
    const path = repoPathFrom(ctx.config['repo-path'], await readMainConfig(ctx.fs));
    r = await ctx.runner.run(pgbr.info(pgbr.repoScope(path, ctx.paths.stanzaDir)), { check: false });
  }
  if (r.exitCode !== 0) return { rows: [], problem: classifyProbe(r).detail ?? 'unreadable', known: true };
  return { rows: repoAppRows(parseInfo(r.stdout), managed.records), problem: null, known: true };
}

export function renderRepoApps(rows: RepoAppRow[]): string {
  return renderTable(
    ['STANZA', 'HOST', 'ROLE', 'HERE', 'NEWEST BACKUP', 'NEWEST WAL', 'STATUS'],
    rows.map((r) => [r.stanza, r.host ?? '-', r.role ?? '-', r.here ? 'yes' : 'no', r.newestBackup ? `${r.newestBackup.label} (${humanTime(r.newestBackup.stoppedAt)})` : '-', r.newestWal ?? '-', r.status]),
  );
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
          const env = await repoProbeTarget(ctx, r);
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
    rows.map((r) => [r.name, r.kind, r.where, r.kind === 'tls' ? 'its host’s' : `${r.retention.full} ${r.retention.fullType === 'count' ? 'full' : 'days'}`, r.encrypted ? 'yes' : 'no', r.apps.join(',') || '-', r.reachable === null ? '?' : r.reachable ? 'yes' : `no: ${r.problem}`]),
  );
}

type RepoListFacts = { kind: 'repos'; rows: RepoRow[] } | { kind: 'apps'; repo: string; rows: RepoAppRow[]; problem: string | null; known: boolean };

export const repoListCommand: CommandModule<RepoListOptions, RepoListFacts> = {
  spec: {
    name: 'repo list',
    summary: 'the repositories: kind, where, retention, encryption, apps attached, reachable; --apps REPO: every stanza in it, from whichever host',
    cli: {
      flags: [{ flags: '--apps <repo>', help: "every app (stanza) in this repository, whichever host it came from: host, role, newest backup and WAL" }],
      input: z.object({ apps: optionalNameArg('repository name') }),
    },
    options: repoListOptionsSchema,
    examples: ['pgmam repo list', 'pgmam repo list --json', 'pgmam repo list --apps offsite'],
    destructive: false,
  },
  gather: async (ctx, o) => (o.apps === undefined ? { kind: 'repos', rows: await gatherRepoList(ctx) } : { kind: 'apps', repo: o.apps, ...(await gatherRepoApps(ctx, o.apps)) }),
  guards: (f) =>
    f.kind === 'repos'
      ? []
      : [
          { id: 'repo-exists', check: () => (f.known ? pass : fail(`pgmam has no repository ${f.repo}`, 'see pgmam repo list')) },
          { id: 'repo-is-readable', check: () => (!f.known || !f.problem ? pass : fail(`cannot read repository ${f.repo}: ${f.problem}`)) },
        ],
  plan: () => ({ target: 'repositories', steps: [] }),
  report: async (ctx, o, f) => ctx.io.out(o.json ? `${JSON.stringify(f.rows, null, 2)}\n` : f.kind === 'repos' ? renderRepoTable(f.rows) : renderRepoApps(f.rows)),
};
