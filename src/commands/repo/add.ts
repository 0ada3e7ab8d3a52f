// `pgmam repo add <name> --s3-endpoint …`: an S3 repository beside the local one. Every check runs
// before anything is written — the key file is root's alone, the endpoint answers over TLS with a
// certificate the CA file (or the system's store) verifies, the credentials list the bucket, the path
// takes a write — then pgmam records it in its own state. Secrets stay in files only root reads.
import { z } from 'zod';
import type { Context } from '../../context.js';
import { UsageError } from '../../errors.js';
import { runsAsRoot } from '../../guards/host.js';
import { NAME_PATTERN, parseName } from '../../names.js';
import { runFlagsSchema, type CommandModule, type PlanBody, type PlanEnv, type Recovery } from '../../plan/command.js';
import { fail, pass, required, type Guard, type Step } from '../../plan/types.js';
import * as pgbr from '../../pgbackrest/commands.js';
import { classifyProbe, type ProbeOutcome, type ProbeProblem } from '../../pgbackrest/probe.js';
import { probeEnv, s3Options } from '../../pgbackrest/repo-options.js';
import type { Journal } from '../../state/journal.js';
import { LOCAL_REPO, repoTarget, parseKeyFile, readRepos, repoCaPath, repoFiles, repoRecordPath, repoSecretsPath, reposDir, type RepoRecord, type RepoSecrets } from '../../state/repos.js';

export const repoAddOptionsSchema = runFlagsSchema.extend({
  name: z.string().regex(NAME_PATTERN),
  host: z.string(),
  port: z.number().int(),
  bucket: z.string(),
  region: z.string(),
  uriStyle: z.enum(['path', 'host']),
  keyFile: z.string(),
  caFile: z.string().optional(),
  path: z.string(),
  cipherPassFile: z.string().optional(),
  retentionFull: z.number().int().min(1).optional(),
  retentionFullType: z.enum(['count', 'time']).optional(),
  attachNew: z.boolean(),
  fullInterval: z.number().optional(),
  diffInterval: z.number().optional(),
});
export type RepoAddOptions = z.infer<typeof repoAddOptionsSchema>;

/** A file pgmam reads secrets from: root's alone (0600 or stricter), else refused. */
interface SecretFile {
  path: string;
  exists: boolean;
  private: boolean;
}

export interface RepoAddFacts {
  uid: number;
  taken: boolean;
  keyFile: SecretFile & { keys: { accessKey: string; secretKey: string } | undefined };
  caFile: { path: string; pem: string | undefined } | undefined;
  cipherPassFile: (SecretFile & { pass: string | undefined }) | undefined;
  /** undefined: not probed (an earlier check failed). */
  list: ProbeOutcome | undefined;
  write: ProbeOutcome | undefined;
  now: string;
}

async function secretFile(ctx: Context, path: string): Promise<SecretFile & { text: string | undefined }> {
  const st = await ctx.fs.stat(path);
  const priv = st !== undefined && st.uid === 0 && (st.mode & 0o077) === 0;
  // Read only what is root's alone: a secret others can read is refused, never used.
  return { path, exists: st !== undefined, private: priv, text: priv ? await ctx.fs.readText(path) : undefined };
}

/** The record as it will be written (the CA at pgmam's copy), and the secrets. */
function recordOf(o: RepoAddOptions, caCopy: string | null, encrypted: boolean, env: Pick<PlanEnv, 'config'>, now: string): RepoRecord {
  return {
    format: 1,
    name: o.name,
    kind: 's3',
    s3: { host: o.host, port: o.port, bucket: o.bucket, region: o.region, uriStyle: o.uriStyle },
    path: o.path,
    caFile: caCopy,
    certFile: null,
    keyFile: null,
    encrypted,
    retention: { full: o.retentionFull ?? env.config['retention-full'], fullType: o.retentionFullType ?? env.config['retention-full-type'] },
    attachNew: o.attachNew,
    fullInterval: o.fullInterval ?? null,
    diffInterval: o.diffInterval ?? null,
    createdAt: now,
  };
}

