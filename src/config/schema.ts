// pgmam's own configuration (/etc/pgmam/pgmam.conf, INI): every key, its default, its validation.
import { z } from 'zod';

const str = (v: unknown) => (v === undefined ? undefined : String(v).trim());
const int = (min: number, max: number) =>
  z.preprocess(str, z.string().regex(/^\d+$/, 'must be a whole number').transform(Number).pipe(z.number().int().min(min).max(max)));
export const DURATION_PATTERN = /^\d+\s*[smhdw]?$/;
/** "7d", "12h", "30m", "45s" or plain seconds → seconds (the text matches DURATION_PATTERN). */
export function durationSeconds(v: string): number {
  const n = parseInt(v, 10);
  const unit = v.trim().slice(-1);
  return n * ({ s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[unit] ?? 1);
}

const duration = z.preprocess(
  str,
  z
    .string()
    .regex(DURATION_PATTERN, 'must be a duration such as 3600, 90m, 12h, 7d or 2w')
    .transform(durationSeconds),
);
const absPath = z.preprocess(str, z.string().regex(/^\/[^\0]*$/, 'must be an absolute path'));

export const DEFAULT_CONFIG_FILE = '/etc/pgmam/pgmam.conf';
/** A DNS name as a certificate's subjectAltName carries it: dot-separated labels of letters, digits and inner hyphens. */
export const DNS_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export const configSchema = z
  .object({
    /** PostgreSQL major for new clusters; empty = newest installed that pgBackRest supports. */
    'pg-version': z.preprocess(str, z.string().regex(/^(\d{2})?$/, 'must be a PostgreSQL major such as 15')).default(''),
    'port-min': int(1024, 65535).default(5433),
    'port-max': int(1024, 65535).default(5999),
    /** Empty = read repo1-path from pgBackRest's own configuration (never assumed). */
    'repo-path': z.preprocess(str, z.union([z.literal(''), z.string().regex(/^\/[^\0]*$/, 'must be an absolute path')])).default(''),
    'retention-full': int(1, 9999999).default(2),
    'compress-type': z.preprocess(str, z.enum(['lz4', 'zst', 'gz', 'bz2', 'none'])).default('lz4'),
    'process-max': int(1, 64).default(2),
    'archive-timeout': int(1, 86400).default(60),
    /** pgBackRest include directory where one stanza file per cluster goes. */
    'stanza-dir': absPath.default('/etc/pgbackrest/conf.d'),
    /**
     * Where new clusters' data directories go: a template with %v (major) and %c (name), passed to
     * pg_createcluster -d. Empty = data_directory of postgresql-common's createcluster.conf. Branches go beside their parent.
     */
    'data-root': z
      .preprocess(str, z.union([z.literal(''), z.string().regex(/^\/[^\0]*%c[^\0]*$/, 'must be an absolute path template containing %c (and usually %v), e.g. /srv/postgresql/%v/%c')]))
      .default(''),
    'state-dir': absPath.default('/var/lib/pgmam'),
    'log-file': absPath.default('/var/log/pgmam/pgmam.log'),
    /** Refuse to create or restore when a filesystem we write to has less than this free. */
    'min-free-mb': int(0, 10_000_000).default(256),
    /** How long to wait for a switched WAL segment to be archived. */
    'archive-wait-timeout': int(1, 86400).default(120),
    /** How long recovery after a restore may take before pgmam gives up waiting. */
    'recovery-timeout': int(10, 604800).default(3600),
    /** backup --type auto: a full when none is newer than this, else a diff when none newer than diff-interval, else incr. */
    'full-interval': duration.default(7 * 86400),
    'diff-interval': duration.default(86400),
    /** pgBackRest's repo1-retention-full-type: keep `retention-full` full backups ('count') or days ('time'). */
    'retention-full-type': z.preprocess(str, z.enum(['count', 'time'])).default('count'),
    /** Where pgmam export writes, and how long each tier of exports is kept. */
    'export-dir': absPath.default('/var/backups/pgmam'),
    'export-keep-daily': duration.default(7 * 86400),
    'export-keep-weekly': duration.default(30 * 86400),
    'export-keep-monthly': duration.default(365 * 86400),
    /** check: a cluster whose newest backup is older than this is unhealthy (a due full is never skipped, so full-interval + slack). */
    'backup-max-age': duration.default(8 * 86400),
    /** check: a WAL file waiting longer than this to be archived makes the cluster unhealthy. */
    'archive-ready-max-age': duration.default(600),
    /**
     * WAL waiting (pg_wal) only for an attached repository that fails, past which backup suspends that
     * repository for the app (takes it out of the stanza file; the next backup that finds it answering
     * puts it back and takes a full into it). The local repository is never suspended.
     */
    'repo-suspend-mb': int(16, 10_000_000).default(1024),
    /** max_slot_wal_keep_size a primary gets with its first replica: a replica that stopped cannot make its slot fill the primary's disk. */
    'slot-max-wal-mb': int(16, 10_000_000).default(1024),
    /** pgBackRest's io-timeout for archive-push alone: how long a repository that does not answer holds each round of archiving. */
    'archive-io-timeout': int(1, 3600).default(2),
    /**
     * recover without --as (a takeover of the app's own stanza) is refused unless the stanza's archive has
     * received nothing for this long: the origin host is gone, not just slow (--force overrides).
     */
    'takeover-min-idle': duration.default(300),
    /** check: when another host has taken over an app (a newer timeline in its shared stanza), stop this host's copy and disable its start at boot. */
    'fence-on-takeover': z.preprocess(str, z.enum(['yes', 'no'])).default('yes'),
    /** Clusters backed up at once by backup --all. */
    'backup-parallel': int(1, 64).default(2),
    /** How long backup waits for a cluster locked by another pgmam command before skipping it. */
    'lock-wait': int(0, 86400).default(60),
    /** pgmam's CA (ca.crt, ca.key root 0600) and each cluster's server certificate (clusters/<version>-<name>/). */
    'tls-dir': absPath.default('/etc/pgmam/tls'),
    /** More names every server certificate carries (comma-separated DNS names), beside the host's name and FQDN, localhost and the loopback addresses. */
    'tls-names': z
      .preprocess(
        str,
        z
          .string()
          .transform((v) => v.split(',').map((x) => x.trim()).filter(Boolean))
          .pipe(z.array(z.string().regex(DNS_NAME, 'must list DNS names (letters, digits and hyphens in dot-separated labels), comma-separated'))),
      )
      .default([]),
    /** pg_hba.conf: refuse every TCP connection without TLS (no: only replication connections, which are refused without TLS always). */
    'tls-required': z.preprocess(str, z.enum(['yes', 'no'])).default('yes'),
    /** check: a server certificate expiring within this many days makes its cluster unhealthy. */
    'tls-warn-days': int(1, 3650).default(30),
    /** When the installed schedule runs pgmam backup --all (cron syntax; systemd timers get OnCalendar from it when it is hourly or daily). */
    schedule: z.preprocess(str, z.string().regex(/^(\S+\s+){4}\S+$/, 'must be a cron time spec with five fields, e.g. "0 * * * *"')).default('0 * * * *'),
  })
  .strict()
  .refine((c) => c['port-min'] <= c['port-max'], { message: 'port-min must not exceed port-max', path: ['port-min'] });

export type Config = z.infer<typeof configSchema>;

export const defaultConfig: Config = configSchema.parse({});

/** The retention every backup pgmam takes uses, whichever command takes it (one source: this configuration). */
export interface Retention {
  full: number;
  fullType: 'count' | 'time';
}
export const retentionOf = (c: Pick<Config, 'retention-full' | 'retention-full-type'>): Retention => ({ full: c['retention-full'], fullType: c['retention-full-type'] });
