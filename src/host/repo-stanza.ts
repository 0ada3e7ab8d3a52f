// What an added repository holds of one stanza, read with pgBackRest as that repository's own client
// (no stanza file needed): whether the stanza exists there, its backups and archive, and which host
// its newest backup says it came from. Hosts that share a repository share its stanza names.
import type { Context } from '../context.js';
import * as pgbr from '../pgbackrest/commands.js';
import { parseInfo, type StanzaInfo } from '../pgbackrest/info.js';
import { classifyProbe } from '../pgbackrest/probe.js';
import { probeEnv, repoOptions, type ProbeTarget } from '../pgbackrest/repo-options.js';
import type { Runner } from '../runner/types.js';
import { secretsOf, type RepoRecord } from '../state/repos.js';

export interface StanzaInRepo {
  repo: string;
  /** undefined: pgmam could not tell (problem says why). */
  exists: boolean | undefined;
  stanza: StanzaInfo | undefined;
  problem: string | undefined;
}

/** A probe that addresses an added repository as repo1 (root only: it reads the repository's secrets). */
export async function repoProbeTarget(ctx: Pick<Context, 'fs' | 'paths'>, repo: RepoRecord): Promise<ProbeTarget> {
  return { env: probeEnv(repoOptions(repo, await secretsOf(ctx.fs, ctx.paths.stateDir, repo))), asPostgres: repo.kind === 'tls' };
}

/** pgBackRest's info status 1: "missing stanza path" — the repository has nothing of that name. */
const MISSING_STANZA_PATH = 1;

/** Root only (the repository's secrets). Read-only. */
export async function readStanzaInRepo(ctx: Pick<Context, 'fs' | 'paths'>, runner: Runner, repo: RepoRecord, stanza: string): Promise<StanzaInRepo> {
  let env: ProbeTarget;
  try {
    env = await repoProbeTarget(ctx, repo);
  } catch (e) {
    return { repo: repo.name, exists: undefined, stanza: undefined, problem: e instanceof Error ? e.message : String(e) };
  }
  const r = await runner.run(pgbr.repoProbe(env, [`--stanza=${stanza}`, '--output=json', 'info']), { check: false });
  if (r.exitCode !== 0) return { repo: repo.name, exists: undefined, stanza: undefined, problem: `repository ${repo.name}: ${classifyProbe(r).detail ?? 'unreadable'}` };
  const s = parseInfo(r.stdout)[0];
  if (!s) return { repo: repo.name, exists: undefined, stanza: undefined, problem: `repository ${repo.name}: pgbackrest info listed no stanza ${stanza}` };
  return { repo: repo.name, exists: s.status.code !== MISSING_STANZA_PATH, stanza: s, problem: undefined };
}

/** Who the newest backup says it is of (pgmam's annotations): host, app, role. */
export function newestAnnotation(s: StanzaInfo | undefined): { host?: string; app?: string; role?: string } {
  const a = s?.backup.filter((b) => b.annotation).at(-1)?.annotation ?? {};
  return { host: a['pgmam-host'], app: a['pgmam-app'], role: a['pgmam-role'] };
}

/** How a stanza found in a shared repository is named in a refusal. */
export function describeStanzaIn(name: string, x: StanzaInRepo): string {
  const host = newestAnnotation(x.stanza).host;
  return `stanza ${name} exists in repository ${x.repo}${host ? ` (its newest backup is from host ${host})` : ''}: hosts sharing a repository share its stanza names`;
}
