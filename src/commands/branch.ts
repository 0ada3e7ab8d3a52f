// `pgmam branch create|sync|list|drop`: independent clusters restored from a parent's backups. The
// parent is never stopped, written to or reconfigured; its stanza never receives the branch's WAL.
import type { Context } from '../context.js';
import { UsageError } from '../errors.js';
import { clusterIsNotLocked } from '../guards/cluster.js';
import { runsAsRoot } from '../guards/host.js';
import type { HostCluster } from '../pg/clusters.js';
import { archiveCommandFor } from '../pg/archive-conf.js';
import * as pg from '../pg/commands.js';
import * as pgbr from '../pgbackrest/commands.js';
import { renderArgv } from '../runner/types.js';
import { ownerAlive } from '../state/journal.js';
import { autostartStep } from '../steps/autostart.js';
import { settleInterrupted, type RestoreJournal } from '../steps/interrupted.js';
import { executePlan, type ExecuteFlags } from '../plan/executor.js';
import { fail, pass, type Guard, type Plan, type Step } from '../plan/types.js';
import {
  archiveHistorySteps,
  backupWalArchived,
  emptySource,
  gatherSource,
  hasBackupGuard,
  selectSet,
  stanzaIsClustersOwn,
  targetGuards,
  timelineHistoryAvailable,
  type SourceFacts,
} from '../restore/source.js';
import {
  createDataDirStep,
  emptyDataDirStep,
  enableArchivingStep,
  preserveDataDirStep,
  restoreStep,
  stamp,
  startClusterStep,
  stopClusterStep,
  switchWalStep,
  verifyIsolationStep,
  verifyRecoveredStep,
  verifySourceArchiveStep,
  waitPromotedStep,
  type LiveCluster,
  type RecoveredState,
} from '../restore/steps.js';
import type { TargetTime } from '../restore/target.js';
import { ReadOnlyRunner } from '../runner/wrappers.js';
import { readLock, type LockHolder } from '../state/lock.js';
import { recordPath, updateManaged, type ManagedCluster, type Preserved } from '../state/store.js';
import { findTools, installedPgVersions, managedClusters, postgresOwner, readClusters, readMainConfig, stanzaScope } from '../host/facts.js';
import { backupFullStep, checkArchivingStep, markBackupStep } from '../steps/stanza.js';
import { gatherNewCluster, newClusterGuards, newClusterSteps, type NewClusterFacts } from '../steps/new-cluster.js';

/** Settings a branch's --conf may not set: they would break its isolation from the parent. */
export const FORBIDDEN_CONF_KEYS = [
  'port', 'archive_command', 'archive_mode', 'archive_library', 'data_directory', 'restore_command',
  'config_file', 'hba_file', 'ident_file', 'include', 'include_dir', 'include_if_exists',
];
export const BRANCH_CONF_NAME = '91-pgmam-branch.conf';

export interface BranchExtras {
  /** --post-sql DIR: its *.sql files, in name order, with their text. */
  postSql?: { dir: string; files: Array<{ name: string; text: string }> | undefined };
  /** --conf FILE: its text. */
  conf?: { file: string; text: string | undefined };
}

export interface ParentFacts extends SourceFacts {
  record: ManagedCluster | undefined;
  cluster: HostCluster | undefined;
  /** Entries of pg_tblspc: tablespaces outside the data directory. */
  tablespaces: string[];
  /** Top-level entries of the parent's archive directory before anything runs. */
  archiveDir: string | undefined;
  archiveBefore: string[];
}

