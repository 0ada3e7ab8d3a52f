// `pgmam set-port <app> N`: a managed cluster's port and its stanza file's pg1-port changed together
// (pg_conftool alone leaves pgBackRest talking to the old port: backups and archiving checks fail),
// then a restart, a check that it answers on the new port and that archiving still works.
import { z } from 'zod';
import type { Context } from '../../context.js';
import { clusterIsManaged, clusterIsNotLocked, portIsFree } from '../../guards/cluster.js';
import { runsAsRoot } from '../../guards/host.js';
import { listeningPorts, lockFacts, portHolder, managedClusters, readClusters, resolvingApp } from '../../host/facts.js';
import { nameArg, nameSchema, portArg } from '../../names.js';
import type { HostCluster } from '../../pg/clusters.js';
import * as pg from '../../pg/commands.js';
import { stanzaScope } from '../../pgbackrest/commands.js';
import { runFlagsSchema, type CommandModule, type PlanBody, type PlanEnv, type Recovery } from '../../plan/command.js';
import { fail, pass, required, type Guard, type Step } from '../../plan/types.js';
import { startClusterStep, stopClusterStep } from '../../restore/steps.js';
import type { Journal } from '../../state/journal.js';
import type { ManagedCluster } from '../../state/store.js';
import { checkArchivingStep } from '../../steps/stanza.js';
import { pointStanzaFileStep } from '../../steps/stanza-file.js';
import { UsageError } from '../../errors.js';
import { sessionsCut, sessionsOf } from '../../steps/downtime.js';
import { parseStanzaFile } from '../../pgbackrest/config.js';

export const setPortOptionsSchema = runFlagsSchema.extend({ name: nameSchema, port: z.number().int().min(1024).max(65535) });
export type SetPortOptions = z.infer<typeof setPortOptionsSchema>;

export interface SetPortFacts {
  uid: number;
  record: ManagedCluster | undefined;
  cluster: HostCluster | undefined;
  portConfiguredBy: string[];
  /** What else holds the port (host/facts portHolder). */
  portHeldBy: string | undefined;
  sessions: number | undefined;
  /** Replicas of the app stream from its port (their primary_conninfo names it). */
  replicas: string[];
  /** pg1-port of its stanza file (a port changed by hand leaves it behind). */
  stanzaPort: number | undefined;
  lock: Awaited<ReturnType<typeof lockFacts>>;
}

export async function gatherSetPort(ctx: Context, o: SetPortOptions): Promise<SetPortFacts> {
  const [managed, clusters, listening, lock] = await Promise.all([managedClusters(ctx), readClusters(ctx.runner), listeningPorts(ctx.fs), lockFacts(ctx, o.name)]);
  const record = managed.records.find((r) => r.name === o.name);
  const cluster = record && clusters.find((c) => c.name === record.name && c.version === record.version);
  const sessions = await sessionsOf(ctx, cluster);
  return {
    uid: ctx.host.uid,
    record,
    cluster,
    portConfiguredBy: clusters.filter((c) => c.port === o.port && c.name !== o.name).map((c) => `${c.version}/${c.name}`),
    portHeldBy: await portHolder(ctx, listening, o.port),
    sessions,
    replicas: managed.records.filter((r) => r.role === 'replica' && r.parent === o.name).map((r) => r.cluster),
    stanzaPort: record ? parseStanzaFile((await ctx.fs.readText(record.stanzaFile).catch(() => undefined)) ?? '')?.port : undefined,
    lock,
  };
}

export function setPortGuards(f: SetPortFacts, o: SetPortOptions, env: Pick<PlanEnv, 'config'>): Guard[] {
  const label = f.record?.cluster ?? o.name;
  return [
    runsAsRoot(f.uid, 'change a port'),
    clusterIsManaged(o.name, f.record, f.cluster),
    { id: 'port-differs', check: () => (f.cluster && f.cluster.port === o.port && f.stanzaPort === o.port ? fail(`${label} already uses port ${o.port}, and its stanza file says so`) : pass) },
    portIsFree({ port: o.port, configuredBy: f.portConfiguredBy, heldBy: f.cluster?.port !== o.port ? f.portHeldBy : undefined, range: [env.config['port-min'], env.config['port-max']], explicit: true }),
    {
      id: 'cluster-has-no-replicas',
      check: () => (f.replicas.length ? fail(`${label} has replicas that stream from its port: ${f.replicas.join(', ')}`, `pgmam replica drop each, change the port, then pgmam replica create ${o.name}`) : pass),
    },
    {
      id: 'cluster-is-not-a-replica',
      check: () => (f.record?.role === 'replica' ? fail(`${label} is a replica: its port is named in its primary's replication setup`, `pgmam replica drop ${o.name}, then pgmam replica create ${f.record.parent ?? '<app>'} --port ${o.port}`) : pass),
    },
    clusterIsNotLocked(o.name, f.lock.holder, f.lock.alive),
  ];
}

