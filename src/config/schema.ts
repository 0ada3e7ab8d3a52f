// pgmam's own configuration (/etc/pgmam/pgmam.conf, INI): every key, its default, its validation
// (what each key means: help.ts).
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
    'pg-version': z.preprocess(str, z.string().regex(/^(\d{2})?$/, 'must be a PostgreSQL major such as 15')).default(''),
    'port-min': int(1024, 65535).default(5433),
    'port-max': int(1024, 65535).default(5999),
    'repo-path': z.preprocess(str, z.union([z.literal(''), z.string().regex(/^\/[^\0]*$/, 'must be an absolute path')])).default(''),
    'retention-full': int(1, 9999999).default(2),
    'compress-type': z.preprocess(str, z.enum(['lz4', 'zst', 'gz', 'bz2', 'none'])).default('lz4'),
    'process-max': int(1, 64).default(2),
    'archive-timeout': int(1, 86400).default(60),
    'stanza-dir': absPath.default('/etc/pgbackrest/conf.d'),
    'data-root': z
      .preprocess(str, z.union([z.literal(''), z.string().regex(/^\/[^\0]*%c[^\0]*$/, 'must be an absolute path template containing %c (and usually %v), e.g. /srv/postgresql/%v/%c')]))
      .default(''),
    'state-dir': absPath.default('/var/lib/pgmam'),
    'log-file': absPath.default('/var/log/pgmam/pgmam.log'),
    'min-free-mb': int(0, 10_000_000).default(256),
    'archive-wait-timeout': int(1, 86400).default(120),
    'recovery-timeout': int(10, 604800).default(3600),
    'full-interval': duration.default(7 * 86400),
    'diff-interval': duration.default(86400),
    'retention-full-type': z.preprocess(str, z.enum(['count', 'time'])).default('count'),
    'export-dir': absPath.default('/var/backups/pgmam'),
    'export-keep-daily': duration.default(7 * 86400),
    'export-keep-weekly': duration.default(30 * 86400),
    'export-keep-monthly': duration.default(365 * 86400),
    'backup-max-age': duration.default(8 * 86400),
    'archive-ready-max-age': duration.default(600),
    'repo-suspend-mb': int(16, 10_000_000).default(1024),
    'slot-max-wal-mb': int(16, 10_000_000).default(1024),
    'archive-io-timeout': int(1, 3600).default(2),
    'takeover-min-idle': duration.default(300),
    'fence-on-takeover': z.preprocess(str, z.enum(['yes', 'no'])).default('yes'),
    'backup-parallel': int(1, 64).default(2),
    'lock-wait': int(0, 86400).default(60),
    'tls-dir': absPath.default('/etc/pgmam/tls'),
    'tls-names': z
      .preprocess(
        str,
        z
          .string()
          .transform((v) => v.split(',').map((x) => x.trim()).filter(Boolean))
          .pipe(z.array(z.string().regex(DNS_NAME, 'must list DNS names (letters, digits and hyphens in dot-separated labels), comma-separated'))),
      )
      .default([]),
    'tls-required': z.preprocess(str, z.enum(['yes', 'no'])).default('yes'),
    'tls-warn-days': int(1, 3650).default(30),
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
