// `pgmam resetwal <app>`: the last resort for a stopped cluster that cannot start because of
// damaged WAL — the most heavily guarded command: a full copy first, then pg_resetwal, a new base.
import { relayReplicasSteps, replicaViews, stopReplicasSteps, type ReplicaView } from '../../steps/replication.js';
import { notManaged } from '../../guards/cluster.js';
import { replicaIsRefused } from '../../guards/replica.js';
import { archiveMax, parseInfo } from '../../pgbackrest/info.js';
import { retentionOf } from '../../config/schema.js';
import { z } from 'zod';
import { nameSchema, nameArg } from '../../names.js';
import type { Context } from '../../context.js';
import { clusterIsNotLocked } from '../../guards/cluster.js';
import { enoughDisk, runsAsRoot } from '../../guards/host.js';
import { lockFacts, managedClusters, postgresOwner, readClusters } from '../../host/facts.js';
import * as pgbr from '../../pgbackrest/commands.js';
import { stanzaScope } from '../../pgbackrest/commands.js';
import type { HostCluster } from '../../pg/clusters.js';
import * as pg from '../../pg/commands.js';
import { parseControlData, parseResetPreview, resetStartSegment } from '../../pg/controldata.js';
import { runFlagsSchema, type CommandModule, type PlanBody, type PlanEnv, type Recovery } from '../../plan/command.js';
import { fail, pass, required, type Guard, type Step } from '../../plan/types.js';
import { stamp, startClusterStep, waitPromotedStep, type LiveCluster } from '../../restore/steps.js';
import { stepName, type Journal } from '../../state/journal.js';
import type { LockHolder } from '../../state/lock.js';
import { preservedSchema, readRecord, updateManaged, type ManagedCluster, type Preserved } from '../../state/store.js';
import { backupAndMark, checkArchivingStep } from '../../steps/stanza.js';
import { alignStanzaFileStep } from '../../steps/stanza-file.js';

export const resetwalOptionsSchema = runFlagsSchema.extend({ name: nameSchema });
export type ResetwalOptions = z.infer<typeof resetwalOptionsSchema>;

/** What a resetwal records: the full copy it makes first. */
export const resetwalJournalSchema = z.object({ version: z.string(), dataDir: z.string(), copy: preservedSchema, nextWal: z.string().optional() });
export type ResetwalJournal = z.infer<typeof resetwalJournalSchema>;

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

export interface ResetwalFacts {
  uid: number;
  now: Date;
  record: ManagedCluster | undefined;
  cluster: HostCluster | undefined;
  lock: { holder: LockHolder | undefined; alive: boolean };
  lastStart: { failed: boolean; line?: string };
  /** pg_control's state; pg_resetwal refuses a cluster that was not shut down cleanly unless forced. */
  force: boolean;
  /** pg_resetwal --dry-run's output. */
  preview: string;
  /** The newest WAL segment the app's stanza has archived (pgbackrest info). */
  archiveMax: string | undefined;
  sizeBytes: number;
  freeBytes: number | undefined;
  /** Its replicas: they cannot follow a reset; laid down again from the new full backup. */
  replicas: ReplicaView[];
  postgres: { uid: number; gid: number } | undefined;
}