async function gatherParent(ctx: Context, runner: ReadOnlyRunner, name: string, managed: ManagedCluster[], clusters: HostCluster[]): Promise<ParentFacts> {
  const record = managed.find((r) => r.name === name);
  const cluster = record && clusters.find((c) => c.name === name && c.version === record.version);
  const f: ParentFacts = { ...emptySource(), record, cluster, tablespaces: [], archiveDir: undefined, archiveBefore: [] };
  if (!record || !cluster?.dataDir || ctx.host.uid !== 0) return f;
  Object.assign(f, await gatherSource(ctx, runner, record, cluster));
  f.tablespaces = await ctx.fs.readdir(`${cluster.dataDir}/pg_tblspc`);
  const archiveId = f.stanza?.archive.at(-1)?.id;
  if (archiveId) {
    f.archiveDir = `${record.repoPath}/archive/${record.stanza}/${archiveId}`;
    f.archiveBefore = await ctx.fs.readdir(f.archiveDir);
  }
  return f;
}

async function gatherExtras(ctx: Context, o: { postSql?: string; conf?: string }): Promise<BranchExtras> {
  const extras: BranchExtras = {};
  if (o.postSql) {
    const exists = await ctx.fs.stat(o.postSql);
    const names = exists?.isDirectory ? (await ctx.fs.readdir(o.postSql)).filter((n) => n.endsWith('.sql')).sort() : undefined;
    extras.postSql = {
      dir: o.postSql,
      files: names && (await Promise.all(names.map(async (n) => ({ name: n, text: (await ctx.fs.readText(`${o.postSql}/${n}`)) ?? '' })))),
    };
  }
  if (o.conf) extras.conf = { file: o.conf, text: await ctx.fs.readText(o.conf).catch(() => undefined) };
  return extras;
}

/** `key = value` lines of a --conf file (comments and blank lines skipped). */
export function parseConfLines(text: string): Array<{ key: string; line: string }> {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((line) => ({ key: (/^([A-Za-z_][A-Za-z0-9_.]*)/.exec(line)?.[1] ?? line).toLowerCase(), line }));
}

function extrasGuards(e: BranchExtras): Guard[] {
  const guards: Guard[] = [];
  if (e.postSql)
    guards.push({
      id: 'post-sql-dir-is-readable',
      check: () => (e.postSql!.files ? pass : fail(`--post-sql ${e.postSql!.dir} is not a readable directory`)),
    });
  if (e.conf)
    guards.push({
      id: 'conf-keeps-isolation',
      check() {
        if (e.conf!.text === undefined) return fail(`cannot read --conf ${e.conf!.file}`);
        const bad = parseConfLines(e.conf!.text).filter((l) => FORBIDDEN_CONF_KEYS.includes(l.key)).map((l) => l.key);
        return bad.length ? fail(`--conf ${e.conf!.file} sets ${bad.join(', ')}, which would break the branch's isolation from its parent`, `pgmam sets those itself; remove them from ${e.conf!.file}`) : pass;
      },
    });
  return guards;
}

function tablespaceGuard(p: ParentFacts, label: string): Guard {
  return {
    id: 'parent-has-no-tablespaces',
    check: () =>
      p.tablespaces.length
        ? fail(`${label} has tablespaces outside its data directory (pg_tblspc: ${p.tablespaces.join(', ')}): a restore would write into the parent's tablespace directories`, 'branches of clusters with tablespaces are not supported yet')
        : pass,
  };
}

function parentGuards(p: ParentFacts, label: string, at: TargetTime | undefined, now: Date): Guard[] {
  const guards: Guard[] = [
    {
      id: 'parent-is-managed',
      check: () => (!p.record ? fail(`${label} is not managed by pgmam`, 'see pgmam list') : !p.cluster ? fail(`${label} is managed by pgmam but the host has no such cluster`) : pass),
    },
  ];
  if (!p.record || !p.cluster) return guards;
  guards.push(stanzaIsClustersOwn(p, label, p.record.stanza, p.cluster), timelineHistoryAvailable(p, label), tablespaceGuard(p, label));
  if (at) guards.push(...targetGuards(p, at, { label, name: p.record.name, now, online: p.cluster.running, record: p.record }));
  else guards.push(hasBackupGuard(p, label));
  guards.push(backupWalArchived(p, selectSet(p, at).set));
  return guards;
}