/** Each step sets a state (the port in the configuration and the stanza file, the cluster running on it): a re-run repeats them. */
export function setPortSteps(rec: Pick<ManagedCluster, 'name' | 'version' | 'stanza' | 'stanzaFile'>, dataDir: string, port: number, running: boolean, env: Pick<PlanEnv, 'host' | 'config' | 'paths'>): Step[] {
  const id = { version: rec.version, name: rec.name };
  const live = { id, port, dataDir, logFile: undefined };
  // As postgres: /etc/postgresql/<v>/<app> is postgres's (root never writes where another user can plant a link).
  const conf: Step = { id: 'set-port', title: `set port = ${port} in ${pg.confDirOf(id)}/postgresql.conf`, effect: 'write', run: { argv: ['pg_conftool', rec.version, rec.name, 'set', 'port', String(port)], asUser: 'postgres', effect: 'write' } };
  const stanza = pointStanzaFileStep(rec.stanzaFile, { dataDir, port }, `set pg1-port=${port} in the stanza file ${rec.stanzaFile} (pgBackRest reaches the cluster there)`);
  if (!running) return [conf, stanza];
  return [
    conf,
    stanza,
    stopClusterStep(live, env.host.systemd, { ifRunning: true }),
    startClusterStep(live, env.host.systemd, env.config['recovery-timeout'], { unlessRunning: true }),
    { id: 'verify-accepting', title: `verify ${pg.clusterLabel(id)} accepts connections on port ${port}`, effect: 'read', run: { ...pg.psqlValue({ version: rec.version, port }, 'select 1'), retry: { exitCode: 2, attempts: 60, delayMs: 250 } } },
    checkArchivingStep(stanzaScope(rec.stanza, env.paths.stanzaDir), rec.stanza),
  ];
}

export function planSetPort(f: SetPortFacts, o: SetPortOptions, env: PlanEnv): PlanBody {
  const rec = required(f.record, `the pgmam record of ${o.name}`);
  const c = required(f.cluster, `the cluster ${o.name}`);
  const label = rec.cluster;
  const cut = sessionsCut(f.sessions);
  // The cluster on that port already, its stanza file behind (a port changed by hand): only the stanza file.
  if (c.port === o.port)
    return {
      target: label,
      steps: [pointStanzaFileStep(rec.stanzaFile, { dataDir: required(c.dataDir, 'its data directory'), port: o.port }, `set pg1-port=${o.port} in the stanza file ${rec.stanzaFile} (the cluster runs on it already)`), checkArchivingStep(stanzaScope(rec.stanza, env.paths.stanzaDir), rec.stanza)],
      journal: { rerun: `pgmam set-port ${rec.name} ${o.port} --yes`, data: { port: o.port, from: c.port, version: rec.version, stanza: rec.stanza, stanzaFile: rec.stanzaFile, dataDir: c.dataDir, running: false } },
    };
  return {
    target: label,
    steps: setPortSteps(rec, required(c.dataDir, 'its data directory'), o.port, c.running, env),
    journal: { rerun: `pgmam set-port ${rec.name} ${o.port} --yes`, data: { port: o.port, from: c.port, version: rec.version, stanza: rec.stanza, stanzaFile: rec.stanzaFile, dataDir: c.dataDir, running: c.running } },
    ...(c.running ? { downtime: `${label} restarts on port ${o.port} (a few seconds); ${cut}; clients must use port ${o.port} from then on` } : {}),
    notes: [`clients that name port ${c.port} must be told port ${o.port} (pgmam conninfo ${rec.name})`],
  };
}

export const setPortJournalSchema = z.object({ port: z.number(), from: z.number(), version: z.string(), stanza: z.string(), stanzaFile: z.string(), dataDir: z.string(), running: z.boolean() });
export type SetPortJournal = z.infer<typeof setPortJournalSchema>;

/** Interrupted: finished, never half-way (a port in postgresql.conf but not in the stanza file is what breaks backups). */
export async function recoverSetPort(ctx: Context, j: Journal, d: SetPortJournal): Promise<Recovery> {
  return { way: 'finished', steps: setPortSteps({ name: j.name, version: d.version, stanza: d.stanza, stanzaFile: d.stanzaFile }, d.dataDir, d.port, d.running, ctx), finished: `the interrupted set-port of ${j.target} to ${d.port} is finished\n` };
}

export const setPortCommand: CommandModule<SetPortOptions, SetPortFacts, SetPortJournal> = {
  spec: {
    name: 'set-port',
    summary: "change a managed cluster's port and its stanza file's pg1-port together, then restart it",
    cli: {
      args: [
        { syntax: '<app>', key: 'name', help: 'managed cluster' },
        { syntax: '<port>', key: 'port', help: 'the new port (1024-65535)' },
      ],
      input: z.object({ name: nameArg('cluster name'), port: portArg }).transform((r) => {
        if (r.port === undefined) throw new UsageError('set-port needs the new port');
        return { name: r.name, port: r.port };
      }),
      prepare: resolvingApp,
    },
    options: setPortOptionsSchema,
    examples: ['pgmam set-port app1 5544'],
    target: (o) => o.name,
    // A restart cuts sessions: asked on a terminal when any are connected (--yes without one).
    destructive: (_o, f) => (f.sessions ?? 0) > 0,
    journal: setPortJournalSchema,
  },
  gather: gatherSetPort,
  guards: setPortGuards,
  plan: planSetPort,
  recover: recoverSetPort,
  report: async (ctx, o, f) => ctx.io.out(o.json ? `${JSON.stringify({ cluster: f.record?.cluster, port: o.port })}\n` : `${f.record?.cluster} now uses port ${o.port}; its stanza file says so too\n`),
};
