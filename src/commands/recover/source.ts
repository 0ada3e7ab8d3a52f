// What a shared repository holds of an app another host made, read as that repository's own client
// (pgmam's repository record and secrets, no stanza file): its backups, its archive's timelines and
// history, when its newest WAL arrived. The facts recover restores from, as a restore's SourceFacts.
import type { Context } from '../../context.js';
import { readStanzaInRepo, newestAnnotation, repoProbeTarget } from '../../host/repo-stanza.js';
import * as pgbr from '../../pgbackrest/commands.js';
import { archiveMax, type StanzaInfo } from '../../pgbackrest/info.js';
import { emptySource, type SourceFacts } from '../../restore/source.js';
import { historyFileName, parseHistory } from '../../restore/timeline.js';
import type { Runner } from '../../runner/types.js';
import type { RepoRecord } from '../../state/repos.js';
import { z } from 'zod';

export interface RemoteSource {
  facts: SourceFacts;
  /** The stanza's archive directory in the repository (archive/<stanza>/<id>), and its entries now. */
  archivePath: string | undefined;
  archiveEntries: string[];
  /** The host its newest backup says it came from. */
  host: string | null;
  /** The stanza's PostgreSQL major. */
  version: string | undefined;
  problem: string | undefined;
}

/** `repo-ls --output=json`: names and their types (files also carry a time). */
export function parseRepoEntries(json: string): Array<{ name: string; type: string; time: number | undefined }> {
  const o = z.record(z.string(), z.object({ type: z.string(), time: z.number().optional() })).parse(JSON.parse(json || '{}'));
  return Object.entries(o).map(([name, v]) => ({ name, type: v.type, time: v.time }));
}

/** The newest timeline an archive's entries show: its history files and segment directories. */
export function newestTimeline(entries: string[]): number {
  let max = 1;
  for (const e of entries) {
    const m = /^([0-9A-F]{8})(\.history|[0-9A-F]{8})$/.exec(e);
    if (m) max = Math.max(max, parseInt(m[1]!, 16));
  }
  return max;
}

/** The entries of one directory of the repository. */
export async function listRepoDir(ctx: Pick<Context, 'fs' | 'paths'>, runner: Runner, repo: RepoRecord, path: string): Promise<Array<{ name: string; type: string; time: number | undefined }>> {
  const r = await runner.run(pgbr.repoProbe(await repoProbeTarget(ctx, repo), ['--output=json', 'repo-ls', path]), { check: false });
  if (r.exitCode !== 0) throw new Error(`cannot list ${path} in repository ${repo.name}: ${r.stderr.trim().split('\n').find((l) => /ERROR/.test(l)) ?? `exit code ${r.exitCode}`}`);
  return parseRepoEntries(r.stdout);
}

/** Read-only. */
export async function gatherRemoteSource(ctx: Context, runner: Runner, repo: RepoRecord, stanza: string): Promise<RemoteSource> {
  const f: SourceFacts = { ...emptySource(), repo: { name: repo.name, index: 1, why: `--from-repo ${repo.name}` } };
  const out: RemoteSource = { facts: f, archivePath: undefined, archiveEntries: [], host: null, version: undefined, problem: undefined };
  const x = await readStanzaInRepo(ctx, runner, repo, stanza);
  if (x.exists === undefined) return { ...out, problem: x.problem };
  if (!x.exists || !x.stanza) return { ...out, problem: `repository ${repo.name} holds no stanza ${stanza}` };
  const s: StanzaInfo = x.stanza;
  f.stanza = s;
  out.host = newestAnnotation(s).host ?? null;
  out.version = s.db.at(-1)?.version;
  if (s.status.code !== 0) f.stanzaProblem = `stanza ${stanza} in repository ${repo.name}: ${s.status.message}`;
  const archiveId = s.archive.at(-1)?.id;
  if (!archiveId) return out;
  try {
    out.archivePath = `archive/${stanza}/${archiveId}`;
    out.archiveEntries = (await listRepoDir(ctx, runner, repo, out.archivePath)).map((e) => e.name);
    const tli = newestTimeline(out.archiveEntries);
    f.currentTimeline = tli;
    if (tli > 1) {
      const get = await runner.run(pgbr.repoProbe(await repoProbeTarget(ctx, repo), ['repo-get', `${out.archivePath}/${historyFileName(tli)}`]), { check: false });
      f.historySource = get.exitCode === 0 ? 'archive' : 'missing';
      f.history = get.exitCode === 0 ? parseHistory(get.stdout) : [];
    }
    // When the newest WAL arrived: the origin is idle (lost) or still archiving.
    const max = archiveMax(s);
    if (max) {
      const seg = await listRepoDir(ctx, runner, repo, `${out.archivePath}/${max.wal.slice(0, 16)}`);
      const t = seg.filter((e) => e.name.startsWith(max.wal.slice(0, 24)) && e.time !== undefined).map((e) => e.time!);
      if (t.length) f.archivedAt = new Date(Math.max(...t) * 1000);
    }
  } catch (e) {
    out.problem = e instanceof Error ? e.message : String(e);
  }
  return out;
}
