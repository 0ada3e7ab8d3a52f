// backup --export-to DIR (legacy pgbackup -path DIR): a verified mirror of each stanza's part of the
// repository, so DIR is itself a pgBackRest repository.
import { ownerAlive, readJournal, removeJournal, writeJournal, type Journal } from '../../state/journal.js';
import type { Context } from '../../context.js';
import { postgresOwner } from '../../host/facts.js';
import type { ManagedCluster } from '../../state/store.js';

export interface ExportSummary {
  dir: string;
  copied: number;
  unchanged: number;
  removed: number;
}

/**
 * Mirror each stanza's backup/ and archive/ directories into DIR, so DIR is itself a pgBackRest
 * repository: only new or changed files are copied, each verified (size and SHA-256) after copying.
 * The source repository is the one pgmam's record names (root-owned state), never a stanza file's.
 */
export async function exportRepos(ctx: Context, records: ManagedCluster[], dir: string): Promise<ExportSummary> {
  const owner = await postgresOwner(ctx.fs);
  const summary: ExportSummary = { dir, copied: 0, unchanged: 0, removed: 0 };
  await ctx.fs.mkdirp(dir, { mode: 0o750, owner });
  for (const rec of records) {
    // From pgmam's own root-owned record, never from a file postgres could have written (rule 3).
    const repo = rec.repoPath;
    for (const sub of ['backup', 'archive']) {
      const from = `${repo}/${sub}/${rec.stanza}`;
      const to = `${dir}/${sub}/${rec.stanza}`;
      const [src, dst] = await Promise.all([ctx.fs.walk(from), ctx.fs.walk(to)]);
      const pending: Array<{ f: string; size: number | undefined; sum: string }> = [];
      for (const f of src) {
        const [a, b] = await Promise.all([ctx.fs.stat(`${from}/${f}`), ctx.fs.stat(`${to}/${f}`)]);
        // backup.info and archive.info change in place: compare content, not just size and time.
        const mutable = /\.info(\.copy)?$/.test(f);
        if (b && a && b.size === a.size && Math.abs(b.mtimeMs - a.mtimeMs) < 1 && !mutable) {
          summary.unchanged++;
          continue;
        }
        const srcSum = await ctx.fs.sha256(`${from}/${f}`);
        if (b && mutable && b.size === a?.size && (await ctx.fs.sha256(`${to}/${f}`)) === srcSum) {
          summary.unchanged++;
          continue;
        }
        pending.push({ f, size: a?.size, sum: srcSum });
      }
      await ctx.fs.copyFiles(from, to, pending.map((p) => p.f), owner);
      for (const p of pending) {
        const copied = await ctx.fs.stat(`${to}/${p.f}`);
        if (copied?.size !== p.size || (await ctx.fs.sha256(`${to}/${p.f}`)) !== p.sum) throw new Error(`export of ${from}/${p.f} to ${to}/${p.f} did not verify`);
        summary.copied++;
      }
      // Expired in the source: gone from the export too, so the export stays a faithful repository.
      for (const f of dst.filter((x) => !src.includes(x))) {
        await ctx.fs.rm(`${to}/${f}`);
        summary.removed++;
      }
    }
  }
  return summary;
}

/** The mirror's journal name: host-wide, not a cluster (cluster names start with a letter). */
export const MIRROR_JOURNAL = '_mirror';

/**
 * The mirror under a journal, so a killed one shows in `pgmam list` and `check` with the command that
 * finishes it: running the mirror again converges (it copies what is new, changed or half-copied).
 * Refused while another live pgmam mirrors.
 */
export async function mirrorRepos(ctx: Context, records: ManagedCluster[], dir: string, rerun: string): Promise<ExportSummary> {
  const other = await readJournal(ctx.fs, ctx.paths.stateDir, MIRROR_JOURNAL);
  if (other && other.pid !== ctx.host.pid && ownerAlive(ctx.host, other)) throw new Error(`another pgmam (pid ${other.pid}) is mirroring the repository to ${other.target}`);
  const journal: Journal = {
    format: 1,
    command: 'backup --export-to',
    target: dir,
    name: MIRROR_JOURNAL,
    rerun,
    pid: ctx.host.pid,
    groups: [],
    startedAt: ctx.clock.now().toISOString(),
    steps: ['mirror-repository'],
    at: 0,
    status: 'running',
    error: null,
    data: { dir, stanzas: records.map((r) => r.stanza) },
  };
  await writeJournal(ctx.fs, ctx.paths.stateDir, journal);
  try {
    const summary = await exportRepos(ctx, records, dir);
    await removeJournal(ctx.fs, ctx.paths.stateDir, MIRROR_JOURNAL);
    return summary;
  } catch (e) {
    await writeJournal(ctx.fs, ctx.paths.stateDir, { ...journal, status: 'failed', error: String(e instanceof Error ? e.message : e).split('\n')[0] ?? null });
    throw e;
  }
}
