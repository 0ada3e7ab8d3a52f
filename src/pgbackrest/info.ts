// Schema and parser for `pgbackrest info --output=json`.
import { z } from 'zod';

const backupSchema = z.object({
  label: z.string(),
  type: z.enum(['full', 'diff', 'incr']),
  error: z.boolean().optional(),
  archive: z.object({ start: z.string().nullable(), stop: z.string().nullable() }).partial().optional(),
  lsn: z.object({ start: z.string(), stop: z.string() }).partial().optional(),
  timestamp: z.object({ start: z.number(), stop: z.number() }),
  prior: z.string().nullable().optional(),
  info: z.object({ size: z.number() }).partial().optional(),
  database: z.object({ id: z.number() }).partial().optional(),
});

const stanzaSchema = z.object({
  name: z.string(),
  status: z.object({ code: z.number(), message: z.string() }),
  archive: z.array(z.object({ id: z.string(), min: z.string().nullable().optional(), max: z.string().nullable().optional() })).default([]),
  backup: z.array(backupSchema).default([]),
  db: z.array(z.object({ id: z.number(), 'system-id': z.string(), version: z.string() })).default([]),
});

export type StanzaInfo = z.infer<typeof stanzaSchema>;
export type BackupInfo = z.infer<typeof backupSchema>;

/** System identifiers exceed 2^53: quote them before JSON.parse so no digit is lost. */
export function parseInfo(json: string): StanzaInfo[] {
  const safe = json.replace(/"system-id"\s*:\s*(\d+)/g, '"system-id":"$1"');
  return z.array(stanzaSchema).parse(JSON.parse(safe || '[]'));
}

export function lastBackup(s: StanzaInfo): BackupInfo | undefined {
  return s.backup.filter((b) => !b.error).at(-1);
}

export function firstBackup(s: StanzaInfo): BackupInfo | undefined {
  return s.backup.find((b) => !b.error);
}

/** The newest archived WAL segment name across archive ids (timeline first, so lexical order works). */
export function archiveMax(s: StanzaInfo): { id: string; wal: string } | undefined {
  let best: { id: string; wal: string } | undefined;
  for (const a of s.archive) if (a.max && (!best || a.max > best.wal)) best = { id: a.id, wal: a.max };
  return best;
}