/** The restore of the parent's backup into the branch's data directory, archiving off. */
function restoreFromParent(p: ParentFacts, branchDataDir: string, at: TargetTime | undefined, stanzaDir: string): Step {
  const set = selectSet(p, at).set;
  const scope = stanzaScope(p.record?.stanza ?? '?', stanzaDir);
  const cmd = pgbr.restore(scope, {
    set: set?.label ?? '?',
    type: at ? 'time' : 'default',
    target: at?.text,
    targetTimeline: p.currentTimeline,
    pg1Path: branchDataDir,
    archiveModeOff: true,
  });
  return restoreStep(cmd, `restore the parent's backup ${set?.label ?? '?'} into ${branchDataDir}${at ? ` and replay to ${at.text}` : ' and replay its whole archive'}, archiving off`);
}

function postSqlStep(c: LiveCluster, e: BranchExtras, systemd: boolean): Step[] {
  const files = e.postSql?.files;
  if (!files?.length) return [];
  return [
    {
      id: 'run-post-sql',
      title: `run ${files.length} script(s) of ${e.postSql!.dir} against ${pg.clusterLabel(c.id)}`,
      effect: 'write',
      keepOnFailure: true,
      run: async (ctx) => {
        for (const f of files) {
          try {
            await ctx.runner.run(pg.psqlScript({ version: c.id.version, port: c.port }, f.text));
          } catch (err) {
            // Handed over stopped, never half-masked: the branch stays listed for inspection.
            await ctx.runner.run(pg.controlCluster(c.id, 'stop', systemd), { check: false });
            throw new Error(`${e.postSql!.dir}/${f.name} failed; the branch is left stopped and listed:\n${err instanceof Error ? err.message : String(err)}`);
          }
        }
      },
      show: files.map((f) => `  psql -f ${e.postSql!.dir}/${f.name}`),
    },
  ];
}

function confStep(confDir: string, e: BranchExtras, owner: { uid: number; gid: number }): Step[] {
  if (e.conf?.text === undefined) return [];
  const body = `# Written by pgmam from ${e.conf.file}\n${parseConfLines(e.conf.text).map((l) => l.line).join('\n')}\n`;
  return [
    {
      id: 'apply-branch-conf',
      title: `apply ${e.conf.file} (${confDir}/conf.d/${BRANCH_CONF_NAME})`,
      effect: 'write',
      run: (ctx) => ctx.fs.writeFileAtomic(`${confDir}/conf.d/${BRANCH_CONF_NAME}`, body, { mode: 0o644, owner }),
      show: [`write ${confDir}/conf.d/${BRANCH_CONF_NAME}`],
    },
  ];
}


// ---------------------------------------------------------------------------------------------- create

export interface BranchCreateOptions extends ExecuteFlags {
  parent: string;
  label: string;
  at: TargetTime | undefined;
  port: number | undefined;
  /** false: the branch does not start at boot (--no-autostart). */
  autostart?: boolean;
  postSql?: string;
  conf?: string;
  json: boolean;
}

export interface BranchCreateFacts extends NewClusterFacts {
  uid: number;
  now: Date;
  name: string;
  parent: ParentFacts;
  tools: Record<string, string | undefined>;
  postgres: { uid: number; gid: number } | undefined;
  extras: BranchExtras;
}

export async function gatherBranchCreate(ctx: Context, o: BranchCreateOptions): Promise<BranchCreateFacts> {
  const runner = new ReadOnlyRunner(ctx.runner);
  const name = `${o.parent}_${o.label}`;
  const [tools, installedPg, main, managed, postgres, clusters, extras] = await Promise.all([
    findTools(ctx),
    installedPgVersions(ctx.fs),
    readMainConfig(ctx.fs),
    managedClusters(ctx),
    postgresOwner(ctx.fs),
    readClusters(runner),
    gatherExtras(ctx, o),
  ]);
  const parent = await gatherParent(ctx, runner, o.parent, managed.records, clusters);
  const fresh = await gatherNewCluster(ctx, runner, {
    name,
    version: parent.record?.version ?? installedPg[0] ?? '15',
    port: o.port,
    installedPg,
    clusters,
    managed: managed.records,
    main,
    canProbeRepo: ctx.host.uid === 0 && Boolean(tools.pgbackrest),
  });
  return { ...fresh, uid: ctx.host.uid, now: ctx.clock.now(), name, parent, tools, postgres, extras };
}

