// `pgmam repo add <name> --tls-host H[:PORT] --ca-file F --cert-file F --key-file F`: a repository on
// another host, reached through the pgBackRest server that `pgmam repo serve` runs there. Every check runs
// before anything is written — the key is root's alone, the server answers, its certificate is verified
// by the CA, it lets this host's certificate in, the path takes a write — then pgmam keeps copies of the
// CA, certificate and key (the key root:postgres 0640, as pgBackRest takes it from postgres) and records it.
import { z } from 'zod';
import type { Context } from '../../context.js';
import { runsAsRoot } from '../../guards/host.js';
import { NAME_PATTERN } from '../../names.js';
import { type CommandModule, type PlanBody, type PlanEnv, runFlagsSchema } from '../../plan/command.js';
import { fail, pass, required, type Guard, type Step } from '../../plan/types.js';
import { postgresOwner } from '../../host/facts.js';
import { NO_TLS_FILES, readTlsFiles, type TlsFiles } from '../../host/tls-files.js';
import { tlsFilesAreUsable } from '../../guards/tls-files.js';
import * as pgbr from '../../pgbackrest/commands.js';
import { classifyProbe, type ProbeOutcome } from '../../pgbackrest/probe.js';
import { probeEnv, tlsOptions } from '../../pgbackrest/repo-options.js';
import { readRepos, repoCaPath, repoCertPath, repoKeyPath, repoRecordPath, repoTarget, reposDir, repoWhere, type RepoRecord } from '../../state/repos.js';
import { recoverRepoAdd, repoAddJournalSchema, type RepoAddJournal } from './add.js';

/** Where `repo serve` keeps its server's configuration under the default state directory: what a client's remote side loads. */
export const DEFAULT_HOST_CONFIG = '/var/lib/pgmam/serve/pgbackrest-server.conf';
/** pgBackRest's default repository path, which pgmam's local repository also uses by default. */
export const DEFAULT_TLS_REPO_PATH = '/var/lib/pgbackrest';
/** pgBackRest's default tls-server-port. */
export const DEFAULT_TLS_PORT = 8432;

export const repoAddTlsOptionsSchema = runFlagsSchema.extend({
  name: z.string().regex(NAME_PATTERN),
  tlsHost: z.string(),
  tlsPort: z.number().int(),
  hostConfig: z.string(),
  caFile: z.string(),
  certFile: z.string(),
  keyFile: z.string(),
  path: z.string(),
  attachNew: z.boolean(),
});
export type RepoAddTlsOptions = z.infer<typeof repoAddTlsOptionsSchema>;

export interface RepoAddTlsFacts extends TlsFiles {
  uid: number;
  taken: boolean;
  /** undefined: not probed (an earlier check failed). */
  list: ProbeOutcome | undefined;
  write: ProbeOutcome | undefined;
  /** The postgres user's ids: its group reads pgmam's copy of the key. */
  postgres: { uid: number; gid: number } | undefined;
  now: string;
}

/** The record as it will be written: the certificates at pgmam's copies. */
export function tlsRecordOf(o: RepoAddTlsOptions, files: { ca: string; cert: string; key: string }, env: Pick<PlanEnv, 'config'>, now: string): RepoRecord {
  return {
    format: 1,
    name: o.name,
    kind: 'tls',
    tls: { host: o.tlsHost, port: o.tlsPort, hostConfig: o.hostConfig },
    path: o.path,
    caFile: files.ca,
    certFile: files.cert,
    keyFile: files.key,
    encrypted: false,
    // Informational: expire runs on the repository host, with its retention (repo backup-clients there).
    retention: { full: env.config['retention-full'], fullType: env.config['retention-full-type'] },
    attachNew: o.attachNew,
    fullInterval: null,
    diffInterval: null,
    createdAt: now,
  };
}

export async function gatherRepoAddTls(ctx: Context, o: RepoAddTlsOptions): Promise<RepoAddTlsFacts> {
  const f: RepoAddTlsFacts = { uid: ctx.host.uid, taken: false, ...NO_TLS_FILES, list: undefined, write: undefined, postgres: undefined, now: ctx.clock.now().toISOString() };
  if (ctx.host.uid !== 0) return f;
  f.postgres = await postgresOwner(ctx.fs);
  const { repos } = await readRepos(ctx.fs, ctx.paths.stateDir);
  f.taken = repos.some((r) => r.name === o.name) || (await ctx.fs.exists(repoRecordPath(ctx.paths.stateDir, o.name)));
  Object.assign(f, await readTlsFiles(ctx.fs, o));
  if (!f.ca || !f.cert || !f.key.pem) return f;
  // As root with the user's own files (a root key at 0600 is what pgBackRest takes from root).
  const target = { env: probeEnv(tlsOptions(tlsRecordOf(o, { ca: o.caFile, cert: o.certFile, key: o.keyFile }, ctx, f.now))), asPostgres: false };
  f.list = classifyProbe(await ctx.runner.run(pgbr.repoProbe(target, ['repo-ls', '--output=json']), { check: false }));
  if (!f.list.ok) return f;
  const probe = `.pgmam-probe-${ctx.host.pid}-${ctx.clock.now().getTime()}`;
  f.write = classifyProbe(await ctx.runner.run(pgbr.repoProbe(target, ['repo-put', probe], 'pgmam write probe\n'), { check: false }));
  if (f.write.ok) await ctx.runner.run(pgbr.repoProbe(target, ['repo-rm', probe]), { check: false });
  return f;
}