export async function gatherRepoAdd(ctx: Context, o: RepoAddOptions): Promise<RepoAddFacts> {
  const f: RepoAddFacts = { uid: ctx.host.uid, taken: false, keyFile: { path: o.keyFile, exists: false, private: false, keys: undefined }, caFile: undefined, cipherPassFile: undefined, list: undefined, write: undefined, now: ctx.clock.now().toISOString() };
  if (ctx.host.uid !== 0) return f;
  const { repos } = await readRepos(ctx.fs, ctx.paths.stateDir);
  f.taken = repos.some((r) => r.name === o.name) || (await ctx.fs.exists(repoRecordPath(ctx.paths.stateDir, o.name)));
  const key = await secretFile(ctx, o.keyFile);
  f.keyFile = { path: key.path, exists: key.exists, private: key.private, keys: key.text === undefined ? undefined : parseKeyFile(key.text) };
  if (o.caFile) {
    const pem = await ctx.fs.readText(o.caFile).catch(() => undefined);
    f.caFile = { path: o.caFile, pem: pem?.includes('-----BEGIN CERTIFICATE-----') ? pem : undefined };
  }
  if (o.cipherPassFile) {
    const c = await secretFile(ctx, o.cipherPassFile);
    f.cipherPassFile = { path: c.path, exists: c.exists, private: c.private, pass: c.text?.trim() || undefined };
  }
  if (!f.keyFile.keys || (f.caFile && !f.caFile.pem) || (f.cipherPassFile && !f.cipherPassFile.pass)) return f;
  // The probes address the repository exactly as pgBackRest will (its TLS checks, path style, region).
  const env = { env: probeEnv(s3Options(recordOf(o, o.caFile ?? null, false, ctx, f.now), { ...f.keyFile.keys, cipherPass: null })), asPostgres: false };
  f.list = classifyProbe(await ctx.runner.run(pgbr.repoProbe(env, ['repo-ls', '--output=json']), { check: false }));
  if (!f.list.ok) return f;
  const probe = `.pgmam-probe-${ctx.host.pid}-${ctx.clock.now().getTime()}`;
  f.write = classifyProbe(await ctx.runner.run(pgbr.repoProbe(env, ['repo-put', probe], 'pgmam write probe\n'), { check: false }));
  if (f.write.ok) await ctx.runner.run(pgbr.repoProbe(env, ['repo-rm', probe]), { check: false });
  return f;
}

const probeGuard = (id: string, problem: ProbeProblem | ProbeProblem[], o: RepoAddOptions, p: ProbeOutcome | undefined, what: (d: string) => string, hint: string): Guard => ({
  id,
  check: () => (p && !p.ok && [problem].flat().includes(p.problem!) ? fail(what(p.detail ?? ''), hint) : pass),
});