export function branchCreateGuards(f: BranchCreateFacts, o: BranchCreateOptions, ctx: Pick<Context, 'config'>): Guard[] {
  const parentLabel = `${f.parent.record?.version ?? '15'}/${o.parent}`;
  const set = selectSet(f.parent, o.at).set;
  return [
    runsAsRoot(f.uid),
    ...parentGuards(f.parent, parentLabel, o.at, f.now),
    ...newClusterGuards(f, f.name, o.port !== undefined, ctx.config, set?.info?.size ?? 0),
    ...extrasGuards(f.extras),
  ];
}

export function planBranchCreate(f: BranchCreateFacts, o: BranchCreateOptions, ctx: Pick<Context, 'config' | 'paths' | 'host'>): Plan {
  const p = f.parent;
  const version = p.record?.version ?? '15';
  const id = { version, name: f.name };
  const port = f.port ?? 0;
  const owner = f.postgres ?? { uid: 0, gid: 0 };
  const n = newClusterSteps({ id, port, repo: f.repo, owner, config: ctx.config, paths: ctx.paths, systemd: ctx.host.systemd });
  const live: LiveCluster = { id, port, dataDir: n.dataDir, logFile: `/var/log/postgresql/postgresql-${version}-${f.name}.log` };
  const parentLive: LiveCluster | undefined = p.cluster && { id: { version, name: o.parent }, port: p.cluster.port, dataDir: p.cluster.dataDir!, logFile: p.cluster.logFile };
  const recovered: RecoveredState = { timeline: 0, lastReplayUs: undefined };
  const steps: Step[] = [
    ...archiveHistorySteps(p, p.cluster?.dataDir ?? '', stanzaScope(p.record?.stanza ?? '?', ctx.paths.stanzaDir)),
    // Makes the parent's newest commits restorable; changes no data of the parent.
    ...(p.cluster?.running && parentLive ? [switchWalStep(parentLive, ctx.config['archive-wait-timeout'])] : []),
    ...n.createRepo,
    n.createCluster,
    n.configureArchiving,
    ...confStep(n.confDir, f.extras, owner),
    n.writeStanzaFile,
    emptyDataDirStep(n.dataDir, owner),
    restoreFromParent(p, n.dataDir, o.at, ctx.paths.stanzaDir),
    verifyIsolationStep(live, { archiveCommand: archiveCommandFor(f.name, n.scope.configIncludePath) }),
    startClusterStep(live, ctx.host.systemd, ctx.config['recovery-timeout']),
    waitPromotedStep(live, ctx.config['recovery-timeout']),
    verifyRecoveredStep(live, { previousTimeline: p.currentTimeline ?? 0, targetUs: o.at?.epochUs, targetText: o.at?.text }, recovered),
    ...(p.archiveDir ? [verifySourceArchiveStep(p.archiveDir, p.archiveBefore, recovered)] : []),
    n.recordManaged({ role: 'branch', parent: o.parent, createdAt: f.now.toISOString() }),
    ...postSqlStep(live, f.extras, ctx.host.systemd),
    n.createStanza,
    enableArchivingStep(live, ctx.host.systemd, owner),
    n.checkArchiving,
    n.backupFull('the first full backup'),
    markBackupStep(n.scope, f.name, { version, port }),
    autostartStep(id, o.autostart !== false, ctx.host.systemd),
  ];
  return {
    command: 'branch create',
    target: pg.clusterLabel(id),
    locks: [f.name],
    destructive: false,
    guards: [],
    steps,
    journal: { rerun: renderArgv(['pgmam', 'branch', 'create', o.parent, '--name', o.label, ...(o.port !== undefined ? ['--port', String(o.port)] : []), ...(o.at ? ['--at', o.at.text] : []), ...(o.autostart === false ? ['--no-autostart'] : []), '--yes']), data: { ...n.journal } },
    notes: [`the parent ${o.parent} is not stopped or changed; the branch gets its own stanza ${f.name}`],
  };
}

