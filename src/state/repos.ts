// pgmam's repositories: one record per repository under <state-dir>/repos/ (root-owned, no secrets),
// its secrets beside it in a file only root reads, and its CA certificate copied in for postgres to
// read. The local repository (`local`, the configuration's repo-path) has no record: it is always there.
import { z } from 'zod';
import type { HostFs } from '../host-fs.js';

export const LOCAL_REPO = 'local';
/** pgBackRest 2.45 takes up to four repositories per stanza: repo1 is always the local one. */
export const MAX_REPO_INDEX = 4;

export const retentionSchema = z.object({ full: z.number().int().min(1), fullType: z.enum(['count', 'time']) });

export const repoSchema = z.object({
  format: z.literal(1),
  name: z.string(),
  /** s3: an object store; tls: a posix repository on another host, through its pgBackRest server (repo serve there). */
  kind: z.enum(['s3', 'tls']).default('s3'),
  s3: z.object({ host: z.string(), port: z.number().int(), bucket: z.string(), region: z.string(), uriStyle: z.enum(['path', 'host']) }).optional(),
  /** The repository host: its address and port, and its server's configuration file there (what the remote side loads). */
  tls: z.object({ host: z.string(), port: z.number().int(), hostConfig: z.string() }).optional(),
  /** The repository's path inside the bucket, or on the repository host. */
  path: z.string(),
  /** pgmam's copy of the CA certificate (readable by postgres); null: the system's store. */
  caFile: z.string().nullable(),
  /** tls: pgmam's copies of this host's client certificate and key (root:postgres 0640, as pgBackRest accepts a key read by postgres). */
  certFile: z.string().nullable().default(null),
  keyFile: z.string().nullable().default(null),
  encrypted: z.boolean(),
  retention: retentionSchema,
  /** New clusters (initcluster, branch create, adopt) are attached to it. */
  attachNew: z.boolean(),
  /** backup --type auto into it: its own tiers (seconds); null: the configuration's full-interval and diff-interval. */
  fullInterval: z.number().nullable().default(null),
  diffInterval: z.number().nullable().default(null),
  createdAt: z.string(),
});
export type RepoRecord = z.infer<typeof repoSchema>;

export const repoSecretsSchema = z.object({ accessKey: z.string(), secretKey: z.string(), cipherPass: z.string().nullable() });
export type RepoSecrets = z.infer<typeof repoSecretsSchema>;

/** The lock a repository's record takes (repo add, remove, attach, recover): a name no cluster can have. */
export const repoTarget = (name: string) => `_repo_${name}`;

export const reposDir = (stateDir: string) => `${stateDir}/repos`;
export const repoRecordPath = (stateDir: string, name: string) => `${reposDir(stateDir)}/${name}.json`;
export const repoSecretsPath = (stateDir: string, name: string) => `${reposDir(stateDir)}/${name}.secrets`;
export const repoCaPath = (stateDir: string, name: string) => `${reposDir(stateDir)}/${name}.ca.crt`;
export const repoCertPath = (stateDir: string, name: string) => `${reposDir(stateDir)}/${name}.crt`;
export const repoKeyPath = (stateDir: string, name: string) => `${reposDir(stateDir)}/${name}.key`;
/** Every file pgmam keeps of a repository (remove takes them all). */
export const repoFiles = (stateDir: string, name: string) => [repoRecordPath(stateDir, name), repoSecretsPath(stateDir, name), repoCaPath(stateDir, name), repoCertPath(stateDir, name), repoKeyPath(stateDir, name)];

/** Where a repository is, in words (list, reports). */
export const repoWhere = (r: RepoRecord) => (r.kind === 'tls' && r.tls ? `${r.path} on ${r.tls.host}:${r.tls.port} (pgBackRest server)` : r.s3 ? `s3://${r.s3.bucket}${r.path} at ${r.s3.host}:${r.s3.port}` : r.path);

export async function readRepos(fs: HostFs, stateDir: string): Promise<{ repos: RepoRecord[]; unreadable: string[] }> {
  const repos: RepoRecord[] = [];
  const unreadable: string[] = [];
  const names = (await fs.readdir(reposDir(stateDir)).catch(() => [] as string[])).filter((f) => f.endsWith('.json'));
  for (const f of names.sort()) {
    try {
      const text = await fs.readText(`${reposDir(stateDir)}/${f}`);
      if (text !== undefined) repos.push(repoSchema.parse(JSON.parse(text)));
    } catch {
      unreadable.push(`${reposDir(stateDir)}/${f}`);
    }
  }
  return { repos, unreadable };
}

/** A repository's secrets where it has any (an S3 one); a TLS repository's key is a file of its own. */
export async function secretsOf(fs: HostFs, stateDir: string, r: RepoRecord): Promise<RepoSecrets | undefined> {
  return r.kind === 's3' ? readRepoSecrets(fs, stateDir, r.name) : undefined;
}

/** Only root reads them; a missing or broken file is an error that names the file, never its content. */
export async function readRepoSecrets(fs: HostFs, stateDir: string, name: string): Promise<RepoSecrets> {
  const file = repoSecretsPath(stateDir, name);
  const text = await fs.readText(file);
  if (text === undefined) throw new Error(`the secrets of repository ${name} (${file}) are missing`);
  try {
    return repoSecretsSchema.parse(JSON.parse(text));
  } catch {
    throw new Error(`the secrets of repository ${name} (${file}) cannot be read`);
  }
}

/** A key file as `repo add --s3-key-file` takes it: `access-key = …` and `secret-key = …` lines. */
export function parseKeyFile(text: string): { accessKey: string; secretKey: string } | undefined {
  const get = (k: string) =>
    text
      .split('\n')
      .map((l) => l.split('=').map((x) => x.trim()))
      .find(([key, value]) => key === k && value)?.[1];
  const accessKey = get('access-key');
  const secretKey = get('secret-key');
  return accessKey && secretKey ? { accessKey, secretKey } : undefined;
}