export function repoAddGuards(f: RepoAddFacts, o: RepoAddOptions): Guard[] {
  const at = `${o.host}:${o.port}`;
  const secret = (id: string, s: SecretFile | undefined, what: string): Guard => ({
    id,
    check: () =>
      !s || f.uid !== 0
        ? pass
        : !s.exists
          ? fail(`${what} ${s.path} does not exist`)
          : !s.private
            ? fail(`${what} ${s.path} can be read by users other than root`, `chown root:root ${s.path} && chmod 0600 ${s.path}`)
            : pass,
  });
  return [
    runsAsRoot(f.uid, 'add a repository'),
    { id: 'repo-name-is-free', check: () => (f.taken ? fail(`repository ${o.name} exists`, 'see pgmam repo list') : pass) },
    secret('key-file-is-private', f.keyFile, 'the key file'),
    { id: 'key-file-has-keys', check: () => (f.uid !== 0 || !f.keyFile.private || f.keyFile.keys ? pass : fail(`the key file ${o.keyFile} has no "access-key = …" and "secret-key = …" lines`)) },
    { id: 'ca-file-is-a-certificate', check: () => (!f.caFile || f.caFile.pem ? pass : fail(`the CA file ${f.caFile.path} is missing or holds no PEM certificate`)) },
    secret('cipher-pass-file-is-private', f.cipherPassFile, 'the cipher pass file'),
    { id: 'cipher-pass-is-set', check: () => (!f.cipherPassFile?.private || f.cipherPassFile.pass ? pass : fail(`the cipher pass file ${f.cipherPassFile.path} is empty`)) },
    probeGuard('endpoint-answers', 'unreachable', o, f.list, (d) => `the S3 endpoint ${at} does not answer over TLS: ${d}`, 'check --s3-endpoint, the port and the network'),
    probeGuard('certificate-is-trusted', 'untrusted', o, f.list, (d) => `the certificate of ${at} is not verified ${o.caFile ? `by ${o.caFile}` : "by the system's CA store"}: ${d}`, o.caFile ? 'give the CA that signed the endpoint’s certificate (--ca-file); its names must include the endpoint host' : 'give the CA that signed it with --ca-file'),
    probeGuard('credentials-are-accepted', 'refused', o, f.list, (d) => `the endpoint refused the key of ${o.keyFile} for bucket ${o.bucket}: ${d}`, 'check the access and secret key, and that they may list the bucket'),
    probeGuard('bucket-exists', 'no-bucket', o, f.list, (d) => `bucket ${o.bucket} does not exist at ${at}: ${d}`, 'create it first (pgBackRest does not create buckets)'),
    probeGuard('repo-is-listable', 'other', o, f.list, (d) => `cannot list ${o.path} in bucket ${o.bucket}: ${d}`, 'see pgBackRest’s message'),
    { id: 'path-is-writable', check: () => (f.write && !f.write.ok ? fail(`cannot write into ${o.path} in bucket ${o.bucket}: ${f.write.detail}`, 'the key needs write access to the bucket') : pass) },
  ];
}

export const repoAddJournalSchema = z.object({ name: z.string() });
export type RepoAddJournal = z.infer<typeof repoAddJournalSchema>;

/** Removes what an unfinished add wrote (pgmam's own files, nothing a user made). */
const removeRepoFiles = (stateDir: string, name: string): Step => ({
  id: 'remove-repo-files',
  title: `remove pgmam's files of repository ${name}`,
  effect: 'destroy',
  run: async (c) => {
    for (const file of repoFiles(stateDir, name)) await c.fs.rm(file);
  },
  show: [`rm -f ${repoFiles(stateDir, name).join(' ')}`],
});

export function planRepoAdd(f: RepoAddFacts, o: RepoAddOptions, env: PlanEnv): PlanBody {
  const dir = reposDir(env.paths.stateDir);
  const keys = required(f.keyFile.keys, 'the key file’s keys');
  const secrets: RepoSecrets = { ...keys, cipherPass: f.cipherPassFile?.pass ?? null };
  const caCopy = f.caFile ? repoCaPath(env.paths.stateDir, o.name) : null;
  const record = recordOf(o, caCopy, secrets.cipherPass !== null, env, f.now);
  const secretsFile = repoSecretsPath(env.paths.stateDir, o.name);
  const steps: Step[] = [
    {
      id: 'write-secrets',
      title: `keep the key${secrets.cipherPass ? ' and the cipher pass' : ''} of repository ${o.name} where only root reads them`,
      effect: 'write',
      run: async (c) => {
        await c.fs.mkdirp(dir, { mode: 0o755 });
        await c.fs.writeFileAtomic(secretsFile, `${JSON.stringify(secrets)}\n`, { mode: 0o600, owner: { uid: 0, gid: 0 } });
      },
      show: [`write ${secretsFile} (0600 root): the keys of ${o.keyFile}${o.cipherPassFile ? ` and the pass of ${o.cipherPassFile}` : ''}`],
      undo: { title: `remove ${secretsFile}`, run: (c) => c.fs.rm(secretsFile) },
    },
  ];
  if (f.caFile && caCopy) {
    const pem = f.caFile.pem!;
    steps.push({
      id: 'copy-ca',
      title: `copy the CA certificate ${f.caFile.path} to ${caCopy}, where postgres reads it`,
      effect: 'write',
      run: (c) => c.fs.writeFileAtomic(caCopy, pem, { mode: 0o644, owner: { uid: 0, gid: 0 } }),
      show: [`write ${caCopy} (0644 root)`],
      undo: { title: `remove ${caCopy}`, run: (c) => c.fs.rm(caCopy) },
    });
  }
  const recordFile = repoRecordPath(env.paths.stateDir, o.name);
  steps.push({
    id: 'write-repo-record',
    title: `record repository ${o.name} (s3://${o.bucket}${o.path} at ${o.host}:${o.port})`,
    effect: 'write',
    run: (c) => c.fs.writeFileAtomic(recordFile, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o644, owner: { uid: 0, gid: 0 } }),
    show: [`write ${recordFile} (0644 root):`, ...JSON.stringify(record, null, 2).split('\n').map((l) => `  | ${l}`)],
  });
  return { target: repoTarget(o.name), steps, journal: { rerun: `pgmam repo add ${o.name} …`, data: { name: o.name } satisfies RepoAddJournal } };
}

