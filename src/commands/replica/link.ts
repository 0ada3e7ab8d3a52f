// What replica create, rebuild, promote and drop share: the app's primary as the replica sees it, the
// link between them (slot, role, password file), the standby's settings and the replica's record.
import type { Context, Paths } from '../../context.js';
import type { Config } from '../../config/schema.js';
import { readClusterTls } from '../../host/tls.js';
import type { HostCluster } from '../../pg/clusters.js';
import * as pg from '../../pg/commands.js';
import { COPIED_SETTINGS, passFilePath, replicationRole, slotName, type StandbySpec } from '../../pg/replication.js';
import { stanzaScope } from '../../pgbackrest/commands.js';
import { fail, pass, type Guard, type Step } from '../../plan/types.js';
import type { Runner } from '../../runner/types.js';
import { currentPrimary, recordPath, writeManaged, type ManagedCluster } from '../../state/store.js';
import { caCertPath } from '../../steps/tls.js';
import type { ReplicaLink } from '../../steps/replication.js';

export interface PrimaryFacts {
  /** The record the argument names (before any failover). */
  named: ManagedCluster | undefined;
  /** The app's primary now (after a failover, the promoted cluster). */
  record: ManagedCluster | undefined;
  cluster: HostCluster | undefined;
  /** Its values of the settings a standby needs at least as high. */
  copied: Record<string, string>;
  tls: boolean;
  caExists: boolean;
  /** Slots on the primary (pgmam's and others). */
  slots: string[];
  /** Its system identifier: a replica's data directory carries it (the journal's identity check). */
  systemId: string | undefined;
}

/** Nothing known of a primary (none to follow). */
export const noPrimary = (): PrimaryFacts => ({ named: undefined, record: undefined, cluster: undefined, copied: {}, tls: false, caExists: false, slots: [], systemId: undefined });

export async function gatherPrimary(ctx: Context, runner: Runner, app: string, records: ManagedCluster[], clusters: HostCluster[]): Promise<PrimaryFacts> {
  const named = records.find((r) => r.name === app);
  const record = named && named.role !== 'replica' ? currentPrimary(records, app) : undefined;
  const cluster = record && clusters.find((c) => c.name === record.name && c.version === record.version);
  const f: PrimaryFacts = { ...noPrimary(), named, record, cluster };
  if (!record || !cluster) return f;
  f.tls = (await readClusterTls(ctx, record, ctx.clock.now())).enabled;
  f.caExists = await ctx.fs.exists(caCertPath(ctx.config['tls-dir']));
  if (cluster.running && ctx.host.uid === 0) {
    const t = { version: record.version, port: cluster.port };
    const r = await runner.run(pg.psqlValue(t, `select name || '=' || setting from pg_settings where name in (${COPIED_SETTINGS.map((s) => pg.literal(s)).join(', ')})`), { check: false });
    if (r.exitCode === 0) for (const l of r.stdout.trim().split('\n').filter(Boolean)) f.copied[l.split('=')[0]!] = l.split('=').slice(1).join('=');
    const s = await runner.run(pg.psqlValue(t, 'select slot_name from pg_replication_slots'), { check: false });
    if (s.exitCode === 0) f.slots = s.stdout.trim().split('\n').filter(Boolean);
    const id = await runner.run(pg.psqlValue(t, 'select system_identifier from pg_control_system()'), { check: false });
    if (id.exitCode === 0) f.systemId = id.stdout.trim() || undefined;
  }
  return f;
}

/** The app exists, is not a replica itself, and its primary runs with pgmam's TLS. */
export function primaryGuards(p: PrimaryFacts, app: string): Guard[] {
  return [
    {
      id: 'app-has-a-primary',
      check: () =>
        !p.named
          ? fail(`${app} is not an app managed by pgmam`, 'see pgmam list')
          : p.named.role === 'replica'
            ? fail(`${p.named.cluster} is a replica: a replica of a replica is not made`, `name its app instead: pgmam replica create ${p.named.stanza}`)
            : !p.record || p.record.role === 'replica' || p.record.fenced
              ? fail(`${app} has no primary pgmam can use${p.record?.fenced ? ` (${p.record.cluster} is fenced: ${p.record.fenced.reason})` : ''}`)
              : !p.cluster
                ? fail(`${p.record.cluster} is managed by pgmam but the host has no such cluster`)
                : pass,
    },
    {
      id: 'primary-runs',
      check: () => (p.cluster && !p.cluster.running ? fail(`${p.record?.cluster} is not running: the replica's slot, role and rule are made on it`, `pg_ctlcluster ${p.record?.version} ${p.record?.name} start`) : pass),
    },
    {
      id: 'primary-has-tls',
      check: () =>
        p.cluster && (!p.tls || !p.caExists)
          ? fail(`${p.record?.cluster} has no TLS of pgmam's: a replica streams only over TLS verified against pgmam's CA`, `pgmam tls enable ${p.record?.name}`)
          : pass,
    },
  ];
}

export const slotIsFree = (p: PrimaryFacts, slot: string): Guard => ({
  id: 'slot-is-free',
  check: () => (p.slots.includes(slot) ? fail(`${p.record?.cluster} already has a replication slot ${slot}`, `a replica of that name existed: pgmam replica drop it, or drop the slot (select pg_drop_replication_slot('${slot}'))`) : pass),
});

export function replicaLink(primary: ManagedCluster, port: number, replica: string, stateDir: string): ReplicaLink {
  return { primary: { id: { version: primary.version, name: primary.name }, port }, replica, slot: slotName(replica), role: replicationRole(replica), passFile: passFilePath(stateDir, replica) };
}

export function standbySpec(l: ReplicaLink, primary: ManagedCluster, dataDir: string, copied: Record<string, string>, paths: Paths, config: Config): StandbySpec {
  return {
    primaryPort: l.primary.port,
    role: l.role,
    slot: l.slot,
    passFile: l.passFile,
    caFile: caCertPath(config['tls-dir']),
    replica: l.replica,
    stanza: primary.stanza,
    dataDir,
    configIncludePath: stanzaScope(primary.stanza, paths.stanzaDir).configIncludePath,
    copied,
  };
}

/** The replica's record: the app's stanza (never its own), its primary as parent, the link. */
export function recordReplicaStep(id: pg.ClusterId, primary: ManagedCluster, l: ReplicaLink, createdAt: string, clustersDir: string, keep?: ManagedCluster): Step {
  const rec: ManagedCluster = {
    format: 1,
    cluster: pg.clusterLabel(id),
    name: id.name,
    version: id.version,
    role: 'replica',
    parent: primary.name,
    stanza: primary.stanza,
    stanzaFile: primary.stanzaFile,
    repoPath: primary.repoPath,
    createdAt: keep?.createdAt ?? createdAt,
    syncedAt: null,
    preserved: keep?.preserved ?? [],
    timelines: [],
    backupMark: null,
    repoMarks: {},
    dropped: null,
    repos: [],
    origin: null,
    fenced: null,
    replication: { slot: l.slot, role: l.role, passFile: l.passFile },
    successor: keep?.successor ?? null,
    drill: keep?.drill ?? null,
  };
  return {
    id: 'record-replica',
    title: `record ${rec.cluster} as a replica of ${primary.cluster}`,
    effect: 'write',
    run: (ctx) => writeManaged(ctx.fs, clustersDir, rec),
    show: [`write ${recordPath(clustersDir, id.name)}`],
  };
}

