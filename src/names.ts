// Well-formedness of names and ports (pgmam-cli.md): malformed input is a usage error, whatever the host.
import { z } from 'zod';
import { UsageError } from './errors.js';

export const NAME_PATTERN = /^[a-z][a-z0-9_]{0,47}$/;
/** A name in a command's options schema (the CLI has already given a usage error for a bad one). */
export const nameSchema = z.string().regex(NAME_PATTERN);

export { LEGACY_NAMES, type LegacyName } from './legacy-names.js';

export function parseName(value: string | undefined, what = 'name'): string {
  const v = value ?? '';
  if (!NAME_PATTERN.test(v)) {
    const why =
      v === ''
        ? 'it is empty'
        : v.length > 48
          ? `it has ${v.length} characters (at most 48)`
          : 'it must start with a lowercase letter and contain only a-z, 0-9 and _';
    throw new UsageError(`invalid ${what} "${v}": ${why}`, [
      `pgmam: invalid ${what} "${v}": ${why}`,
      `  hint: a ${what} matches ${NAME_PATTERN.source}, e.g. app1`,
    ]);
  }
  return v;
}

export function parsePort(value: string | undefined): number {
  const v = value ?? '';
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < 1024 || n > 65535)
    throw new UsageError(`invalid port "${v}": must be a number from 1024 to 65535`);
  return n;
}

/** `15/app1` or `app1` → its parts (version undefined when not given). */
export function parseClusterRef(value: string | undefined): { version: string | undefined; name: string } {
  const v = value ?? '';
  const m = /^(\d{1,2})\/(.*)$/.exec(v);
  if (m) return { version: m[1], name: parseName(m[2]) };
  return { version: undefined, name: parseName(v) };
}

/** Command-line values (cli specs): each parses one raw string, a malformed one is a UsageError. */
export const nameArg = (what = 'cluster name') => z.string().optional().transform((v) => parseName(v, what));
export const optionalNameArg = (what: string) => z.string().optional().transform((v) => (v === undefined ? undefined : parseName(v, what)));
export const portArg = z.string().optional().transform((v) => (v === undefined ? undefined : parsePort(v)));
export const clusterRefArg = z.string().optional().transform((v) => parseClusterRef(v));
export const namesArg = (what = 'cluster name') => z.array(z.string()).default([]).transform((vs) => vs.map((v) => parseName(v, what)));
