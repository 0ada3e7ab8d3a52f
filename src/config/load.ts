// Loads and validates the INI configuration; every problem is reported at once (exit 3).
import { parse } from 'ini';
import { ConfigError } from '../errors.js';
import { DEFAULT_CONFIG_FILE, validateConfig, type Config } from './schema.js';

export interface ConfigSource {
  /** From --config, else PGMAM_CONFIG, else the default file. */
  path: string;
  /** An explicitly named file must exist; the default one is optional. */
  explicit: boolean;
}

export function configSource(flag: string | undefined, env: string | undefined): ConfigSource {
  if (flag) return { path: flag, explicit: true };
  if (env) return { path: env, explicit: true };
  return { path: DEFAULT_CONFIG_FILE, explicit: false };
}

/** `text` is undefined when the file does not exist. */
export function parseConfig(source: ConfigSource, text: string | undefined): Config {
  if (text === undefined) {
    if (source.explicit) throw new ConfigError(source.path, ['file not found']);
    return validateConfig({}).config;
  }
  const raw = parse(text) as Record<string, unknown>;
  const problems: string[] = [];
  const flat: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (value !== null && typeof value === 'object') problems.push(`[${key}]: unknown section (keys go at the top of the file)`);
    else flat[key] = value;
  }
  const result = validateConfig(flat);
  problems.push(...result.problems.map((p) => `${p.key ?? '(file)'}: ${p.message}`));
  if (problems.length) throw new ConfigError(source.path, problems);
  return result.config;
}