export async function gatherResetwal(ctx: Context, o: ResetwalOptions): Promise<ResetwalFacts> {
  const runner = ctx.runner;
  const [managed, clusters, lock, postgres] = await Promise.all([managedClusters(ctx), readClusters(runner), lockFacts(ctx, o.name), postgresOwner(ctx.fs)]);
  const record = managed.records.find((r) => r.name === o.name);
  const cluster = record && clusters.find((c) => c.name === o.name && c.version === record.version);
  const root = ctx.host.uid === 0;
  const f: ResetwalFacts = { uid: ctx.host.uid, now: ctx.clock.now(), record, cluster, lock, lastStart: { failed: false }, force: false, preview: '', archiveMax: undefined, sizeBytes: 0, freeBytes: undefined, replicas: record && cluster ? replicaViews(managed.records, clusters, record, cluster.port) : [], postgres };
  if (!record || !cluster?.dataDir || !root) return f;
  const dataDir = cluster.dataDir;
  const log = cluster.logFile ? ((await ctx.fs.readText(cluster.logFile).catch(() => undefined)) ?? '') : '';
  f.lastStart = lastStartFailed(log);
  if (!cluster.running) {
    const control = await runner.run(pg.pgControlData(record.version, dataDir), { check: false });
    const state = control.exitCode === 0 ? parseControlData(control.stdout).state : undefined;
    f.force = state !== 'shut down' && state !== 'shut down in recovery';
    f.preview = (await runner.run(pg.resetWal(record.version, dataDir, { dryRun: true, force: f.force }), { check: false })).stdout;
    const info = await runner.run(pgbr.info(stanzaScope(record.stanza, ctx.paths.stanzaDir)), { check: false });
    const stanza = info.exitCode === 0 ? parseInfo(info.stdout)[0] : undefined;
    f.archiveMax = stanza ? archiveMax(stanza)?.wal : undefined;
  }
  const files = await ctx.fs.walk(dataDir);
  f.sizeBytes = (await Promise.all(files.map(async (x) => (await ctx.fs.stat(`${dataDir}/${x}`))?.size ?? 0))).reduce((a, b) => a + b, 0);
  f.freeBytes = await ctx.fs.freeBytes(dataDir).catch(() => undefined);
  return f;
}

export function resetwalGuards(f: ResetwalFacts, o: ResetwalOptions, env: Pick<PlanEnv, 'config'>): Guard[] {
  const label = f.record?.cluster ?? o.name;
  const { record: rec, cluster } = f;
  return [
    runsAsRoot(f.uid),
    replicaIsRefused(f.record, 'reset: pgmam replica rebuild lays it down again from its primary'),
    { id: 'cluster-is-managed', check: () => (!rec ? notManaged(label) : !cluster ? fail(`${label} is managed by pgmam but the host has no such cluster`) : pass) },
    clusterIsNotLocked(o.name, f.lock.holder, f.lock.alive),
    ...(rec && cluster?.dataDir && f.uid === 0
      ? [
          { id: 'cluster-is-stopped', check: () => (cluster.running ? fail(`${label} is running: pg_resetwal is only for a cluster that cannot start`) : pass) },
          {
            id: 'last-start-failed',
            check: () =>
              cluster.running || f.lastStart.failed
                ? pass
                : fail(`the last start of ${label} did not fail (${cluster.logFile}): pgmam resets WAL only for a cluster whose start fails`, `try pg_ctlcluster ${rec.version} ${o.name} start first`),
          },
          enoughDisk([{ path: cluster.dataDir, freeBytes: f.freeBytes === undefined ? undefined : f.freeBytes - f.sizeBytes }], env.config['min-free-mb']),
        ]
      : []),
  ];
}

