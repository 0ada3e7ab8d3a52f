// The one line a plan that takes a cluster away from its users opens with (and its prompt repeats):
// how long, and how many sessions it cuts. "About": from the app's last restore drill where it has one
// (a measured restore, recovery and start), else from the backup's size.
import type { Context } from '../context.js';
import * as pg from '../pg/commands.js';
import type { ManagedCluster } from '../state/store.js';

/** Restore throughput assumed without a drill (lz4, process-max 2, one disk: research/timings.md). */
const RESTORE_BYTES_PER_SECOND = 100 * 1024 * 1024;
/** Stop, start (pg_ctlcluster waits about 2 s) and promotion, on top of the restore. */
const STOP_START_SECONDS = 5;

/** Client sessions on a running cluster now (undefined: stopped or unreadable). Read-only. */
export async function sessionsOf(ctx: Pick<Context, 'runner'>, c: { version: string; port: number; running: boolean } | undefined): Promise<number | undefined> {
  if (!c?.running) return undefined;
  const r = await ctx.runner.run(pg.psqlValue({ version: c.version, port: c.port }, pg.SESSIONS_SQL), { check: false });
  return r.exitCode === 0 ? Number(r.stdout.trim()) : undefined;
}

/** About how long a restore of `bytes` keeps the cluster from its users, and on what that rests. */
export function restoreDowntime(rec: Pick<ManagedCluster, 'drill'> | undefined, bytes: number | undefined): { seconds: number; basis: string } | undefined {
  const drill = rec?.drill?.lastOk;
  if (drill?.rtoSeconds) return { seconds: Math.ceil(drill.rtoSeconds), basis: `its last restore drill took ${drill.rtoSeconds} s` };
  if (bytes === undefined) return undefined;
  return { seconds: Math.ceil(bytes / RESTORE_BYTES_PER_SECOND) + STOP_START_SECONDS, basis: `from the backup's ${Math.round(bytes / 1024 / 1024)} MB` };
}

export function downtimeLine(label: string, estimate: { seconds: number; basis: string } | undefined, sessions: number | undefined, until = 'is handed back'): string {
  const long = estimate ? `for about ${estimate.seconds} s (${estimate.basis})` : `until it ${until}`;
  return `${label} stops ${long}; ${sessionsCut(sessions)}`;
}

export function sessionsCut(sessions: number | undefined): string {
  return sessions === undefined ? 'connected sessions (if any) will be cut' : sessions === 0 ? 'no session is connected' : `${sessions} session${sessions === 1 ? ' is' : 's are'} connected and will be cut`;
}
