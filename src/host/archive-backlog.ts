// How much WAL a cluster's pg_wal holds back because archiving has not finished with it, and which
// repositories asynchronous archive-push reports failing for it — read-only (pg_wal/archive_status and
// the stanza's spool directory).
import type { HostFs } from '../host-fs.js';
import { spoolOutDir } from '../pgbackrest/config.js';
import { parseSpoolError, readySegment } from '../pgbackrest/spool.js';

export interface ArchiveBacklog {
  /** Segments PostgreSQL waits to archive, oldest first. */
  ready: string[];
  /** Their size in MB (wal_segment_size from the oldest one's file). */
  waitingMb: number;
  /** Repository index → pgBackRest's words, from the spool's error files. */
  failing: Map<number, string>;
}

export async function readArchiveBacklog(fs: HostFs, dataDir: string, stanza: string): Promise<ArchiveBacklog> {
  const ready = (await fs.readdir(`${dataDir}/pg_wal/archive_status`)).flatMap((e) => readySegment(e) ?? []).sort();
  const segmentBytes = ready.length ? ((await fs.stat(`${dataDir}/pg_wal/${ready[0]}`))?.size ?? 16 * 1024 * 1024) : 0;
  const failing = new Map<number, string>();
  const out = spoolOutDir(stanza);
  for (const f of (await fs.readdir(out)).filter((x) => x.endsWith('.error'))) {
    const text = await fs.readText(`${out}/${f}`).catch(() => undefined);
    for (const [index, why] of parseSpoolError(text ?? '')) if (!failing.has(index)) failing.set(index, why);
  }
  return { ready, waitingMb: Math.round((ready.length * segmentBytes) / 1024 / 1024), failing };
}
