// What dropped apps left behind — read-only: the records drop keeps (marked dropped) for kept backups
// and preserved data directories, and stanza files pgmam wrote whose app has no record any more (a
// drop from before records were kept). `list --all` shows them, `purge` deletes them, and a new
// cluster's "name taken" refusal names purge as what frees the name.
import type { Context } from '../context.js';
import { byteOrder, type HostCluster } from '../pg/clusters.js';
import { parseStanzaFile } from '../pgbackrest/config.js';
import type { ManagedCluster, Preserved } from '../state/store.js';

export interface Leftover {
  name: string;
  /** The app's PostgreSQL version (the record's; for a bare stanza file, from its data directory's path). */
  version: string;
  stanza: string;
  stanzaFile: string;
  /** Whether the stanza file is still there (the stanza's backups are reached through it). */
  stanzaFileExists: boolean;
  repoPath: string | undefined;
  /** The data directory it had: its preserved directories sit beside it. */
  dataDir: string | undefined;
  preserved: Preserved[];
  droppedAt: string | null;
  /** The record drop kept (undefined: only a stanza file is left). */
  record: ManagedCluster | undefined;
}

/** pgmam's stanza files open with this line (pgbackrest/config.ts renderStanzaFile). */
const PGMAM_STANZA_FILE = '# Written by pgmam for this cluster only.';

export async function readLeftovers(ctx: Pick<Context, 'fs' | 'paths'>, records: { records: ManagedCluster[]; dropped: ManagedCluster[] }, clusters: readonly HostCluster[]): Promise<Leftover[]> {
  const stanzaFiles = (await ctx.fs.readdir(ctx.paths.stanzaDir).catch(() => [] as string[])).filter((f) => f.endsWith('.conf'));
  const out: Leftover[] = [];
  for (const r of records.dropped)
    out.push({
      name: r.name, version: r.version, stanza: r.stanza, stanzaFile: r.stanzaFile, stanzaFileExists: await ctx.fs.exists(r.stanzaFile),
      repoPath: r.repoPath, dataDir: r.dropped?.dataDir || undefined, preserved: r.preserved, droppedAt: r.dropped?.at ?? null, record: r,
    });
  // A stanza any record names (an app, its replicas and old primaries share one) or a host cluster has is not left over.
  const taken = new Set([...records.records.flatMap((r) => [r.stanza, r.name]), ...records.dropped.map((r) => r.stanza), ...clusters.map((c) => c.name)]);
  for (const f of stanzaFiles) {
    const name = f.slice(0, -'.conf'.length);
    if (taken.has(name)) continue;
    const path = `${ctx.paths.stanzaDir}/${f}`;
    const text = await ctx.fs.readText(path).catch(() => undefined);
    if (!text?.startsWith(PGMAM_STANZA_FILE)) continue;
    const s = parseStanzaFile(text);
    if (!s || s.stanza !== name) continue;
    const version = /\/(\d+)\/[^/]+\/?$/.exec(s.dataDir ?? '')?.[1] ?? '?';
    out.push({ name, version, stanza: name, stanzaFile: path, stanzaFileExists: true, repoPath: s.repoPath, dataDir: s.dataDir, preserved: [], droppedAt: null, record: undefined });
  }
  return out.sort((a, b) => byteOrder(a.name, b.name));
}
