// A managed cluster's stanza file says which repositories its stanza has: the local one as repo1 and
// each attached repository at the index its pgmam record gives. Rendered from pgmam's state (rule 4:
// one source of truth), its secrets read only when the file is written, never shown.
import type { Context } from '../context.js';
import type { Retention } from '../config/schema.js';
import { localRepoLines, parseStanzaFile, pointStanzaFile, withArchiveLines, withRepoLines } from '../pgbackrest/config.js';
import { repoLines, repoOptions } from '../pgbackrest/repo-options.js';
import type { Step } from '../plan/types.js';
import { readRecord } from '../state/store.js';
import { readRepos, secretsOf, type RepoRecord } from '../state/repos.js';

export interface Attachment {
  name: string;
  index: number;
  /** A suspended repository is out of the stanza file until backup puts it back. */
  suspended?: unknown;
}

const HIDDEN = { accessKey: '[redacted]', secretKey: '[redacted]', cipherPass: '[redacted]' };

/** Every repoN line of a stanza, secrets included (for the file), or `[redacted]` (for --dry-run and logs). */
export async function stanzaRepoLines(ctx: Pick<Context, 'fs' | 'paths'>, local: { path: string; retention: Retention }, attached: readonly Attachment[], show = false): Promise<string[]> {
  const { repos } = await readRepos(ctx.fs, ctx.paths.stateDir);
  const lines = localRepoLines(local.path, local.retention);
  for (const a of attached.filter((x) => !x.suspended).sort((x, y) => x.index - y.index)) {
    const repo = repos.find((r) => r.name === a.name);
    if (!repo) throw new Error(`repository ${a.name} (repo${a.index} of this stanza) is not among pgmam's repositories`);
    lines.push(...repoLines(a.index, repoOptions(repo, show ? HIDDEN : await secretsOf(ctx.fs, ctx.paths.stateDir, repo))));
  }
  return lines;
}

/** What --dry-run shows of an attached repository's lines: the planner knows the records, not the secrets. */
export const shownRepoLines = (attached: ReadonlyArray<{ index: number; repo: RepoRecord }>) => attached.flatMap((a) => repoLines(a.index, repoOptions(a.repo, HIDDEN)));

/**
 * One retention and one set of repositories (rule 4): the stanza file's repoN lines say what pgmam's
 * configuration and state say, so a backup taken by any command — or by hand — expires the same way
 * and reaches the same repositories. Writes only when it says otherwise.
 */
export const alignStanzaFileStep = (stanzaFile: string, name: string, retention: Retention): Step => ({
  id: 'align-retention',
  title: `keep ${stanzaFile}'s repositories and retention as pgmam's configuration and state say (repo1-retention-full=${retention.full}, repo1-retention-full-type=${retention.fullType})`,
  effect: 'write',
  run: async (ctx) => {
    const text = await ctx.fs.readText(stanzaFile);
    if (text === undefined) throw new Error(`${stanzaFile} is missing`);
    const record = await readRecord(ctx.fs, ctx.paths.clustersDir, name);
    const path = record?.repoPath ?? parseStanzaFile(text)?.repoPath;
    if (!path) throw new Error(`${stanzaFile} names no repo1-path and pgmam has no record of ${name}`);
    const stanza = record?.stanza ?? parseStanzaFile(text)?.stanza ?? name;
    const annotations = { host: ctx.host.name, app: record?.stanza ?? name, role: record?.role ?? 'app' };
    const aligned = withArchiveLines(withRepoLines(text, await stanzaRepoLines(ctx, { path, retention }, record?.repos ?? [])), stanza, ctx.config['archive-io-timeout'], annotations);
    if (aligned === text) return;
    // root:postgres 0640 from here on, whoever owned it before (older pgmam wrote it as postgres's).
    const st = await ctx.fs.stat(stanzaFile);
    await ctx.fs.writeFileAtomic(stanzaFile, aligned, { mode: 0o640, owner: { uid: 0, gid: st?.gid ?? 0 } });
  },
  show: [`set the repoN lines of ${stanzaFile} to the configured retention and the repositories pgmam's record of ${name} names, its archiving to asynchronous and its backups' annotations (host, app, role), where it says otherwise`],
});

/** The stanza file's pg1-path and pg1-port set to `to` (a promoted replica, a new port), owner and mode kept. */
export const pointStanzaFileStep = (stanzaFile: string, to: { dataDir: string; port: number }, title: string): Step => ({
  id: 'point-stanza-file',
  title,
  effect: 'write',
  run: async (ctx) => {
    const text = await ctx.fs.readText(stanzaFile);
    if (text === undefined) throw new Error(`${stanzaFile} is missing`);
    const st = await ctx.fs.stat(stanzaFile);
    await ctx.fs.writeFileAtomic(stanzaFile, pointStanzaFile(text, to), { mode: 0o640, owner: st ? { uid: st.uid, gid: st.gid } : undefined });
  },
  show: [`in ${stanzaFile}: pg1-path=${to.dataDir}, pg1-port=${to.port}`],
});
