// `pgmam resetwal <app>`: the last resort for a stopped cluster that cannot start because of
// damaged WAL — the most heavily guarded command: a full copy first, then pg_resetwal, a new base.
import type { Context } from '../context.js';
import { clusterIsNotLocked } from '../guards/cluster.js';
import { enoughDisk, runsAsRoot } from '../guards/host.js';
import type { HostCluster } from '../pg/clusters.js';
import * as pg from '../pg/commands.js';
import { parseControlData } from '../pg/controldata.js';
import { settleInterrupted, type ResetwalJournal } from '../steps/interrupted.js';
import { executePlan, type ExecuteFlags } from '../plan/executor.js';
import { fail, pass, type Plan, type Step } from '../plan/types.js';
import { stamp, startClusterStep, waitPromotedStep, type LiveCluster } from '../restore/steps.js';
import { ReadOnlyRunner } from '../runner/wrappers.js';
import { readLock } from '../state/lock.js';
import { updateManaged, type ManagedCluster, type Preserved } from '../state/store.js';
import { ownerAlive } from '../state/journal.js';
import { managedClusters, readClusters, stanzaScope } from '../host/facts.js';
import { backupFullStep, checkArchivingStep, markBackupStep } from '../steps/stanza.js';

/** Did the last start attempt in this server log end in FATAL or PANIC (and never become ready)? */
export function lastStartFailed(log: string): { failed: boolean; line?: string } {
  const lines = log.split('\n');
  const start = lines.map((l, i) => (/LOG:\s+starting PostgreSQL/.test(l) ? i : -1)).filter((i) => i >= 0).at(-1);
  if (start === undefined) return { failed: false };
  const after = lines.slice(start);
  if (after.some((l) => /database system is ready to accept/.test(l))) return { failed: false };
  const bad = after.find((l) => /\b(FATAL|PANIC):/.test(l));
  return bad ? { failed: true, line: bad.trim() } : { failed: false };
}

