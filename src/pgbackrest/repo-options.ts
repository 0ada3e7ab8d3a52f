// A repository as pgBackRest options: the lines of a stanza file for one `repoN`, and the environment
// of a probe that addresses it as repo1. Secrets go only into those (a root:postgres 0640 stanza file,
// a child's environment), never into argv.
import type { RepoRecord, RepoSecrets } from '../state/repos.js';

export type RepoOption = [key: string, value: string];

/** The options of an S3 repository, unprefixed ('type', 's3-bucket', …); secrets included. */
export function s3Options(r: RepoRecord, s: RepoSecrets): RepoOption[] {
  if (!r.s3) throw new Error(`internal: repository ${r.name} is not an S3 repository`);
  const o: RepoOption[] = [
    ['type', 's3'],
    ['path', r.path],
    ['s3-bucket', r.s3.bucket],
    ['s3-endpoint', r.s3.host],
    ['storage-port', String(r.s3.port)],
    ['s3-region', r.s3.region],
    ['s3-uri-style', r.s3.uriStyle],
  ];
  if (r.caFile) o.push(['storage-ca-file', r.caFile]);
  // One object per small file costs a request each: bundling keeps an S3 backup near a local one.
  o.push(['bundle', 'y']);
  o.push(['retention-full', String(r.retention.full)], ['retention-full-type', r.retention.fullType]);
  if (r.encrypted && s.cipherPass) o.push(['cipher-type', 'aes-256-cbc'], ['cipher-pass', s.cipherPass]);
  o.push(['s3-key', s.accessKey], ['s3-key-secret', s.secretKey]);
  return o;
}

/**
 * The options of a repository on another host, reached through its pgBackRest server: the path is the
 * repository's there (pgBackRest's remote takes it from the client), and the remote side loads the
 * server's own configuration file (host-config). No retention: expire runs only where the repository is
 * local, so the repository host's retention applies to every backup in it.
 */
export function tlsOptions(r: RepoRecord): RepoOption[] {
  if (!r.tls || !r.caFile || !r.certFile || !r.keyFile) throw new Error(`internal: repository ${r.name} is not a complete TLS repository record`);
  return [
    ['path', r.path],
    ['host', r.tls.host],
    ['host-type', 'tls'],
    ['host-port', String(r.tls.port)],
    ['host-ca-file', r.caFile],
    ['host-cert-file', r.certFile],
    ['host-key-file', r.keyFile],
    ['host-config', r.tls.hostConfig],
  ];
}

/** A repository's options, whatever its kind (secrets only for S3). */
export function repoOptions(r: RepoRecord, s: RepoSecrets | undefined): RepoOption[] {
  if (r.kind === 'tls') return tlsOptions(r);
  if (!s) throw new Error(`internal: the secrets of repository ${r.name} were not read`);
  return s3Options(r, s);
}

/** Stanza-file lines for repository `index`. */
export const repoLines = (index: number, options: RepoOption[]) => options.map(([k, v]) => `repo${index}-${k}=${v}`);

/**
 * A probe's view of one repository: its options as the environment of a child that sees it as repo1,
 * and who runs it. pgBackRest takes a TLS key owned by root only at 0600 when root runs it, and at 0640
 * (root:postgres) when postgres does: pgmam's copy is the latter, so a TLS probe runs as postgres.
 */
export interface ProbeTarget {
  env: Record<string, string>;
  asPostgres: boolean;
}

/** The environment that makes a pgBackRest child see this repository as repo1 (a probe with --config=/dev/null). */
export function probeEnv(options: RepoOption[]): Record<string, string> {
  return Object.fromEntries(options.filter(([k]) => k !== 'retention-full' && k !== 'retention-full-type').map(([k, v]) => [`PGBACKREST_REPO1_${k.toUpperCase().replace(/-/g, '_')}`, v]));
}
