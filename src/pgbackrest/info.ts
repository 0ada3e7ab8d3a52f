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
  /** repo-key: the repository (repoN) that holds it; absent before pgBackRest knew several. */
  database: z.object({ id: z.number(), 'repo-key': z.number() }).partial().optional(),
  /** pgBackRest's backup annotations (pgmam's: pgmam-host, pgmam-app, pgmam-role). */
  annotation: z.record(z.string(), z.string()).optional(),
});

const stanzaSchema = z.object({
  name: z.string(),
  status: z.object({ code: z.number(), message: z.string() }),
  archive: z.array(z.object({ id: z.string(), min: z.string().nullable().optional(), max: z.string().nullable().optional() })).default([]),
  backup: z.array(backupSchema).default([]),
  db: z.array(z.object({ id: z.number(), 'system-id': z.string(), version: z.string() })).default([]),
  /** Per repository: whether pgBackRest could read the stanza there. */
  repo: z.array(z.object({ key: z.number(), status: z.object({ code: z.number(), message: z.string() }) })).optional(),
});

export type StanzaInfo = z.infer<typeof stanzaSchema>;
export type BackupInfo = z.infer<typeof backupSchema>;

/** System identifiers exceed 2^53: quote them before JSON.parse so no digit is lost. */
export function parseInfo(json: string): StanzaInfo[] {
  const safe = json.replace(/"system-id"\s*:\s*(\d+)/g, '"system-id":"$1"');
  return z.array(stanzaSchema).parse(JSON.parse(safe || '[]'));
}

/** The databases a backup set holds (`info --set`: database-ref); undefined when the output does not say. */
export function parseSetDatabases(json: string): string[] | undefined {
  const parsed = z
    .array(z.object({ backup: z.array(z.object({ 'database-ref': z.array(z.object({ name: z.string() })).optional() }).passthrough()) }).passthrough())
    .safeParse(JSON.parse(json.replace(/"system-id"\s*:\s*(\d+)/g, '"system-id":"$1"') || '[]'));
  const ref = parsed.success ? parsed.data[0]?.backup.at(-1)?.['database-ref'] : undefined;
  return ref?.map((d) => d.name);
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

/** The backups one repository holds (repo1 for a listing that names none). */
export const backupsIn = (s: StanzaInfo | undefined, index: number): BackupInfo[] => (s?.backup ?? []).filter((b) => (b.database?.['repo-key'] ?? 1) === index);

/** `repo-ls --output=json` of one archive directory: file name → modification time (epoch seconds). */
export function parseRepoLs(json: string): Map<string, number> {
  const o = z.record(z.string(), z.object({ type: z.string(), time: z.number().optional() })).parse(JSON.parse(json || '{}'));
  return new Map(Object.entries(o).flatMap(([k, v]) => (v.time === undefined ? [] : [[k, v.time] as [string, number]])));
}

/** What `pgbackrest verify` found wrong, one line per file: "invalid checksum '20261202-134120F/pg_data/base/5/1255.lz4'". */
export function parseVerifyProblems(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/INFO: ((?:[a-z ]*(?:invalid|missing)[a-z ]*)'[^'\n]+')/g)) out.push(m[1]!.trim());
  return [...new Set(out)];
}