export function planResetwal(f: ResetwalFacts, o: ResetwalOptions, env: PlanEnv): PlanBody {
  const version = required(f.record?.version, `the pgmam record of ${o.name}`);
  const id = { version, name: o.name };
  const label = pg.clusterLabel(id);
  const dataDir = required(f.cluster?.dataDir, `the data directory of ${o.name} (pg_lsclusters)`);
  const live: LiveCluster = { id, port: f.cluster?.port ?? 0, dataDir, logFile: f.cluster?.logFile };
  // After a failover the cluster's name is not its stanza's.
  const scope = stanzaScope(f.record?.stanza ?? o.name, env.paths.stanzaDir);
  const copy: Preserved = { path: `${dataDir}.pre-resetwal-${stamp(f.now)}`, reason: 'resetwal', createdAt: f.now.toISOString() };
  const nextWal = resetStartSegment(parseResetPreview(f.preview), f.archiveMax);
  const steps: Step[] = [
    ...stopReplicasSteps(f.replicas, env.host.systemd),
    {
      id: 'copy-datadir',
      title: `copy ${dataDir} in full to ${copy.path} (preserved, never deleted by pgmam)`,
      effect: 'write',
      run: async (c) => {
        await c.runner.run({ argv: ['cp', '-a', dataDir, copy.path], effect: 'write' });
        await updateManaged(c.fs, c.paths.clustersDir, o.name, (r) => ({ ...r, preserved: [...r.preserved, copy] }));
      },
      show: [`$ cp -a ${dataDir} ${copy.path}`],
    },
    {
      id: 'reset-wal',
      title: `run pg_resetwal${f.force ? ' -f (the cluster was not shut down cleanly)' : ''} on ${label}${nextWal ? `, starting after the archive's newest segment (${nextWal})` : ''}`,
      effect: 'destroy',
      run: pg.resetWal(version, dataDir, { dryRun: false, force: f.force, nextWal }),
    },
    startClusterStep(live, env.host.systemd, env.config['recovery-timeout']),
    waitPromotedStep(live, env.config['recovery-timeout']),
    // The WAL history is broken: earlier backups cannot be replayed into the reset cluster.
    alignStanzaFileStep(f.record?.stanzaFile ?? `${env.paths.stanzaDir}/${o.name}.conf`, o.name, retentionOf(env.config)),
    ...Object.values(backupAndMark(scope, o.name, 'a new full backup (the WAL history was reset)', retentionOf(env.config), { version, port: live.port })),
    checkArchivingStep(scope, scope.stanza ?? o.name),
    ...relayReplicasSteps(f.replicas, scope.stanza ?? o.name, scope.configIncludePath, f.postgres ?? { uid: 0, gid: 0 }, env.host.systemd, env.config['recovery-timeout']),
  ];
  // Down already (it cannot start): it stays down while its data directory is copied (the copy's size at the restore rate) and reset.
  const copySeconds = Math.ceil(f.sizeBytes / (100 * 1024 * 1024)) + 5;
  return {
    target: label,
    journal: { rerun: `pgmam resetwal ${o.name} --yes`, data: { version, dataDir, copy, nextWal } satisfies ResetwalJournal },
    downtime: `${label} is down (it cannot start) and stays down for about ${copySeconds} s more (a copy of its ${Math.round(f.sizeBytes / 1024 / 1024)} MB data directory, pg_resetwal, start); no session is connected`,
    steps,
    notes: [
      `the last start failed with: ${f.lastStart.line ?? '(unknown)'}`,
      'pg_resetwal --dry-run says:',
      ...f.preview.trim().split('\n').map((l) => `  | ${l}`),
      ...(f.replicas.length ? [`its replicas ${f.replicas.map((r) => r.name).join(', ')} are stopped first and laid down again from the new full backup (they cannot follow a reset)`] : []),
      'consequences: transactions after the last checkpoint may be lost, and the result may be inconsistent;',
      `afterwards, dump and restore is recommended: pgmam export ${o.name} && pgmam initcluster ${o.name}_fixed --from-export <that export>`,
    ],
    failureHint: (i) => (i === 0 ? ['nothing was changed'] : [`a full copy of the data directory of before is at ${copy.path}`]),
  };
}

/**
 * An interrupted resetwal: killed during the copy, the unfinished copy is removed (the data directory
 * itself was not touched) and the command runs again; after it, the run is finished — pg_resetwal
 * again if it was interrupted, start, a new full backup.
 */
