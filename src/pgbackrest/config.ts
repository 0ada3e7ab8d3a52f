// pgBackRest configuration: the per-cluster stanza file pgmam writes, and reading the user's own
// main config (which pgmam never edits) for repo1-path and stanza sections.
import { parse } from 'ini';

/** Debian ships /etc/pgbackrest.conf; pgBackRest reads it when /etc/pgbackrest/pgbackrest.conf is absent. */
export const MAIN_CONFIG_FILES = ['/etc/pgbackrest/pgbackrest.conf', '/etc/pgbackrest.conf'] as const;
export const DEFAULT_INCLUDE_PATH = '/etc/pgbackrest/conf.d';
export const FALLBACK_REPO_PATH = '/var/lib/pgbackrest';

export interface StanzaFileSettings {
  stanza: string;
  dataDir: string;
  port: number;
  socketDir: string;
  compressType: string;
  processMax: number;
  /** pgBackRest's io-timeout for archive-push alone (seconds): how soon a failing repository gives way to the others. */
  archiveIoTimeout: number;
  /** Who the backups are of (annotationLines): every backup of the stanza, by any command, carries them. */
  annotations: Annotations;
}

/** What each backup says of itself in a shared repository: the host it came from, the app, its role. */
export interface Annotations {
  host: string;
  app: string;
  role: string;
}

/**
 * pgBackRest's `annotation` option is a hash it also reads from configuration files: written into the
 * stanza file, every backup of the stanza carries them, whichever command (or a user by hand) takes it.
 */
export const annotationLines = (a: Annotations) => [`annotation=pgmam-host=${a.host}`, `annotation=pgmam-app=${a.app}`, `annotation=pgmam-role=${a.role}`];

/** Where archive-push keeps its queue (pgBackRest's default, created by Debian's package, postgres 0750). */
export const SPOOL_PATH = '/var/spool/pgbackrest';
/** A stanza's own part of the spool: its async archive-push status files (<segment>.ok / .error). */
export const spoolOutDir = (stanza: string) => `${SPOOL_PATH}/archive/${stanza}/out`;

/**
 * Asynchronous archiving: a WAL segment reaches every repository that answers, while one that fails
 * only gets an error for it (pgBackRest pushes to each repository on its own), so an S3 outage no longer
 * holds the local archive. The io-timeout of archive-push alone bounds how long a dead endpoint holds
 * each round (measured: ~17 s at 2 s, ~41 s at 5 s, over 2 minutes at the default 60 s).
 */
export const archiveLines = (stanza: string, ioTimeout: number, annotations: Annotations) => ({
  main: [...annotationLines(annotations), 'archive-async=y', `spool-path=${SPOOL_PATH}`],
  section: [`[${stanza}:archive-push]`, `io-timeout=${ioTimeout}`],
});

/** `repoLines`: every `repoN-…` line, the local repository (repo1) first. */
export function renderStanzaFile(s: StanzaFileSettings, repoLines: readonly string[]): string {
  // Everything in the stanza section: a [global] key repeated across files is fatal ([031]).
  // pg1-port and pg1-socket-path: without them pgBackRest talks to the 5432 cluster (#1390).
  const archive = archiveLines(s.stanza, s.archiveIoTimeout, s.annotations);
  return [
    '# Written by pgmam for this cluster only. Do not edit by hand.',
    `[${s.stanza}]`,
    `pg1-path=${s.dataDir}`,
    `pg1-port=${s.port}`,
    `pg1-socket-path=${s.socketDir}`,
    ...repoLines,
    `compress-type=${s.compressType}`,
    `process-max=${s.processMax}`,
    'start-fast=y',
    ...archive.main,
    '',
    ...archive.section,
    '',
  ].join('\n');
}

/** The local repository's lines: always repo1. */
export const localRepoLines = (repoPath: string, r: { full: number; fullType: string }) => [`repo1-path=${repoPath}`, `repo1-retention-full=${r.full}`, `repo1-retention-full-type=${r.fullType}`];

export interface MainConfig {
  file: string | undefined;
  globalRepoPath: string | undefined;
  sections: string[];
}

