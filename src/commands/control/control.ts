// `pgmam start|stop|restart <app>` and `pgmam status <app>`: one managed cluster's server, through
// systemctl where systemd runs (the unit's state stays true) or pg_ctlcluster. start, stop and restart
// are locked and journaled like every changing command; stop and restart say how many sessions they
// cut, and ask on a terminal when any are connected. status only reads.
import { z } from 'zod';
import type { Context } from '../../context.js';
import { runsAsRoot } from '../../guards/host.js';
import { managedApp, resolvingApp } from '../../host/facts.js';
import { nameArg, nameSchema } from '../../names.js';
import type { HostCluster } from '../../pg/clusters.js';
import * as pg from '../../pg/commands.js';
import { runFlagsSchema, type CommandModule, type PlanBody, type PlanEnv, type Recovery } from '../../plan/command.js';
import { required, type Guard, type Step } from '../../plan/types.js';
import { clusterIsManaged } from '../../guards/cluster.js';
import { sessionsCut, sessionsOf } from '../../steps/downtime.js';
import { startClusterStep, stopClusterStep } from '../../restore/steps.js';
import type { Journal } from '../../state/journal.js';
import type { ManagedCluster } from '../../state/store.js';

export type ControlAction = 'start' | 'stop' | 'restart';

export const controlOptionsSchema = runFlagsSchema.extend({ name: nameSchema, action: z.enum(['start', 'stop', 'restart']) });
export type ControlOptions = z.infer<typeof controlOptionsSchema>;

export interface ControlFacts {
  uid: number;
  record: ManagedCluster | undefined;
  cluster: HostCluster | undefined;
  /** Client sessions connected now (undefined: stopped, or not readable). */
  sessions: number | undefined;
}

export async function gatherControl(ctx: Context, o: { name: string }): Promise<ControlFacts> {
  const { record, cluster } = await managedApp(ctx, o.name);
  return { uid: ctx.host.uid, record, cluster, sessions: await sessionsOf(ctx, cluster) };
}

export function controlGuards(f: ControlFacts, o: ControlOptions): Guard[] {
  return [runsAsRoot(f.uid, `${o.action} a cluster`), clusterIsManaged(o.name, f.record, f.cluster)];
}


/** Nothing to do (start of a running cluster, stop of a stopped one): no steps, the report says so. */
const alreadyThere = (f: ControlFacts, a: ControlAction) => (a === 'start' && f.cluster?.running) || (a === 'stop' && f.cluster && !f.cluster.running);

/** A running cluster that answers: start and restart end only once it accepts connections. */
function acceptsConnectionsStep(id: pg.ClusterId, port: number): Step {
  return {
    id: 'verify-accepting',
    title: `verify ${pg.clusterLabel(id)} accepts connections`,
    effect: 'read',
    run: { ...pg.psqlValue({ version: id.version, port }, 'select 1'), retry: { exitCode: 2, attempts: 60, delayMs: 250 } },
  };
}

export function controlSteps(id: pg.ClusterId, port: number, dataDir: string, a: ControlAction, env: Pick<PlanEnv, 'host' | 'config'>): Step[] {
  const live = { id, port, dataDir, logFile: undefined };
  // Each step leaves a cluster already in its state alone: a re-run finishes where the killed run stopped.
  const stop = stopClusterStep(live, env.host.systemd, { ifRunning: true });
  const start = startClusterStep(live, env.host.systemd, env.config['recovery-timeout'], { unlessRunning: true });
  if (a === 'stop') return [stop];
  if (a === 'start') return [start, acceptsConnectionsStep(id, port)];
  return [stop, start, acceptsConnectionsStep(id, port)];
}