export async function runBranchCreate(ctx: Context, o: BranchCreateOptions): Promise<void> {
  if ((await settleInterrupted(ctx, `${o.parent}_${o.label}`, 'branch create', o)) === 'dry-run') return;
  const f = await gatherBranchCreate(ctx, o);
  const plan = planBranchCreate(f, o, ctx);
  plan.guards = branchCreateGuards(f, o, ctx);
  if ((await executePlan(ctx, plan, o)) === 'dry-run') return;
  const result = { cluster: plan.target, name: f.name, parent: o.parent, port: f.port, stanza: f.name, at: o.at?.text ?? null };
  ctx.io.out(o.json ? `${JSON.stringify(result)}\n` : `branch ${plan.target} of ${o.parent} is ready on port ${f.port}${o.at ? ` (parent's state at ${o.at.text})` : ''}, with its own stanza ${f.name} and a full backup\n`);
}

/** Without a parent on a terminal: pick one of the managed clusters and a label; without a terminal: a usage error. */
export async function askParent(ctx: Context): Promise<{ parent: string; label: string }> {
  if (!ctx.io.interactive) throw new UsageError('branch create needs a parent (pgmam branch create <parent>, or pgbranch -c -a <parent> -n <label>) when there is no terminal');
  const names = (await managedClusters(ctx)).records.map((r) => r.name).sort();
  if (!names.length) throw new UsageError('no cluster is managed by pgmam yet: create one with pgmam initcluster');
  const parent = await ctx.prompter.choose('Branch which cluster?', names);
  const label = await ctx.prompter.ask('Label of the branch (the branch is <parent>_<label>):', 'dev');
  return { parent, label };
}

// ---------------------------------------------------------------------------------------------- sync

export interface BranchSyncOptions extends ExecuteFlags {
  name: string;
  postSql?: string;
  conf?: string;
  json: boolean;
}

export interface BranchSyncFacts {
  uid: number;
  now: Date;
  record: ManagedCluster | undefined;
  cluster: HostCluster | undefined;
  lock: { holder: LockHolder | undefined; alive: boolean };
  parent: ParentFacts;
  postgres: { uid: number; gid: number } | undefined;
  extras: BranchExtras;
}

export async function gatherBranchSync(ctx: Context, o: BranchSyncOptions): Promise<BranchSyncFacts> {
  const runner = new ReadOnlyRunner(ctx.runner);
  const [managed, postgres, clusters, lockHolder, extras] = await Promise.all([managedClusters(ctx), postgresOwner(ctx.fs), readClusters(runner), readLock(ctx.fs, ctx.paths.locksDir, o.name), gatherExtras(ctx, o)]);
  const record = managed.records.find((r) => r.name === o.name);
  const cluster = record && clusters.find((c) => c.name === o.name && c.version === record.version);
  const parent = record?.role === 'branch' && record.parent ? await gatherParent(ctx, runner, record.parent, managed.records, clusters) : { ...emptySource(), record: undefined, cluster: undefined, tablespaces: [], archiveDir: undefined, archiveBefore: [] };
  return { uid: ctx.host.uid, now: ctx.clock.now(), record, cluster, lock: { holder: lockHolder, alive: lockHolder ? ownerAlive(ctx.host, lockHolder) : false }, parent, postgres, extras };
}

export function branchSyncGuards(f: BranchSyncFacts, o: BranchSyncOptions): Guard[] {
  const label = `${f.record?.version ?? '15'}/${o.name}`;
  const guards: Guard[] = [
    runsAsRoot(f.uid),
    {
      id: 'target-is-a-branch',
      check: () =>
        !f.record
          ? fail(`${label} is not managed by pgmam`, 'only branches made by pgmam branch create can be synced')
          : f.record.role !== 'branch'
            ? fail(`${label} is not a branch (it is an ${f.record.role}): no bidirectional or reversed sync`, 'sync goes one way, parent → branch: pgmam branch sync <parent>_<label>')
            : !f.cluster
              ? fail(`${label} is managed by pgmam but the host has no such cluster`)
              : pass,
    },
    clusterIsNotLocked(o.name, f.lock.holder, f.lock.alive),
  ];
  if (f.record?.role === 'branch' && f.cluster) guards.push(...parentGuards(f.parent, `${f.record.version}/${f.record.parent}`, undefined, f.now));
  guards.push(...extrasGuards(f.extras));
  return guards;
}

export function planBranchSync(f: BranchSyncFacts, o: BranchSyncOptions, ctx: Pick<Context, 'config' | 'paths' | 'host'>): Plan {
  const rec = f.record;
  const p = f.parent;
  const version = rec?.version ?? '15';
  const id = { version, name: o.name };
  const dataDir = f.cluster?.dataDir ?? pg.dataDirOf(id);
  const live: LiveCluster = { id, port: f.cluster?.port ?? 0, dataDir, logFile: f.cluster?.logFile };
  const parentLive: LiveCluster | undefined = p.cluster && { id: { version, name: p.record!.name }, port: p.cluster.port, dataDir: p.cluster.dataDir!, logFile: p.cluster.logFile };
  const owner = f.postgres ?? { uid: 0, gid: 0 };
  const scope = stanzaScope(o.name, ctx.paths.stanzaDir);
  const preserved: Preserved = { path: `${dataDir}.pre-sync-${stamp(f.now)}`, reason: 'sync', createdAt: f.now.toISOString() };
  const recovered: RecoveredState = { timeline: 0, lastReplayUs: undefined };
  const clustersDir = ctx.paths.clustersDir;
  const steps: Step[] = [
    ...archiveHistorySteps(p, p.cluster?.dataDir ?? '', stanzaScope(p.record?.stanza ?? '?', ctx.paths.stanzaDir)),
    ...(p.cluster?.running && parentLive ? [switchWalStep(parentLive, ctx.config['archive-wait-timeout'])] : []),
    ...(f.cluster?.running ? [stopClusterStep(live, ctx.host.systemd)] : []),
    preserveDataDirStep(o.name, dataDir, preserved, clustersDir),
    createDataDirStep(dataDir, owner),
    ...confStep(pg.confDirOf(id), f.extras, owner),
    restoreFromParent(p, dataDir, undefined, ctx.paths.stanzaDir),
    verifyIsolationStep(live, { archiveCommand: archiveCommandFor(o.name, scope.configIncludePath) }),
    startClusterStep(live, ctx.host.systemd, ctx.config['recovery-timeout']),
    waitPromotedStep(live, ctx.config['recovery-timeout']),
    verifyRecoveredStep(live, { previousTimeline: p.currentTimeline ?? 0 }, recovered),
    ...(p.archiveDir ? [verifySourceArchiveStep(p.archiveDir, p.archiveBefore, recovered)] : []),
    ...postSqlStep(live, f.extras, ctx.host.systemd),
    {
      // Its old history conflicts with the new timeline (pgBackRest #1908, error 45): start it afresh.
      id: 'reset-branch-stanza',
      title: `reset the branch's stanza ${o.name}: its earlier backups and WAL are deleted`,
      effect: 'destroy',
      run: async (ctx) => {
        await ctx.runner.run(pgbr.stop(scope));
        await ctx.runner.run(pgbr.stanzaDelete(scope, true));
        await ctx.runner.run(pgbr.start(scope), { check: false }); // warns: stanza-delete removed the stop file
        await ctx.runner.run(pgbr.stanzaCreate(scope));
      },
      show: ['stop', 'stanza-delete --force', 'start', 'stanza-create'].map((a) => `$ runuser -u postgres -- pgbackrest --stanza=${o.name} ${a}`),
    },
    enableArchivingStep(live, ctx.host.systemd, owner),
    checkArchivingStep(scope, o.name),
    backupFullStep(scope, o.name, 'a full backup'),
    markBackupStep(scope, o.name, { version, port: live.port }),
    {
      id: 'record-sync',
      title: `record the sync of ${pg.clusterLabel(id)}`,
      effect: 'write',
      run: (c) => updateManaged(c.fs, clustersDir, o.name, (r) => ({ ...r, syncedAt: c.clock.now().toISOString() })),
      show: [`update ${recordPath(clustersDir, o.name)}`],
    },
  ];
  const preserveAt = steps.findIndex((s) => s.id === 'preserve-datadir');
  return {
    command: 'branch sync',
    target: pg.clusterLabel(id),
    locks: [o.name],
    destructive: true,
    guards: [],
    steps,
    journal: {
      rerun: `pgmam branch sync ${o.name} --yes`,
      data: { version, dataDir, preserved, online: Boolean(f.cluster?.running), previousTimeline: 0, target: null } satisfies RestoreJournal,
    },
    notes: [
      `the branch's data directory will be preserved at ${preserved.path}; its stanza ${o.name} and its backups are reset`,
      `the parent ${rec?.parent ?? '?'} is not stopped or changed`,
    ],
    failureHint: (i) =>
      i < preserveAt
        ? ['the branch\'s data directory was not touched', ...(f.cluster?.running && i > 0 ? [`start the branch again: pg_ctlcluster ${version} ${o.name} start`] : [])]
        : [`the branch's data directory of before the sync is preserved at ${preserved.path}`, `to go forward: fix the cause and run pgmam branch sync ${o.name} again`],
  };
}

export async function runBranchSync(ctx: Context, o: BranchSyncOptions): Promise<void> {
  if ((await settleInterrupted(ctx, o.name, 'branch sync', o)) === 'dry-run') return;
  const f = await gatherBranchSync(ctx, o);
  const plan = planBranchSync(f, o, ctx);
  plan.guards = branchSyncGuards(f, o);
  if ((await executePlan(ctx, plan, o)) === 'dry-run') return;
  const preserved = (await managedClusters(ctx)).records.find((r) => r.name === o.name)?.preserved.at(-1)?.path ?? null;
  ctx.io.out(o.json ? `${JSON.stringify({ cluster: plan.target, parent: f.record?.parent, preserved })}\n` : `${plan.target} now holds ${f.record?.parent}'s latest state; its earlier data directory is preserved at ${preserved}\n`);
}

// ---------------------------------------------------------------------------------------------- list

export async function runBranchList(ctx: Context, o: { json: boolean }): Promise<void> {
  const runner = new ReadOnlyRunner(ctx.runner);
  const [managed, clusters] = await Promise.all([managedClusters(ctx), readClusters(runner)]);
  const rows = managed.records
    .filter((r) => r.role === 'branch')
    .map((r) => {
      const c = clusters.find((x) => x.name === r.name && x.version === r.version);
      return { cluster: r.cluster, name: r.name, parent: r.parent, createdAt: r.createdAt, syncedAt: r.syncedAt, port: c?.port ?? null, status: c ? (c.running ? 'online' : 'down') : 'missing' };
    });
  if (o.json) return ctx.io.out(`${JSON.stringify(rows, null, 2)}\n`);
  const head = ['BRANCH', 'PARENT', 'PORT', 'STATUS', 'CREATED', 'SYNCED'];
  const table = [head, ...rows.map((r) => [r.cluster, r.parent ?? '-', String(r.port ?? '-'), r.status, r.createdAt, r.syncedAt ?? '-'])];
  const widths = head.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  ctx.io.out(`${table.map((row) => row.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n')}\n`);
}
