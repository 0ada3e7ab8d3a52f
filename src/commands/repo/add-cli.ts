// `pgmam repo add`'s command line: an S3 repository (--s3-endpoint …) or a repository host through its
// pgBackRest server (--tls-host …); the flags pick the module that adds it.
import { z } from 'zod';
import type { Context } from '../../context.js';
import { DURATION_PATTERN, durationSeconds } from '../../config/schema.js';
import { UsageError } from '../../errors.js';
import { absolutePath, type CliBatch, type CliSpec } from '../../plan/cli-spec.js';
import { runCommand, type RunFlags } from '../../plan/command.js';
import { parseEndpoint, repoAddCommand, repoNameArg, type RepoAddOptions } from './add.js';
import { DEFAULT_HOST_CONFIG, DEFAULT_TLS_PORT, DEFAULT_TLS_REPO_PATH, repoAddTlsCommand, type RepoAddTlsOptions } from './add-tls.js';

const positiveInt = (what: string) =>
  z
    .string()
    .optional()
    .transform((v) => {
      if (v === undefined) return undefined;
      if (!/^\d+$/.test(v) || Number(v) < 1) throw new UsageError(`${what} must be a whole number of at least 1 (got "${v}")`);
      return Number(v);
    });

const durationArg = (what: string) =>
  z
    .string()
    .optional()
    .transform((v) => {
      if (v === undefined) return undefined;
      if (!DURATION_PATTERN.test(v)) throw new UsageError(`${what} must be a duration such as 3600, 90m, 12h, 7d or 2w (got "${v}")`);
      return durationSeconds(v);
    });