export function planControl(f: ControlFacts, o: ControlOptions, env: PlanEnv): PlanBody {
  const rec = required(f.record, `the pgmam record of ${o.name}`);
  const c = required(f.cluster, `the cluster ${o.name}`);
  const id = { version: rec.version, name: rec.name };
  const label = pg.clusterLabel(id);
  if (alreadyThere(f, o.action)) return { target: label, steps: [], journal: false };
  const downtime =
    o.action === 'stop' ? `${label} stops until pgmam start ${rec.name}; ${sessionsCut(f.sessions)}` : o.action === 'restart' ? `${label} restarts (a few seconds: stop, start, accept connections); ${sessionsCut(f.sessions)}` : undefined;
  return {
    target: label,
    steps: controlSteps(id, c.port, required(c.dataDir, 'its data directory'), o.action, env),
    journal: { rerun: `pgmam ${o.action} ${rec.name} --yes`, data: { action: o.action, version: rec.version, port: c.port, dataDir: c.dataDir } },
    ...(downtime ? { downtime } : {}),
  };
}

export const controlJournalSchema = z.object({ action: z.enum(['start', 'stop', 'restart']), version: z.string(), port: z.number(), dataDir: z.string() });
export type ControlJournal = z.infer<typeof controlJournalSchema>;

/** Every step asks for a state (stopped, started, accepting): an interrupted run is finished by running them again. */
export async function recoverControl(ctx: Context, j: Journal, d: ControlJournal): Promise<Recovery> {
  const id = { version: d.version, name: j.name };
  return { way: 'finished', steps: controlSteps(id, d.port, d.dataDir, d.action, ctx), finished: `the interrupted ${d.action} of ${j.target} is finished\n` };
}

async function reportControl(ctx: Context, o: ControlOptions, f: ControlFacts, plan: { target: string; steps: Step[] }): Promise<void> {
  const done = { start: 'running', stop: 'stopped', restart: 'restarted' }[o.action];
  const text = plan.steps.length ? `${plan.target} ${done}` : `${plan.target} is already ${o.action === 'start' ? 'running' : 'stopped'}: nothing to do`;
  ctx.io.out(o.json ? `${JSON.stringify({ cluster: plan.target, action: o.action, changed: plan.steps.length > 0 })}\n` : `${text}\n`);
}

const controlModule = (action: ControlAction, summary: string): CommandModule<ControlOptions, ControlFacts, ControlJournal> => ({
  spec: {
    name: action,
    summary,
    cli: {
      args: [{ syntax: '<app>', key: 'name', help: 'managed cluster' }],
      input: z.object({ name: nameArg('cluster name') }).transform((r) => ({ ...r, action })),
      // An app named alone is its primary now (after a failover, the promoted replica).
      prepare: resolvingApp,
    },
    options: controlOptionsSchema,
    examples: [`pgmam ${action} app1`],
    target: (o) => o.name,
    // Cutting sessions is asked on a terminal (--yes without one).
    destructive: (o, f) => o.action !== 'start' && (f.sessions ?? 0) > 0,
    journal: controlJournalSchema,
    // A fenced cluster may be stopped, never started (another host continues its app).
    fencedMayRun: (o) => o.action === 'stop',
  },
  gather: gatherControl,
  guards: controlGuards,
  plan: planControl,
  recover: recoverControl,
  report: reportControl,
});

export const startCommand = controlModule('start', 'start a managed cluster (systemctl, or pg_ctlcluster without systemd) and wait until it accepts connections');
export const stopCommand = controlModule('stop', 'stop a managed cluster; on a terminal, asks first when sessions are connected');
export const restartCommand = controlModule('restart', 'restart a managed cluster; on a terminal, asks first when sessions are connected');

// ---- status

export const statusOptionsSchema = runFlagsSchema.extend({ name: nameSchema });
export type StatusOptions = z.infer<typeof statusOptionsSchema>;

export interface AppStatus {
  cluster: string;
  status: 'online' | 'down' | 'missing';
  port: number | null;
  pid: number | null;
  startedAt: string | null;
  sessions: number | null;
  inRecovery: boolean | null;
  archiving: { lastArchivedWal: string | null; lastArchivedAt: string | null; failedCount: number; failing: boolean } | null;
  /** start.conf: auto starts at boot; manual and disabled do not. */
  startAtBoot: string | null;
}

