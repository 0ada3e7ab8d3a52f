// What asynchronous archive-push left in its spool: a `<segment>.error` (or `global.error`) file holds
// pgBackRest's error code, then one line per repository that failed ("repo2: [HostConnectError] …").
// Pure: which repositories fail, in pgBackRest's own words.

/** Repository index → pgBackRest's first line about it. */
export function parseSpoolError(text: string): Map<number, string> {
  const failing = new Map<number, string>();
  for (const m of text.matchAll(/^repo(\d+): (\[\w+\] .*)$/gm)) if (!failing.has(Number(m[1]))) failing.set(Number(m[1]), m[2]!.trim());
  return failing;
}

/** An archive_status entry of a WAL segment (not a history or backup file) PostgreSQL still waits to archive. */
export const readySegment = (entry: string): string | undefined => /^([0-9A-F]{24})\.ready$/.exec(entry)?.[1];
