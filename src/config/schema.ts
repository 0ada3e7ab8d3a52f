// pgmam's own configuration (/etc/pgmam/pgmam.conf, INI): every key, its default, its validation.
import { z } from 'zod';

const str = (v: unknown) => (v === undefined ? undefined : String(v).trim());
const int = (min: number, max: number) =>
  z.preprocess(str, z.string().regex(/^\d+$/, 'must be a whole number').transform(Number).pipe(z.number().int().min(min).max(max)));
const absPath = z.preprocess(str, z.string().regex(/^\/[^\0]*$/, 'must be an absolute path'));

export const DEFAULT_CONFIG_FILE = '/etc/pgmam/pgmam.conf';

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
    'state-dir': absPath.default('/var/lib/pgmam'),
    'log-file': absPath.default('/var/log/pgmam/pgmam.log'),
    /** Refuse to create or restore when a filesystem we write to has less than this free. */
    'min-free-mb': int(0, 10_000_000).default(256),
    /** How long to wait for a switched WAL segment to be archived. */
    'archive-wait-timeout': int(1, 86400).default(120),
    /** How long recovery after a restore may take before pgmam gives up waiting. */
    'recovery-timeout': int(10, 604800).default(3600),
  })
  .strict()
  .refine((c) => c['port-min'] <= c['port-max'], { message: 'port-min must not exceed port-max', path: ['port-min'] });

export type Config = z.infer<typeof configSchema>;

export const defaultConfig: Config = configSchema.parse({});