export interface StatusFacts {
  record: ManagedCluster | undefined;
  cluster: HostCluster | undefined;
  status: AppStatus | undefined;
}

export async function gatherStatus(ctx: Context, o: StatusOptions): Promise<StatusFacts> {
  const { record, cluster } = await managedApp(ctx, o.name);
  if (!record || !cluster) return { record, cluster, status: undefined };
  const s: AppStatus = { cluster: record.cluster, status: cluster.running ? 'online' : 'down', port: cluster.port, pid: null, startedAt: null, sessions: null, inRecovery: null, archiving: null, startAtBoot: cluster.startConf ?? null };
  if (cluster.running) {
    const pid = (await ctx.fs.readText(`${cluster.dataDir}/postmaster.pid`).catch(() => undefined))?.split('\n')[0];
    s.pid = pid && /^\d+$/.test(pid) ? Number(pid) : null;
    const r = await ctx.runner.run(pg.psqlValue({ version: cluster.version, port: cluster.port }, pg.STATUS_SQL), { check: false });
    if (r.exitCode === 0) {
      const [started = '', sessions = '', rec = '', wal = '', walAt = '', failed = '0', failing = 'false'] = r.stdout.trim().split('|');
      s.startedAt = started ? new Date(started.replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00')).toISOString() : null;
      s.sessions = Number(sessions);
      s.inRecovery = rec === 'true';
      s.archiving = { lastArchivedWal: wal || null, lastArchivedAt: walAt || null, failedCount: Number(failed), failing: failing === 'true' };
    }
  }
  return { record, cluster, status: s };
}

const ago = (iso: string, now: number) => {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  return s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : s < 172800 ? `${Math.round(s / 3600)} h` : `${Math.round(s / 86400)} d`;
};

export function renderStatus(s: AppStatus, now: number): string {
  if (s.status !== 'online') return `${s.cluster}: ${s.status}${s.port ? `, port ${s.port}` : ''}; ${s.startAtBoot === 'auto' ? 'starts at boot' : `does not start at boot (start.conf ${s.startAtBoot ?? '?'})`}\n`;
  const a = s.archiving;
  const archiving = !a ? 'archiving unknown' : a.failing ? `archiving FAILING (${a.failedCount} failures)` : a.lastArchivedWal ? `archived ${a.lastArchivedWal} ${a.lastArchivedAt ? `${ago(a.lastArchivedAt, now)} ago` : ''}`.trimEnd() : 'nothing archived yet';
  return `${s.cluster}: online, port ${s.port}, pid ${s.pid ?? '?'}${s.startedAt ? `, up ${ago(s.startedAt, now)}` : ''}; ${s.sessions ?? '?'} session(s); ${s.inRecovery ? 'in recovery (a standby)' : 'primary'}; ${archiving}; ${s.startAtBoot === 'auto' ? 'starts at boot' : `does not start at boot (start.conf ${s.startAtBoot ?? '?'})`}\n`;
}

export const statusCommand: CommandModule<StatusOptions, StatusFacts> = {
  spec: {
    name: 'status',
    summary: "one managed cluster's state: running, port, pid, uptime, sessions, archiving, start at boot",
    cli: {
      args: [{ syntax: '<app>', key: 'name', help: 'managed cluster' }],
      input: z.object({ name: nameArg('cluster name') }),
      prepare: resolvingApp,
    },
    options: statusOptionsSchema,
    examples: ['pgmam status app1', 'pgmam status app1 --json'],
    destructive: false,
  },
  gather: gatherStatus,
  guards: (f, o) => [clusterIsManaged(o.name, f.record, f.cluster)],
  plan: (f, o) => ({ target: f.record?.cluster ?? o.name, steps: [] }),
  report: async (ctx, o, f) => ctx.io.out(o.json ? `${JSON.stringify(f.status, null, 2)}\n` : renderStatus(required(f.status, 'its status'), ctx.clock.now().getTime())),
};