/** Repository commands journal and lock under a name no cluster can have. */
export { repoTarget };

/** An add that wrote its record is complete; one that had not is rolled back (pgmam's own files only). */
export async function recoverRepoAdd(ctx: Context, j: Journal, d: RepoAddJournal): Promise<Recovery> {
  if (await ctx.fs.exists(repoRecordPath(ctx.paths.stateDir, d.name))) return { way: 'finished', steps: [], finished: `repository ${d.name} was added\n` };
  return { way: 'rolled-back', steps: [removeRepoFiles(ctx.paths.stateDir, d.name)] };
}

/** HOST[:PORT] or https://HOST[:PORT]; http:// is refused: pgBackRest talks to S3 and to its servers over TLS only. */
export function parseEndpoint(v: string | undefined, defaultPort = 443, flag = '--s3-endpoint'): { host: string; port: number } {
  const raw = (v ?? '').trim();
  if (/^http:\/\//i.test(raw)) throw new UsageError(`${flag} ${raw}: plain http is refused; pgBackRest talks over TLS (https) only`);
  const m = /^(?:https:\/\/)?([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\])(?::(\d{1,5}))?\/?$/.exec(raw);
  const port = m?.[2] === undefined ? defaultPort : Number(m[2]);
  if (!m || port < 1 || port > 65535) throw new UsageError(`${flag} "${raw}" is not HOST[:PORT]`);
  return { host: m[1]!, port };
}

export const repoNameArg = z
  .string()
  .optional()
  .transform((v) => {
    const n = parseName(v, 'repository name');
    if (n === LOCAL_REPO) throw new UsageError(`"${LOCAL_REPO}" is the local repository's name`);
    return n;
  });

export const repoAddCommand: CommandModule<RepoAddOptions, RepoAddFacts, RepoAddJournal> = {
  spec: {
    name: 'repo add',
    summary: 'add an S3 repository beside the local one (checked before anything is written)',
    options: repoAddOptionsSchema,
    examples: ['pgmam repo add offsite --s3-endpoint s3.example.net --s3-bucket pgbackrest --s3-key-file /root/offsite.key --cipher-pass-file /root/offsite.pass'],
    target: (o) => repoTarget(o.name),
    destructive: false,
    journal: repoAddJournalSchema,
  },
  gather: gatherRepoAdd,
  guards: repoAddGuards,
  plan: planRepoAdd,
  recover: recoverRepoAdd,
  report: async (ctx, o) => ctx.io.out(`added repository ${o.name} (s3://${o.bucket}${o.path} at ${o.host}:${o.port})${o.attachNew ? '; new clusters are attached to it' : ''}\n`),
};
