// What a command declares for the command line (cli/ turns it into commander wiring): its
// arguments and flags, and the zod schema that turns their raw values into the command's options.
import { z } from 'zod';
import type { Context } from '../context.js';
import { UsageError } from '../errors.js';
import type { RunFlags } from './command.js';

export interface CliArg {
  /** commander syntax: '<app>', '[app]', '[apps...]'. */
  syntax: string;
  /** The key its value has in the raw input (default: the name in the syntax). */
  key?: string;
  help?: string;
}

export interface CliFlag {
  /** commander syntax: '-p, --port <port>', '--latest', '--no-autostart'. */
  flags: string;
  help: string;
  default?: string | boolean;
  choices?: readonly string[];
}

export interface CliSpec {
  args?: CliArg[];
  flags?: CliFlag[];
  /**
   * Raw values → the command's own options (the run flags are added after): positionals by key,
   * flags camelCased as commander names them, `selfPath` (the running executable). A malformed
   * value throws a UsageError (exit 2) from inside the schema.
   */
  input: z.ZodType<object>;
  /** The executor undoes this command's steps when one fails: offer --keep-on-error. */
  keepOnError?: boolean;
  /** Completes the input on a terminal once the context exists (branch create asks for its parent). */
  prepare?(ctx: Context, input: object): Promise<object>;
}

/** A command the command line runs without the module runner (a batch over targets). */
export interface CliBatch<O> {
  name: string;
  summary: string;
  examples: string[];
  cli: CliSpec;
  run(ctx: Context, o: O & RunFlags): Promise<void>;
}

/** A boolean flag: absent is false. */
export const flag = z
  .boolean()
  .optional()
  .transform((v) => v === true);

/** An optional absolute path (trailing slashes dropped); `what` names it in the usage error. */
export const absolutePath = (what: string) =>
  z
    .string()
    .optional()
    .transform((v) => {
      if (v === undefined) return undefined;
      if (!v.startsWith('/')) throw new UsageError(`${what} must be an absolute path (got "${v}")`);
      return v.replace(/\/+$/, '') || '/';
    });
