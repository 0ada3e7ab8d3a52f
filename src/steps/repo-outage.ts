// An attached repository that fails must never take its app down: asynchronous archiving keeps WAL
// reaching the local repository, but PostgreSQL keeps each segment in pg_wal until every repository
// has it. Past repo-suspend-mb of such WAL, backup suspends the failing repository for the app (out of
// the stanza file, the WAL it misses recorded); once it answers again, backup puts it back and takes a
// full into it, which closes the gap. The local repository is never suspended.
import type { Context } from '../context.js';
import type { HostCluster } from '../pg/clusters.js';
import * as pg from '../pg/commands.js';
import * as pgbr from '../pgbackrest/commands.js';
import { classifyProbe, type ProbeOutcome } from '../pgbackrest/probe.js';
import { repoProbeTarget } from '../host/repo-stanza.js';
import type { Step } from '../plan/types.js';
import { readRepos } from '../state/repos.js';
import { updateManaged, type Attachment, type ManagedCluster } from '../state/store.js';
import { readArchiveBacklog, type ArchiveBacklog } from '../host/archive-backlog.js';
import { alignStanzaFileStep } from './stanza-file.js';
import { retentionOf } from '../config/schema.js';

export interface Suspension {
  name: string;
  index: number;
  /** pgBackRest's words for the failure. */
  reason: string;
  waitingMb: number;
  /** The last WAL archived everywhere: from then on this repository's archive has a hole. */
  since: string;
  fromWal: string | null;
}

export interface OutageFacts {
  backlog: ArchiveBacklog | undefined;
  suspend: Suspension[];
  /** Suspended repositories that answer again. */
  reattach: Attachment[];
  /** Suspended ones that still do not (each with the probe's words). */
  stillDown: Array<{ name: string; reason: string }>;
  /** Attached (not suspended) ones that do not answer: no backup tries them (it would wait minutes for nothing). */
  unreachable: Array<{ name: string; index: number; reason: string }>;
}

export const noOutage = (): OutageFacts => ({ backlog: undefined, suspend: [], reattach: [], stillDown: [], unreachable: [] });

/** A repository pgmam knows, probed with its own settings (not the stanza file, which a suspended one is not in). */
export async function probeRepo(ctx: Pick<Context, 'runner' | 'fs' | 'paths'>, name: string): Promise<ProbeOutcome> {
  const repo = (await readRepos(ctx.fs, ctx.paths.stateDir)).repos.find((r) => r.name === name);
  if (!repo) return { ok: false, problem: 'other', detail: `repository ${name} is not among pgmam's repositories` };
  const env = await repoProbeTarget(ctx, repo);
  return classifyProbe(await ctx.runner.run(pgbr.repoProbe(env, ['repo-ls', '--output=json']), { check: false }));
}

/** Read-only: a probe of each attached repository (~0.1 s when it answers), and the WAL waiting in pg_wal. */
export async function gatherOutage(ctx: Context, record: ManagedCluster, cluster: HostCluster | undefined): Promise<OutageFacts> {
  const f = noOutage();
  if (!record.repos.length) return f;
  for (const a of record.repos) {
    const p = await probeRepo(ctx, a.name);
    const reason = p.detail ?? p.problem ?? 'does not answer';
    if (a.suspended) {
      if (p.ok) f.reattach.push(a);
      else f.stillDown.push({ name: a.name, reason });
    } else if (!p.ok) f.unreachable.push({ name: a.name, index: a.index, reason });
  }
  if (!cluster?.running || !cluster.dataDir) return f;
  f.backlog = await readArchiveBacklog(ctx.fs, cluster.dataDir, record.stanza);
  // WAL the local repository does not have either is not waiting "only for" another repository.
  if (!f.unreachable.length || f.backlog.waitingMb < ctx.config['repo-suspend-mb'] || f.backlog.failing.has(1)) return f;
  const archived = await ctx.runner.run(pg.psqlValue({ version: cluster.version, port: cluster.port }, "select coalesce(to_char(last_archived_time at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), '') from pg_stat_archiver"), { check: false });
  // Unknown: as early as can be, so no restore from it ever crosses the hole.
  const since = (archived.exitCode === 0 && archived.stdout.trim()) || new Date(0).toISOString();
  for (const u of f.unreachable) f.suspend.push({ name: u.name, index: u.index, reason: f.backlog.failing.get(u.index) ?? u.reason, waitingMb: f.backlog.waitingMb, since: new Date(Date.parse(since)).toISOString(), fromWal: f.backlog.ready[0] ?? null });
  return f;
}

/** Suspend and re-attach steps (each rewrites the record, then the stanza file from it). */
export function outageSteps(record: ManagedCluster, f: OutageFacts, env: { config: Context['config'] }): Step[] {
  const align = alignStanzaFileStep(record.stanzaFile, record.name, retentionOf(env.config));
  const alignNow = (c: Context) => (align.run as (c: Context) => Promise<void>)(c);
  const suspend = f.suspend.map(
    (s): Step => ({
      id: `suspend-repo${s.index}`,
      title: `suspend repository ${s.name} for ${record.name}: ${s.waitingMb} MB of WAL wait in pg_wal only for it (repo-suspend-mb ${env.config['repo-suspend-mb']}), and it fails: ${s.reason}`,
      effect: 'write',
      run: async (c) => {
        const at = c.clock.now().toISOString();
        await updateManaged(c.fs, c.paths.clustersDir, record.name, (r) => ({
          ...r,
          repos: r.repos.map((a) => (a.name === s.name && !a.suspended ? { ...a, suspended: { at, since: s.since, fromWal: s.fromWal, waitingMb: s.waitingMb, reason: s.reason } } : a)),
        }));
        await alignNow(c);
      },
      show: [`pgmam record of ${record.name}: repository ${s.name} suspended (its archive misses WAL from ${s.fromWal ?? 'now'}, after ${s.since})`, `rewrite ${record.stanzaFile} without repo${s.index}: archiving goes on into the local repository alone`],
    }),
  );
  const reattach = f.reattach.map(
    (a): Step => ({
      id: `reattach-repo${a.index}`,
      title: `put repository ${a.name} back into stanza ${record.stanza}: it answers again`,
      effect: 'write',
      run: async (c) => {
        await updateManaged(c.fs, c.paths.clustersDir, record.name, (r) => ({
          ...r,
          repos: r.repos.map((x) => (x.name === a.name && x.suspended ? { ...x, suspended: null, gaps: [...x.gaps, { from: x.suspended.since, to: null, fromWal: x.suspended.fromWal }] } : x)),
        }));
        await alignNow(c);
      },
      show: [`pgmam record of ${record.name}: repository ${a.name} no longer suspended; the WAL it missed recorded as a gap`, `rewrite ${record.stanzaFile} with repo${a.index} again`],
    }),
  );
  return [...suspend, ...reattach];
}

/** An attached repository whose gap no full has bridged yet (re-attached, its full not yet taken). */
export const hasOpenGap = (a: Pick<Attachment, 'gaps'> | undefined) => Boolean(a?.gaps.some((g) => g.to === null));