export async function runResetWal(ctx: Context, o: ExecuteFlags & { name: string; json: boolean }): Promise<void> {
  const settled = await settleInterrupted(ctx, o.name, 'resetwal', o);
  if (settled === 'dry-run') return;
  if (settled === 'finished') return ctx.io.out(`${o.name}: the interrupted resetwal is finished (started, new full backup)\n`);
  const runner = new ReadOnlyRunner(ctx.runner);
  const [managed, clusters, lock] = await Promise.all([managedClusters(ctx), readClusters(runner), readLock(ctx.fs, ctx.paths.locksDir, o.name)]);
  const rec: ManagedCluster | undefined = managed.records.find((r) => r.name === o.name);
  const cluster: HostCluster | undefined = rec && clusters.find((c) => c.name === o.name && c.version === rec.version);
  const version = rec?.version ?? '15';
  const id = { version, name: o.name };
  const label = pg.clusterLabel(id);
  const dataDir = cluster?.dataDir ?? pg.dataDirOf(id);
  const root = ctx.host.uid === 0;
  const log = root && cluster?.logFile ? ((await ctx.fs.readText(cluster.logFile).catch(() => undefined)) ?? '') : '';
  const lastStart = lastStartFailed(log);
  const control = root && cluster && !cluster.running ? await runner.run(pg.pgControlData(version, dataDir), { check: false }) : undefined;
  const state = control?.exitCode === 0 ? parseControlData(control.stdout).state : undefined;
  // pg_resetwal refuses a cluster that was not shut down cleanly unless forced.
  const force = state !== 'shut down' && state !== 'shut down in recovery';
  const preview = root && cluster && !cluster.running ? await runner.run(pg.resetWal(version, dataDir, { dryRun: true, force }), { check: false }) : undefined;
  const files = root && cluster ? await ctx.fs.walk(dataDir) : [];
  const sizes = await Promise.all(files.map(async (f) => (await ctx.fs.stat(`${dataDir}/${f}`))?.size ?? 0));
  const size = sizes.reduce((a, b) => a + b, 0);
  const free = root ? await ctx.fs.freeBytes(dataDir).catch(() => undefined) : undefined;

  const live: LiveCluster = { id, port: cluster?.port ?? 0, dataDir, logFile: cluster?.logFile };
  const scope = stanzaScope(o.name, ctx.paths.stanzaDir);
  const copy: Preserved = { path: `${dataDir}.pre-resetwal-${stamp(ctx.clock.now())}`, reason: 'resetwal', createdAt: ctx.clock.now().toISOString() };
  const steps: Step[] = [
    {
      id: 'copy-datadir',
      title: `copy ${dataDir} in full to ${copy.path} (preserved, never deleted by pgmam)`,
      effect: 'write',
      run: async (c) => {
        await c.runner.run({ argv: ['cp', '-a', dataDir, copy.path], effect: 'write' });
        await updateManaged(c.fs, ctx.paths.clustersDir, o.name, (r) => ({ ...r, preserved: [...r.preserved, copy] }));
      },
      show: [`$ cp -a ${dataDir} ${copy.path}`],
    },
    { id: 'reset-wal', title: `run pg_resetwal${force ? ' -f (the cluster was not shut down cleanly)' : ''} on ${label}`, effect: 'destroy', run: pg.resetWal(version, dataDir, { dryRun: false, force }) },
    startClusterStep(live, ctx.host.systemd, ctx.config['recovery-timeout']),
    waitPromotedStep(live, ctx.config['recovery-timeout']),
    // The WAL history is broken: earlier backups cannot be replayed into the reset cluster.
    backupFullStep(scope, o.name, 'a new full backup (the WAL history was reset)'),
    markBackupStep(scope, o.name, { version, port: live.port }),
    checkArchivingStep(scope, o.name),
  ];
  const plan: Plan = {
    command: 'resetwal',
    target: label,
    locks: [o.name],
    destructive: true,
    typeToConfirm: o.name,
    journal: { rerun: `pgmam resetwal ${o.name} --yes`, data: { version, dataDir, copy } satisfies ResetwalJournal },
    guards: [
      runsAsRoot(ctx.host.uid),
      { id: 'cluster-is-managed', check: () => (!rec ? fail(`${label} is not managed by pgmam`) : !cluster ? fail(`${label} is managed by pgmam but the host has no such cluster`) : pass) },
      clusterIsNotLocked(o.name, lock, lock ? ownerAlive(ctx.host, lock) : false),
      ...(rec && cluster && root
        ? [
            { id: 'cluster-is-stopped', check: () => (cluster.running ? fail(`${label} is running: pg_resetwal is only for a cluster that cannot start`) : pass) },
            {
              id: 'last-start-failed',
              check: () =>
                cluster.running || lastStart.failed
                  ? pass
                  : fail(`the last start of ${label} did not fail (${cluster.logFile}): pgmam resets WAL only for a cluster whose start fails`, `try pg_ctlcluster ${version} ${o.name} start first`),
            },
            enoughDisk([{ path: dataDir, freeBytes: free === undefined ? undefined : free - size }], ctx.config['min-free-mb']),
          ]
        : []),
    ],
    steps,
    notes: [
      `the last start failed with: ${lastStart.line ?? '(unknown)'}`,
      'pg_resetwal --dry-run says:',
      ...(preview?.stdout ?? '').trim().split('\n').map((l) => `  | ${l}`),
      'consequences: transactions after the last checkpoint may be lost, and the result may be inconsistent;',
      `afterwards, dump and restore is recommended: pgmam export ${o.name} && pgmam initcluster ${o.name}_fixed --from-export <that export>`,
    ],
    failureHint: (i) => (i === 0 ? ['nothing was changed'] : [`a full copy of the data directory of before is at ${copy.path}`]),
  };
  if ((await executePlan(ctx, plan, o)) === 'dry-run') return;
  ctx.io.out(
    o.json
      ? `${JSON.stringify({ cluster: label, preserved: copy.path })}\n`
      : `${label} starts again after pg_resetwal; a full copy of before is at ${copy.path}; a new full backup is taken.\n` +
          `next: check the data (transactions after the last checkpoint may be lost), then dump and restore: pgmam export ${o.name} && pgmam initcluster ${o.name}_fixed --from-export <dir>\n`,
  );
}
