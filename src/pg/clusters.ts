// Parses `pg_lsclusters --json` (or rows of the same shape) into the host's clusters.
import { z } from 'zod';

const entry = z.object({
  version: z.union([z.number(), z.string()]).transform(String),
  cluster: z.string(),
  port: z.union([z.number(), z.string()]).transform(Number),
  running: z.union([z.number(), z.boolean()]).transform((v) => Boolean(v)),
  pgdata: z.string().optional(),
  configdir: z.string(),
  logfile: z.string().optional(),
  socketdir: z.string().optional(),
  start: z.string().optional(),
  recovery: z.union([z.number(), z.boolean()]).optional(),
  // Every setting of the cluster: only archive_command is read (checking each key cost list a tenth of its time).
  config: z.unknown().optional(),
});

export interface HostCluster {
  version: string;
  name: string;
  port: number;
  running: boolean;
  dataDir: string | undefined;
  configDir: string;
  logFile: string | undefined;
  socketDir: string;
  startConf: string | undefined;
  /** Known only for running clusters (pg_lsclusters reads it from the server). */
  inRecovery: boolean | undefined;
  archiveCommand: string | undefined;
}

export function parseLsClusters(json: string): HostCluster[] {
  return clustersFromRows(JSON.parse(json || '[]'));
}

/** Rows as pg_lsclusters --json prints them, checked. */
export function clustersFromRows(json: unknown): HostCluster[] {
  return clustersOf(z.array(entry).parse(json));
}

/** Rows already in that shape's parsed types (pgmam's own reading builds them so): nothing left to check. */
export function clustersOf(rows: ReadonlyArray<z.output<typeof entry>>): HostCluster[] {
  return rows
    .map((r) => ({
      version: r.version,
      name: r.cluster,
      port: r.port,
      running: r.running,
      dataDir: r.pgdata,
      configDir: r.configdir,
      logFile: r.logfile,
      socketDir: r.socketdir ?? '/var/run/postgresql',
      startConf: r.start,
      inRecovery: r.recovery === undefined ? undefined : Boolean(r.recovery),
      archiveCommand: archiveCommandOf(r.config),
    }))
    .sort((a, b) => Number(a.version) - Number(b.version) || byteOrder(a.name, b.name));
}

function archiveCommandOf(config: unknown): string | undefined {
  const v = config !== null && typeof config === 'object' ? (config as Record<string, unknown>)['archive_command'] : undefined;
  return typeof v === 'string' ? v : undefined;
}

/** The order pg_lsclusters lists names in (Perl's sort); localeCompare would also load ICU's collator, milliseconds of every start. */
export const byteOrder = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