/** `texts` maps each candidate main config file to its text (undefined = absent), in pgBackRest's order. */
export function parseMainConfig(texts: ReadonlyArray<[string, string | undefined]>): MainConfig {
  const found = texts.find(([, t]) => t !== undefined);
  if (!found) return { file: undefined, globalRepoPath: undefined, sections: [] };
  const ini = parse(found[1]!) as Record<string, Record<string, unknown> | unknown>;
  const global = (ini['global'] ?? {}) as Record<string, unknown>;
  const repo = global['repo1-path'];
  return {
    file: found[0],
    globalRepoPath: typeof repo === 'string' ? repo : undefined,
    sections: Object.keys(ini).filter((k) => typeof ini[k] === 'object' && !k.startsWith('global')),
  };
}

/** Reads the stanza name and repo1-path back from a stanza file. */
export function parseStanzaFile(text: string): { stanza: string; repoPath: string | undefined; port: number | undefined; dataDir: string | undefined } | undefined {
  const ini = parse(text) as Record<string, unknown>;
  const [stanza, body] = Object.entries(ini).find(([, v]) => v !== null && typeof v === 'object') ?? [];
  if (!stanza || !body) return undefined;
  const b = body as Record<string, unknown>;
  const port = Number(b['pg1-port']);
  return {
    stanza,
    repoPath: typeof b['repo1-path'] === 'string' ? b['repo1-path'] : undefined,
    port: Number.isFinite(port) ? port : undefined,
    dataDir: typeof b['pg1-path'] === 'string' ? b['pg1-path'] : undefined,
  };
}

/** The stanza file with every `repoN-…` line replaced by `repoLines` (where the first stood); unchanged text when they already say so. */
export function withRepoLines(text: string, repoLines: readonly string[]): string {
  const lines = text.split('\n');
  const isRepo = (l: string) => /^\s*repo\d+-/.test(l);
  const first = lines.findIndex(isRepo);
  const at = first >= 0 ? first : lines.findIndex((l) => /^\[/.test(l)) + 1;
  const kept = lines.filter((l) => !isRepo(l));
  const before = lines.slice(0, at).filter((l) => !isRepo(l)).length;
  kept.splice(before, 0, ...repoLines);
  return kept.join('\n');
}

/**
 * The stanza file with its archiving and annotation lines as archiveLines says (asynchronous, spool,
 * archive-push's own io-timeout, who the backups are of), whatever an older pgmam wrote; unchanged text
 * when they already say so.
 */
export function withArchiveLines(text: string, stanza: string, ioTimeout: number, annotations: Annotations): string {
  const want = archiveLines(stanza, ioTimeout, annotations);
  const lines = text.replace(/\n+$/, '').split('\n');
  const out: string[] = [];
  let skipping = false;
  for (const l of lines) {
    if (/^\s*\[/.test(l)) skipping = /^\s*\[[^\]]*:archive-push\]/.test(l);
    if (skipping || /^\s*(archive-async|spool-path|annotation)\s*=/.test(l)) continue;
    out.push(l);
  }
  while (out.at(-1)?.trim() === '') out.pop();
  // The main section is the first: the archiving lines close it, archive-push's section follows.
  const next = out.findIndex((l, i) => i > out.findIndex((x) => /^\s*\[/.test(x)) && /^\s*\[/.test(l));
  const at = next < 0 ? out.length : next;
  out.splice(at, 0, ...want.main, '', ...want.section, '');
  const result = out.join('\n');
  return result.endsWith('\n') ? result : `${result}\n`;
}

/** pg1-path and pg1-port of a stanza file changed to `to`'s (pg1-socket-path the Debian socket directory); everything else kept. */
export function pointStanzaFile(text: string, to: { dataDir: string; port: number }, socketDir = '/var/run/postgresql'): string {
  return text.replace(/^pg1-path=.*$/m, `pg1-path=${to.dataDir}`).replace(/^pg1-port=.*$/m, `pg1-port=${to.port}`).replace(/^pg1-socket-path=.*$/m, `pg1-socket-path=${socketDir}`);
}
