// A repository as pgBackRest options: the lines of a stanza file for one `repoN`, and the environment
// of a probe that addresses it as repo1. Secrets go only into those (a root:postgres 0640 stanza file,
// a child's environment), never into argv.
import type { RepoRecord, RepoSecrets } from '../state/repos.js';

export type RepoOption = [key: string, value: string];

/** The options of an S3 repository, unprefixed ('type', 's3-bucket', …); secrets included. */
export function s3Options(r: RepoRecord, s: RepoSecrets): RepoOption[] {
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

/** Stanza-file lines for repository `index`. */
export const repoLines = (index: number, options: RepoOption[]) => options.map(([k, v]) => `repo${index}-${k}=${v}`);

/** The environment that makes a pgBackRest child see this repository as repo1 (a probe with --config=/dev/null). */
export function probeEnv(options: RepoOption[]): Record<string, string> {
  return Object.fromEntries(options.filter(([k]) => k !== 'retention-full' && k !== 'retention-full-type').map(([k, v]) => [`PGBACKREST_REPO1_${k.toUpperCase().replace(/-/g, '_')}`, v]));
}
