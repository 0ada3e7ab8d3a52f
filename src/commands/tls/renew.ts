// `pgmam tls renew <app>…|--all` and `pgmam tls enable <app>`: a new server certificate of the
// cluster's own from pgmam's CA, taken up by a reload (PostgreSQL reloads its TLS files on SIGHUP: no
// restart, the same postmaster); enable also writes ssl = on into pgmam's conf.d and the TLS rules
// into pg_hba.conf, for clusters made before pgmam had TLS.
import { z } from 'zod';
import { notManaged } from '../../guards/cluster.js';
import type { Context } from '../../context.js';
import { UsageError } from '../../errors.js';
import { clusterIsNotLocked } from '../../guards/cluster.js';
import { runsAsRoot } from '../../guards/host.js';
import { hostFqdn, lockFacts, managedClusters, postgresOwner, readClusters } from '../../host/facts.js';
import { readClusterTls, type ClusterTls } from '../../host/tls.js';
import { nameArg, nameSchema, namesArg } from '../../names.js';
import * as pg from '../../pg/commands.js';
import { flag, type CliBatch } from '../../plan/cli-spec.js';
import { batchTargets, runBatch, runFlagsSchema, type CommandModule, type PlanBody, type PlanEnv, type Recovery } from '../../plan/command.js';
import { fail, pass, required, type Guard, type Step } from '../../plan/types.js';
import { renderArgv } from '../../runner/types.js';
import type { Journal } from '../../state/journal.js';
import type { LockHolder } from '../../state/lock.js';
import type { ManagedCluster } from '../../state/store.js';
import { issueCertificateStep, tlsRulesStep } from '../../steps/tls.js';

export const tlsRenewOptionsSchema = runFlagsSchema.extend({ name: nameSchema, enable: z.boolean() });
export type TlsRenewOptions = z.infer<typeof tlsRenewOptionsSchema>;

export interface TlsRenewFacts {
  uid: number;
  record: ManagedCluster | undefined;
  running: boolean;
  tls: ClusterTls | undefined;
  owner: { uid: number; gid: number } | undefined;
  fqdn: string | undefined;
  lock: { holder: LockHolder | undefined; alive: boolean };
}

export async function gatherTlsRenew(ctx: Context, o: TlsRenewOptions): Promise<TlsRenewFacts> {
  const [managed, clusters, lock] = await Promise.all([managedClusters(ctx), readClusters(ctx.runner), lockFacts(ctx, o.name)]);
  const record = managed.records.find((r) => r.name === o.name);
  const cluster = record && clusters.find((c) => c.name === record.name && c.version === record.version);
  return {
    uid: ctx.host.uid,
    record,
    running: Boolean(cluster?.running),
    tls: record ? await readClusterTls(ctx, record, ctx.clock.now()) : undefined,
    owner: await postgresOwner(ctx.fs),
    fqdn: ctx.host.uid === 0 ? await hostFqdn(ctx.runner, ctx.host.name) : undefined,
    lock,
  };
}

export function tlsRenewGuards(f: TlsRenewFacts, o: TlsRenewOptions): Guard[] {
  return [
    runsAsRoot(f.uid, o.enable ? 'enable TLS' : 'renew certificates'),
    { id: 'cluster-is-managed', check: () => (f.record ? pass : notManaged(o.name)) },
    { id: 'postgres-user-exists', check: () => (f.owner ? pass : fail('the host has no postgres user')) },
    { id: 'tls-is-enabled', check: () => (o.enable || !f.record || f.tls?.enabled ? pass : fail(`${f.record.cluster} has no TLS of pgmam's yet`, `pgmam tls enable ${o.name}`)) },
    clusterIsNotLocked(o.name, f.lock.holder, f.lock.alive),
  ];
}

export const tlsRenewJournalSchema = z.object({ enable: z.boolean() });
export type TlsRenewJournal = z.infer<typeof tlsRenewJournalSchema>;

/** Each step can run again: a re-run issues another certificate and reloads. */
function renewSteps(r: ManagedCluster, enable: boolean, running: boolean, owner: { uid: number; gid: number }, fqdn: string | undefined, env: Pick<PlanEnv, 'config' | 'paths' | 'host'>): Step[] {
  const id = { version: r.version, name: r.name };
  const reload = pg.controlCluster(id, 'reload', env.host.systemd);
  const steps: Step[] = [issueCertificateStep({ id, config: env.config, hostName: env.host.name, fqdn, owner })];
  // ssl and its files are reloadable settings (PostgreSQL 10 on): the running postmaster stays.
  if (running) steps.push({ id: 'reload-cluster', title: `reload ${r.cluster}: it serves the new certificate (no restart)`, effect: 'write', run: reload, show: [`$ ${renderArgv(reload.argv)}`] });
  if (enable) steps.push(tlsRulesStep(id, env.paths.stateDir, env.config['tls-required'] === 'yes', env.host.systemd));
  return steps;
}