const cli: CliSpec = {
  args: [{ syntax: '<name>', help: 'the repository’s name (a-z, 0-9, _)' }],
  flags: [
    { flags: '--s3-endpoint <host[:port]>', help: 'the S3 endpoint, over TLS (https; default port 443)' },
    { flags: '--s3-bucket <bucket>', help: 'the bucket (pgBackRest does not create it)' },
    { flags: '--s3-region <region>', help: 'the region', default: 'us-east-1' },
    { flags: '--s3-uri-style <style>', help: 'path (bucket in the path) or host (bucket in the host name)', choices: ['path', 'host'], default: 'path' },
    { flags: '--s3-key-file <file>', help: 'a file (0600 root) with "access-key = …" and "secret-key = …" lines' },
    { flags: '--tls-host <host[:port]>', help: `instead of S3: a repository host running pgmam repo serve (pgBackRest's server; default port ${DEFAULT_TLS_PORT})` },
    { flags: '--cert-file <file>', help: '--tls-host: this host’s certificate, signed by the CA the repository host trusts' },
    { flags: '--key-file <file>', help: '--tls-host: its key (0600 root)' },
    { flags: '--host-config <file>', help: `--tls-host: the server's configuration file on the repository host (default ${DEFAULT_HOST_CONFIG})` },
    { flags: '--ca-file <file>', help: 'the CA certificate that signed the endpoint’s or repository host’s (S3 default: the system’s store)' },
    { flags: '--path <path>', help: `the repository’s path in the bucket (default /pgbackrest), or on the repository host (default ${DEFAULT_TLS_REPO_PATH})` },
    { flags: '--cipher-pass-file <file>', help: 'encrypt the repository (aes-256-cbc) with the pass in this file (0600 root)' },
    { flags: '--retention-full <n>', help: 'full backups (or days) to keep in it (default: the configuration’s retention-full)' },
    { flags: '--retention-full-type <type>', help: 'count or time (default: the configuration’s)', choices: ['count', 'time'] },
    { flags: '--attach-new <yes|no>', help: 'attach every new cluster to it', choices: ['yes', 'no'], default: 'yes' },
    { flags: '--full-interval <duration>', help: 'backup --type auto into it: a full when none is newer (default: the configuration’s full-interval)' },
    { flags: '--diff-interval <duration>', help: 'backup --type auto into it: else a diff when none is newer (default: the configuration’s diff-interval)' },
  ],
  input: z
    .object({
      name: repoNameArg,
      s3Endpoint: z.string().optional(),
      s3Bucket: z.string().optional(),
      s3Region: z.string().default('us-east-1'),
      s3UriStyle: z.enum(['path', 'host']).default('path'),
      s3KeyFile: absolutePath('--s3-key-file'),
      tlsHost: z.string().optional(),
      certFile: absolutePath('--cert-file'),
      keyFile: absolutePath('--key-file'),
      hostConfig: absolutePath('--host-config'),
      caFile: absolutePath('--ca-file'),
      path: absolutePath('--path'),
      cipherPassFile: absolutePath('--cipher-pass-file'),
      retentionFull: positiveInt('--retention-full'),
      retentionFullType: z.enum(['count', 'time']).optional(),
      attachNew: z.enum(['yes', 'no']).default('yes'),
      fullInterval: durationArg('--full-interval'),
      diffInterval: durationArg('--diff-interval'),
    })
    .transform((r): Omit<RepoAddOptions, 'json' | 'dryRun' | 'yes' | 'keepOnError'> | Omit<RepoAddTlsOptions, 'json' | 'dryRun' | 'yes' | 'keepOnError'> => {
      if (r.tlsHost !== undefined) {
        if (r.s3Endpoint || r.s3Bucket || r.s3KeyFile || r.cipherPassFile) throw new UsageError('repo add takes --tls-host or --s3-endpoint (with its --s3-… flags), not both');
        if (r.retentionFull !== undefined || r.retentionFullType || r.fullInterval !== undefined || r.diffInterval !== undefined)
          throw new UsageError('a repository host keeps its own retention and takes the backups itself: --retention-full, --retention-full-type, --full-interval and --diff-interval belong to its configuration');
        if (!r.caFile || !r.certFile || !r.keyFile) throw new UsageError('repo add --tls-host needs --ca-file, --cert-file and --key-file');
        const at = parseEndpoint(r.tlsHost, DEFAULT_TLS_PORT, '--tls-host');
        return { name: r.name, tlsHost: at.host, tlsPort: at.port, hostConfig: r.hostConfig ?? DEFAULT_HOST_CONFIG, caFile: r.caFile, certFile: r.certFile, keyFile: r.keyFile, path: r.path ?? DEFAULT_TLS_REPO_PATH, attachNew: r.attachNew === 'yes' };
      }
      if (r.certFile || r.keyFile || r.hostConfig) throw new UsageError('--cert-file, --key-file and --host-config go with --tls-host');
      if (!r.s3Endpoint) throw new UsageError('repo add needs --s3-endpoint HOST[:PORT] or --tls-host HOST[:PORT]');
      if (!r.s3Bucket || !/^[a-z0-9][a-z0-9.-]{1,62}$/.test(r.s3Bucket)) throw new UsageError(`repo add needs --s3-bucket with a valid bucket name (got "${r.s3Bucket ?? ''}")`);
      if (!r.s3KeyFile) throw new UsageError('repo add needs --s3-key-file FILE');
      return {
        name: r.name,
        ...parseEndpoint(r.s3Endpoint, 443, '--s3-endpoint'),
        bucket: r.s3Bucket,
        region: r.s3Region,
        uriStyle: r.s3UriStyle,
        keyFile: r.s3KeyFile,
        caFile: r.caFile,
        path: r.path ?? '/pgbackrest',
        cipherPassFile: r.cipherPassFile,
        retentionFull: r.retentionFull,
        retentionFullType: r.retentionFullType,
        attachNew: r.attachNew === 'yes',
        fullInterval: r.fullInterval,
        diffInterval: r.diffInterval,
      };
    }),
};


/** `repo add`: the S3 module or the TLS one, as the flags say. */
export const repoAddCli: CliBatch<(RepoAddOptions | RepoAddTlsOptions) & RunFlags> = {
  name: 'repo add',
  summary: 'add a repository beside the local one: S3, or another host’s through its pgBackRest server (checked before anything is written)',
  examples: [...repoAddCommand.spec.examples, ...repoAddTlsCommand.spec.examples],
  cli,
  run: async (ctx: Context, o) => {
    if ('tlsHost' in o) await runCommand(ctx, repoAddTlsCommand, o);
    else await runCommand(ctx, repoAddCommand, o);
  },
};
