// Whether another host has taken an app over: a timeline in the app's stanza of a shared repository
// that is newer than the cluster's own and that pgmam here did not make (its pitr and undo timelines
// are in the record). Read-only: one listing of the stanza's archive per attached repository.
import type { Context } from '../context.js';
import * as pg from '../pg/commands.js';
import { parseControlData } from '../pg/controldata.js';
import * as pgbr from '../pgbackrest/commands.js';
import type { Runner } from '../runner/types.js';
import type { ManagedCluster } from '../state/store.js';
import type { RepoView } from './inventory.js';

export interface Takeover {
  name: string;
  repo: string;
  /** The newer timeline another host made, and the cluster's own. */
  timeline: number;
  own: number;
  /** The host the repository's newest backup of the stanza says it came from. */
  host: string | null;
}

const HISTORY = /^([0-9A-F]{8})\.history$/;

/** Timelines above `own` that pgmam here did not make, from an archive directory's entry names. Pure. */
export function foreignTimelines(entries: string[], own: number, made: ReadonlyArray<{ timeline: number }>): number[] {
  return entries
    .map((e) => HISTORY.exec(e)?.[1])
    .filter((h): h is string => h !== undefined)
    .map((h) => parseInt(h, 16))
    .filter((t) => t > own && !made.some((m) => m.timeline === t))
    .sort((a, b) => a - b);
}

/** The host of the newest backup there that this host did not take. */
const otherHost = (v: RepoView, self: string) => v.stanza?.backup.filter((b) => b.annotation?.['pgmam-host'] && b.annotation['pgmam-host'] !== self).at(-1)?.annotation?.['pgmam-host'] ?? null;

/** With what list and check read of each attached repository (its stanza info names the archive and the hosts of its backups). */
export async function detectTakeover(ctx: Pick<Context, 'paths' | 'host'>, runner: Runner, rec: ManagedCluster, dataDir: string | null, views: RepoView[]): Promise<Takeover | undefined> {
  const readable = views.filter((v) => v.reachable && v.stanza?.archive.at(-1)?.id);
  const found = await foreignTimeline(ctx, runner, rec, dataDir, readable.map((v) => ({ name: v.name, index: v.index, archiveId: v.stanza!.archive.at(-1)!.id })));
  if (!found) return undefined;
  const v = readable.find((x) => x.name === found.repo)!;
  return { ...found, host: otherHost(v, ctx.host.name) };
}

/** The newest foreign timeline in the stanza's archive of any of these repositories (one listing each). */
export async function foreignTimeline(
  ctx: Pick<Context, 'paths'>,
  runner: Runner,
  rec: ManagedCluster,
  dataDir: string | null | undefined,
  repos: Array<{ name: string; index: number; archiveId: string }>,
): Promise<Takeover | undefined> {
  if (!dataDir || !repos.length) return undefined;
  const control = await runner.run(pg.pgControlData(rec.version, dataDir), { check: false });
  const own = control.exitCode === 0 ? parseControlData(control.stdout).timeline : undefined;
  if (own === undefined) return undefined;
  const scope = pgbr.stanzaScope(rec.stanza, ctx.paths.stanzaDir);
  for (const r of repos) {
    const ls = await runner.run(pgbr.repoLs(scope, r.index, `archive/${rec.stanza}/${r.archiveId}`, 2), { check: false });
    if (ls.exitCode !== 0) continue;
    const names = Object.keys(JSON.parse(ls.stdout || '{}') as Record<string, unknown>);
    const newer = foreignTimelines(names, own, rec.timelines).at(-1);
    if (newer !== undefined) return { name: rec.name, repo: r.name, timeline: newer, own, host: null };
  }
  return undefined;
}