export function planTlsRenew(f: TlsRenewFacts, o: TlsRenewOptions, env: PlanEnv): PlanBody {
  const r = required(f.record, 'the record');
  return {
    target: r.cluster,
    steps: renewSteps(r, o.enable, f.running, required(f.owner, 'the postgres user'), f.fqdn, env),
    journal: { rerun: `pgmam tls ${o.enable ? 'enable' : 'renew'} ${o.name} --yes`, data: { enable: o.enable } },
  };
}

/** An interrupted renew or enable is finished: its steps again, with a certificate of its own. */
export async function recoverTlsRenew(ctx: Context, j: Journal, d: TlsRenewJournal): Promise<Recovery> {
  const r = (await managedClusters(ctx)).records.find((x) => x.name === j.name);
  if (!r) return { way: 'rolled-back', steps: [] };
  const running = Boolean((await readClusters(ctx.runner)).find((c) => c.name === r.name && c.version === r.version)?.running);
  const owner = required(await postgresOwner(ctx.fs), 'the postgres user');
  const env = { config: ctx.config, paths: ctx.paths, host: ctx.host };
  return { way: 'finished', steps: renewSteps(r, d.enable, running, owner, await hostFqdn(ctx.runner, ctx.host.name), env), finished: `the interrupted tls ${d.enable ? 'enable' : 'renew'} of ${r.cluster} is finished\n` };
}

export const tlsRenewTargetCommand: CommandModule<TlsRenewOptions, TlsRenewFacts, TlsRenewJournal> = {
  spec: {
    name: 'tls renew',
    summary: "a new server certificate from pgmam's CA, served after a reload (no restart)",
    options: tlsRenewOptionsSchema,
    examples: [],
    target: (o) => o.name,
    destructive: false,
    journalCommand: (o) => (o.enable ? 'tls enable' : 'tls renew'),
    settlesAlso: (o) => [o.enable ? 'tls renew' : 'tls enable'],
    journal: tlsRenewJournalSchema,
  },
  gather: gatherTlsRenew,
  guards: tlsRenewGuards,
  plan: planTlsRenew,
  recover: recoverTlsRenew,
  report: async (ctx, o, f) => {
    const r = f.record;
    if (r) ctx.io.out(`${r.cluster}: ${o.enable ? 'TLS enabled' : 'certificate renewed'}${f.running ? ' (reloaded, not restarted)' : ''}\n`);
  },
};

/** `tls enable <app>`: one cluster, with its plan shown. */
export const tlsEnableCommand: CommandModule<TlsRenewOptions, TlsRenewFacts, TlsRenewJournal> = {
  ...tlsRenewTargetCommand,
  spec: {
    ...tlsRenewTargetCommand.spec,
    name: 'tls enable',
    summary: "TLS for a cluster made before pgmam had it: its own certificate, ssl = on in pgmam's conf.d, pg_hba.conf refusing TCP without TLS (a reload)",
    cli: { args: [{ syntax: '<app>', key: 'name' }], input: z.object({ name: nameArg('app name') }).transform((x) => ({ ...x, enable: true })) },
    examples: ['pgmam tls enable app1 --dry-run', 'pgmam tls enable app1'],
    // Clients that connect without TLS are refused from then on (tls-required = yes): confirm.
    destructive: true,
  },
};

interface TlsRenewBatchOptions {
  names: string[];
  all: boolean;
  dryRun: boolean;
  json: boolean;
}

export const tlsRenewBatch: CliBatch<TlsRenewBatchOptions> = {
  name: 'tls renew',
  summary: "new server certificates from pgmam's CA, served after a reload (no restart)",
  examples: ['pgmam tls renew app1', 'pgmam tls renew --all'],
  cli: {
    args: [{ syntax: '[apps...]', key: 'names', help: 'managed apps (or --all)' }],
    flags: [{ flags: '--all', help: 'every managed cluster with pgmam’s TLS' }],
    input: z.object({ names: namesArg('app name'), all: flag }).transform((o) => {
      if (!o.names.length && !o.all) throw new UsageError('tls renew needs app names or --all');
      if (o.names.length && o.all) throw new UsageError('tls renew takes app names or --all, not both');
      return o;
    }),
  },
  run: async (ctx, o) => {
    const { names: all, managed } = await batchTargets(ctx, 'tls renew', o, 'renew certificates', { replicas: true });
    // --all: the clusters that have pgmam's TLS (tls enable gives it to the others).
    const names = o.all ? (await Promise.all(managed.map(async (r) => ((await readClusterTls(ctx, r, ctx.clock.now())).enabled ? [r.name] : [])))).flat() : all;
    if (!names.length) return ctx.io.out('no cluster has pgmam’s TLS yet (pgmam tls enable <app>)\n');
    const runs = names.map((name) => ({ name, enable: false, dryRun: o.dryRun, json: o.json, yes: true, keepOnError: false }));
    await runBatch(ctx, tlsRenewTargetCommand, runs);
  },
};
