// Reads postgresql.conf-style files line by line the way postgresql-common's PgCommon.pm
// (read_conf_file, get_cluster_start_conf) does, so pgmam's own reading of a cluster's files sees what
// pg_lsclusters sees. Pure: the caller reads the files and follows the includes.
import { byteOrder } from './clusters.js';

/** One meaningful line: a setting, or an include to follow at this point (later lines win). */
export type ConfLine = { kind: 'set'; key: string; value: string } | { kind: 'include'; path: string } | { kind: 'include-dir'; path: string };

/** A line postgresql-common would refuse ("invalid line N in FILE"): pgmam then asks pg_lsclusters. */
export class ConfLineError extends Error {}

// PgCommon's expressions, in its order (a line matches the first that fits).
// (dotAll: Perl's `.` takes a carriage return too; [[:alnum:]] is ASCII here, so a value that needs more
// is a line pgmam leaves to pg_lsclusters.)
const BLANK = /^\s*(?:#.*)?$/s;
const INCLUDE_DIR = /^\s*include_dir\s*=?\s*'([^']+)'\s*(?:#.*)?$/is;
const INCLUDE = /^\s*include(?:_if_exists)?\s*=?\s*'([^']+)'\s*(?:#.*)?$/is;
const QUOTED = /^\s*([a-zA-Z0-9_.-]+)\s*(?:=|\s)\s*'((?:[^']|''|(?:(?<=\\)'))*)'\s*(?:#.*)?$/is;
/** Lines whose first character after blanks is neither # nor the line's end (BLANK still has the last word). */
const MEANINGFUL = /^[^\S\n]*[^#\s].*$/gm;
const SIMPLE = /^\s*([a-zA-Z0-9_.-]+)\s*(?:=|\s)\s*(-?[a-zA-Z0-9][a-zA-Z0-9._:/+-]*)\s*(?:#.*)?$/is;

/** Keys are lower-cased in files whose name ends in .conf (as PgCommon does). */
export function parseConfLines(text: string, file: string): ConfLine[] {
  const lower = file.endsWith('.conf');
  const out: ConfLine[] = [];
  // Most of a postgresql.conf is comments: only the other lines go through the expressions (one scan).
  for (const line of text.match(MEANINGFUL) ?? []) {
    let m: RegExpExecArray | null;
    if (BLANK.test(line)) continue;
    // Only a line that begins with "include" can be one (PgCommon tries those first).
    const mayInclude = /^\s*include/i.test(line);
    if (mayInclude && (m = INCLUDE_DIR.exec(line))) out.push({ kind: 'include-dir', path: absoluteTo(m[1]!, file) });
    else if (mayInclude && (m = INCLUDE.exec(line))) out.push({ kind: 'include', path: absoluteTo(m[1]!, file) });
    else if ((m = QUOTED.exec(line))) out.push({ kind: 'set', key: lower ? m[1]!.toLowerCase() : m[1]!, value: m[2]!.replace(/\\(.)/g, '$1').replace(/''/g, "'") });
    else if ((m = SIMPLE.exec(line))) out.push({ kind: 'set', key: lower ? m[1]!.toLowerCase() : m[1]!, value: m[2]! });
    else throw new ConfLineError(`invalid line in ${file}: ${line}`);
  }
  return out;
}

/** A relative include is relative to the including file's directory. */
const absoluteTo = (p: string, file: string) => (p.startsWith('/') ? p : `${file.replace(/\/[^/]*$/, '')}/${p}`);

/** Files include_dir reads, in the order it reads them: names ending in .conf, not hidden, byte order. */
export const includedConfFiles = (names: readonly string[]) => names.filter((n) => !n.startsWith('.') && n.endsWith('.conf')).sort(byteOrder);

/** start.conf: its first line that is not a comment; undefined for a mode postgresql-common refuses. */
export function parseStartConf(text: string | undefined): 'auto' | 'manual' | 'disabled' | undefined {
  if (text === undefined) return 'auto';
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) continue;
    return (/^(auto|manual|disabled)/.exec(line)?.[1] as 'auto' | 'manual' | 'disabled' | undefined) ?? undefined;
  }
  return 'auto';
}

/** The PID a pid file names (its first line, digits only), as PgCommon's read_pidfile. */
export function parsePidFile(text: string): number | undefined {
  const first = text.split('\n')[0] ?? '';
  const m = /^(\d+)\s*$/.exec(first);
  return m && Number(m[1]) ? Number(m[1]) : undefined;
}