export function repoAddTlsGuards(f: RepoAddTlsFacts, o: RepoAddTlsOptions): Guard[] {
  const at = `${o.tlsHost}:${o.tlsPort}`;
  const probe = (id: string, problem: string, what: (d: string) => string, hint: string): Guard => ({
    id,
    check: () => (f.list && !f.list.ok && f.list.problem === problem ? fail(what(f.list.detail ?? ''), hint) : pass),
  });
  const root = f.uid === 0;
  return [
    runsAsRoot(f.uid, 'add a repository'),
    { id: 'postgres-user-exists', check: () => (!root || f.postgres ? pass : fail('the host has no postgres user (is postgresql-common installed?)')) },
    { id: 'repo-name-is-free', check: () => (f.taken ? fail(`repository ${o.name} exists`, 'see pgmam repo list') : pass) },
    ...tlsFilesAreUsable(f, o, root),
    probe('server-answers', 'unreachable', (d) => `the pgBackRest server at ${at} does not answer: ${d}`, `is pgmam repo serve running there, on port ${o.tlsPort}?`),
    probe('certificate-is-trusted', 'untrusted', (d) => `the certificate of ${at} is not verified by ${o.caFile}: ${d}`, 'give the CA that signed the repository host’s certificate; its names must include the address given to --tls-host'),
    probe('host-lets-this-host-in', 'refused', (d) => `the server at ${at} refuses this host’s certificate ${o.certFile}: ${d}`, 'on the repository host: pgmam repo serve … --allow <the CN of this certificate>'),
    probe('repo-is-listable', 'other', (d) => `cannot list ${o.path} on ${at}: ${d}`, `--path must be the repository host’s repository, --host-config its server’s configuration (default ${DEFAULT_HOST_CONFIG})`),
    { id: 'path-is-writable', check: () => (f.write && !f.write.ok ? fail(`cannot write into ${o.path} on ${at}: ${f.write.detail}`) : pass) },
  ];
}

export function planRepoAddTls(f: RepoAddTlsFacts, o: RepoAddTlsOptions, env: PlanEnv): PlanBody {
  const dir = reposDir(env.paths.stateDir);
  const files = { ca: repoCaPath(env.paths.stateDir, o.name), cert: repoCertPath(env.paths.stateDir, o.name), key: repoKeyPath(env.paths.stateDir, o.name) };
  const record = tlsRecordOf(o, files, env, f.now);
  const copy = (id: string, what: string, from: string, to: string, pem: string | undefined, mode: number, gid: 'root' | 'postgres'): Step => ({
    id,
    title: `copy ${what} ${from} to ${to}`,
    effect: 'write',
    run: async (c) => {
      await c.fs.mkdirp(dir, { mode: 0o755 });
      const group = gid === 'root' ? 0 : required(f.postgres, 'the postgres user').gid;
      await c.fs.writeFileAtomic(to, pem ?? '', { mode, owner: { uid: 0, gid: group } });
    },
    show: [`write ${to} (${mode.toString(8).padStart(4, '0')} root:${gid})`],
    undo: { title: `remove ${to}`, run: (c) => c.fs.rm(to) },
  });
  const recordFile = repoRecordPath(env.paths.stateDir, o.name);
  const steps: Step[] = [
    copy('copy-ca', 'the CA certificate', o.caFile, files.ca, f.ca, 0o644, 'root'),
    copy('copy-cert', 'this host’s certificate', o.certFile, files.cert, f.cert, 0o644, 'root'),
    // root-owned and group-readable: pgBackRest takes such a key from postgres (archive-push, restore) and postgres cannot change it.
    copy('copy-key', 'this host’s key', o.keyFile, files.key, f.key.pem, 0o640, 'postgres'),
    {
      id: 'write-repo-record',
      title: `record repository ${o.name} (${repoWhere(record)})`,
      effect: 'write',
      run: (c) => c.fs.writeFileAtomic(recordFile, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o644, owner: { uid: 0, gid: 0 } }),
      show: [`write ${recordFile} (0644 root):`, ...JSON.stringify(record, null, 2).split('\n').map((l) => `  | ${l}`)],
    },
  ];
  return { target: repoTarget(o.name), steps, journal: { rerun: `pgmam repo add ${o.name} --tls-host …`, data: { name: o.name } satisfies RepoAddJournal } };
}

export const repoAddTlsCommand: CommandModule<RepoAddTlsOptions, RepoAddTlsFacts, RepoAddJournal> = {
  spec: {
    name: 'repo add',
    summary: 'add a repository on another host, through its pgBackRest server (checked before anything is written)',
    options: repoAddTlsOptionsSchema,
    examples: ['pgmam repo add vault --tls-host vault.example.net --ca-file /root/tls/ca.crt --cert-file /root/tls/app1.crt --key-file /root/tls/app1.key'],
    target: (o) => repoTarget(o.name),
    destructive: false,
    journal: repoAddJournalSchema,
  },
  gather: gatherRepoAddTls,
  guards: repoAddTlsGuards,
  plan: planRepoAddTls,
  recover: recoverRepoAdd,
  report: async (ctx, o) => ctx.io.out(`added repository ${o.name} (${o.path} on ${o.tlsHost}:${o.tlsPort}, through its pgBackRest server)${o.attachNew ? '; new clusters are attached to it' : ''}; its backups are taken on that host: pgmam repo backup-clients there\n`),
};
