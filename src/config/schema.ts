// pgmam's own configuration (/etc/pgmam/pgmam.conf, INI): every key, its default, its validation
// (what each key means: help.ts). A plain table, not zod: every command reads the configuration
// first, and building ~40 zod chains cost list and check a tenth of their start-up.

/** One key: its default, and how a value from the file becomes a setting (throws the problem's text). */
interface Key<T> {
  default: T;
  parse(v: string): T;
  /** Takes "90m", "12h", "7d" (help shows the default that way). */
  duration?: true;
}

export const DURATION_PATTERN = /^\d+\s*[smhdw]?$/;
/** "7d", "12h", "30m", "45s" or plain seconds → seconds (the text matches DURATION_PATTERN). */
export function durationSeconds(v: string): number {
  const n = parseInt(v, 10);
  const unit = v.trim().slice(-1);
  return n * ({ s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[unit] ?? 1);
}

const int = (min: number, max: number, def: number): Key<number> => ({
  default: def,
  parse(v) {
    if (!/^\d+$/.test(v)) throw new Error('must be a whole number');
    const n = Number(v);
    if (n < min || n > max) throw new Error(`must be between ${min} and ${max}`);
    return n;
  },
});
const matching = (re: RegExp, message: string, def: string): Key<string> => ({
  default: def,
  parse(v) {
    if (!re.test(v)) throw new Error(message);
    return v;
  },
});
const duration = (def: number): Key<number> => ({
  default: def,
  duration: true,
  parse(v) {
    if (!DURATION_PATTERN.test(v)) throw new Error('must be a duration such as 3600, 90m, 12h, 7d or 2w');
    return durationSeconds(v);
  },
});
const oneOf = <const T extends readonly string[]>(values: T, def: T[number]): Key<T[number]> => ({
  default: def,
  parse(v) {
    if (!values.includes(v)) throw new Error(`must be one of ${values.join(', ')}`);
    return v as T[number];
  },
});
const ABS_PATH = /^\/[^\0]*$/;
const absPath = (def: string) => matching(ABS_PATH, 'must be an absolute path', def);

export const DEFAULT_CONFIG_FILE = '/etc/pgmam/pgmam.conf';
/** A DNS name as a certificate's subjectAltName carries it: dot-separated labels of letters, digits and inner hyphens. */
export const DNS_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** Every key in the order help and the default file show them. */
export const configKeySpecs = {
  'pg-version': matching(/^(\d{2})?$/, 'must be a PostgreSQL major such as 15', ''),
  'port-min': int(1024, 65535, 5433),
  'port-max': int(1024, 65535, 5999),
  'repo-path': matching(/^$|^\/[^\0]*$/, 'must be an absolute path', ''),
  'retention-full': int(1, 9999999, 2),
  'compress-type': oneOf(['lz4', 'zst', 'gz', 'bz2', 'none'], 'lz4'),
  'process-max': int(1, 64, 2),
  'archive-timeout': int(1, 86400, 60),
  'stanza-dir': absPath('/etc/pgbackrest/conf.d'),
  'data-root': matching(/^$|^\/[^\0]*%c[^\0]*$/, 'must be an absolute path template containing %c (and usually %v), e.g. /srv/postgresql/%v/%c', ''),
  'state-dir': absPath('/var/lib/pgmam'),
  'log-file': absPath('/var/log/pgmam/pgmam.log'),
  'min-free-mb': int(0, 10_000_000, 256),
  'preserved-max-mb': int(0, 100_000_000, 512),
  'archive-wait-timeout': int(1, 86400, 120),
  'recovery-timeout': int(10, 604800, 3600),
  'full-interval': duration(7 * 86400),
  'diff-interval': duration(86400),
  'retention-full-type': oneOf(['count', 'time'], 'count'),
  'export-dir': absPath('/var/backups/pgmam'),
  'export-keep-daily': duration(7 * 86400),
  'export-keep-weekly': duration(30 * 86400),
  'export-keep-monthly': duration(365 * 86400),
  'backup-max-age': duration(8 * 86400),
  'archive-ready-max-age': duration(600),
  'repo-suspend-mb': int(16, 10_000_000, 1024),
  'slot-max-wal-mb': int(16, 10_000_000, 1024),
  'archive-io-timeout': int(1, 3600, 2),
  'takeover-min-idle': duration(300),
  'fence-on-takeover': oneOf(['yes', 'no'], 'yes'),
  'backup-parallel': int(1, 64, 2),
  'lock-wait': int(0, 86400, 60),
  'tls-dir': absPath('/etc/pgmam/tls'),
  'secrets-dir': absPath('/etc/pgmam/secrets'),
  'tls-names': {
    default: [] as string[],
    parse(v: string): string[] {
      const names = v.split(',').map((x) => x.trim()).filter(Boolean);
      if (!names.every((n) => DNS_NAME.test(n))) throw new Error('must list DNS names (letters, digits and hyphens in dot-separated labels), comma-separated');
      return names;
    },
  },
  'tls-required': oneOf(['yes', 'no'], 'yes'),
  'tls-warn-days': int(1, 3650, 30),
  schedule: matching(/^(\S+\s+){4}\S+$/, 'must be a cron time spec with five fields, e.g. "0 * * * *"', '0 * * * *'),
  'drill-schedule': matching(/^$|^(\S+\s+){4}\S+$/, 'must be a cron time spec with five fields, e.g. "30 4 * * 0", or empty', '30 4 * * 0'),
  'drill-max-age': duration(8 * 86400),
  'drill-probe-dir': absPath('/etc/pgmam/drill-probe'),
} satisfies Record<string, Key<unknown>>;

export type ConfigKey = keyof typeof configKeySpecs;
export type Config = { [K in ConfigKey]: (typeof configKeySpecs)[K] extends Key<infer T> ? T : never };

export interface ConfigProblem {
  key: string | undefined;
  message: string;
}

/** The settings from a file's top-level keys (INI values: strings, or true for a bare key); every problem at once. */
export function validateConfig(flat: Record<string, unknown>): { config: Config; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  for (const k of Object.keys(flat)) if (!Object.hasOwn(configKeySpecs, k)) problems.push({ key: k, message: 'unknown key' });
  const out: Record<string, unknown> = {};
  for (const [k, spec] of Object.entries(configKeySpecs) as Array<[ConfigKey, Key<unknown>]>) {
    const raw = flat[k];
    if (raw === undefined) {
      out[k] = Array.isArray(spec.default) ? [...spec.default] : spec.default;
      continue;
    }
    try {
      out[k] = spec.parse(String(raw).trim());
    } catch (e) {
      problems.push({ key: k, message: `${(e as Error).message} (got "${String(raw)}")` });
    }
  }
  const config = out as Config;
  if (!problems.length && config['port-min'] > config['port-max']) problems.push({ key: 'port-min', message: 'port-min must not exceed port-max' });
  return { config, problems };
}

export const defaultConfig: Config = validateConfig({}).config;

/** The retention every backup pgmam takes uses, whichever command takes it (one source: this configuration). */
export interface Retention {
  full: number;
  fullType: 'count' | 'time';
}
export const retentionOf = (c: Pick<Config, 'retention-full' | 'retention-full-type'>): Retention => ({ full: c['retention-full'], fullType: c['retention-full-type'] });