export async function recoverResetwal(ctx: Context, j: Journal, d: ResetwalJournal): Promise<Recovery> {
  const cluster = (await readClusters(ctx.runner)).find((c) => c.name === j.name && c.version === d.version);
  const running = Boolean(cluster?.running);
  if (j.at <= j.steps.indexOf('copy-datadir'))
    return {
      way: 'rolled-back',
      steps: [
        {
          id: 'remove-unfinished-copy',
          title: `remove the unfinished copy ${d.copy.path} (${d.dataDir} itself was not touched)`,
          effect: 'destroy',
          run: async (c) => {
            await c.fs.rm(d.copy.path, { recursive: true });
            await updateManaged(c.fs, c.paths.clustersDir, j.name, (r) => ({ ...r, preserved: r.preserved.filter((p) => p.path !== d.copy.path) }));
          },
          show: [`rm -rf ${d.copy.path}`],
        },
      ],
    };
  const live: LiveCluster = { id: { version: d.version, name: j.name }, port: cluster?.port ?? 0, dataDir: d.dataDir, logFile: cluster?.logFile };
  const scope = stanzaScope(j.name, ctx.paths.stanzaDir);
  return {
    way: 'finished',
    finished: `${j.name}: the interrupted resetwal is finished (started, new full backup)\n`,
    steps: [
      {
        id: 'record-copy',
        title: `record ${d.copy.path} as preserved, unless recorded`,
        effect: 'write',
        run: async (c) => {
          const rec = await readRecord(c.fs, c.paths.clustersDir, j.name);
          if (rec && !rec.preserved.some((p) => p.path === d.copy.path)) await updateManaged(c.fs, c.paths.clustersDir, j.name, (r) => ({ ...r, preserved: [...r.preserved, d.copy] }));
        },
      },
      // Killed during pg_resetwal: run it again (forced: its first run may have left pg_control half-updated).
      ...(stepName(j) === 'reset-wal' && !running ? [{ id: 'reset-wal', title: `run pg_resetwal -f on ${j.target} again`, effect: 'destroy' as const, run: pg.resetWal(d.version, d.dataDir, { dryRun: false, force: true, nextWal: d.nextWal }) }] : []),
      ...(running ? [] : [startClusterStep(live, ctx.host.systemd, ctx.config['recovery-timeout'])]),
      waitPromotedStep(live, ctx.config['recovery-timeout']),
      alignStanzaFileStep(`${ctx.paths.stanzaDir}/${j.name}.conf`, j.name, retentionOf(ctx.config)),
      ...Object.values(backupAndMark(scope, j.name, 'a new full backup (the WAL history was reset)', retentionOf(ctx.config), { version: d.version, port: live.port })),
      checkArchivingStep(scope, j.name),
    ],
  };
}

async function reportResetwal(ctx: Context, o: ResetwalOptions, _f: ResetwalFacts, plan: { target: string; journal?: { data?: object } | false }): Promise<void> {
  const copy = (plan.journal && (plan.journal.data as ResetwalJournal | undefined)?.copy.path) ?? '?';
  ctx.io.out(
    o.json
      ? `${JSON.stringify({ cluster: plan.target, preserved: copy })}\n`
      : `${plan.target} starts again after pg_resetwal; a full copy of before is at ${copy}; a new full backup is taken.\n` +
          `next: check the data (transactions after the last checkpoint may be lost), then dump and restore: pgmam export ${o.name} && pgmam initcluster ${o.name}_fixed --from-export <dir>\n`,
  );
}

export const resetwalCommand: CommandModule<ResetwalOptions, ResetwalFacts, ResetwalJournal> = {
  spec: {
    name: 'resetwal',
    summary: 'guarded pg_resetwal of a stopped cluster whose start fails, after a full copy of its data directory',
    cli: { args: [{ syntax: '<app>', key: 'name' }], input: z.object({ name: nameArg('cluster name') }) },
    options: resetwalOptionsSchema,
    examples: ['pgmam resetwal app1 --dry-run', 'pgmam resetwal app1          # type the name to confirm, or --yes'],
    target: (o) => o.name,
    destructive: true,
    typeToConfirm: (o) => o.name,
    journal: resetwalJournalSchema,
  },
  gather: gatherResetwal,
  guards: resetwalGuards,
  plan: planResetwal,
  recover: recoverResetwal,
  report: reportResetwal,
};
