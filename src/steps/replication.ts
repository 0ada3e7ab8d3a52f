// The steps that tie a replica to its primary and take it apart again: on the primary its slot limit,
// the replica's replication role (password in a 0600 file of pgmam's), its pg_hba.conf rule and slot;
// on the replica its standby settings in pgmam's conf.d, the restore's own recovery settings taken
// out of postgresql.auto.conf, and the wait until it streams. Shared by replica create, rebuild and drop.
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Context } from '../context.js';
import * as pg from '../pg/commands.js';
import {
  createSlotSql, dropRoleSql, dropSlotSql, parseStandbyState, passFileLine, passwordOf, renderReplicaConf, renderSlotConf, REPLICA_CONF_NAME, restoreCommandFor,
  primaryConninfo, SLOT_CONF_NAME, STANDBY_STATE_SQL, upsertRoleSql, withoutReplicaRule, withReplicaRule, type StandbySpec,
} from '../pg/replication.js';
import { scramSha256Verifier } from '../pg/scram.js';
import type { Step } from '../plan/types.js';
import { logTail, stamp, type LiveCluster } from '../restore/steps.js';
import { parseControlData } from '../pg/controldata.js';
import { editHba } from './tls.js';
import { restore as pgbrRestore, type PgbrScope } from '../pgbackrest/commands.js';

const pgRestoreStandby = (scope: PgbrScope, dataDir: string) => pgbrRestore(scope, { set: undefined, type: 'standby', pg1Path: dataDir });
import { updateManaged, type ManagedCluster, type Preserved } from '../state/store.js';

type Owner = { uid: number; gid: number };
const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));
const indent = (text: string) => text.trimEnd().split('\n').map((l) => `  | ${l}`);

/** The primary end of one replica: who it is, where its password lives. */
export interface ReplicaLink {
  primary: { id: pg.ClusterId; port: number };
  replica: string;
  slot: string;
  role: string;
  passFile: string;
}

/** A ReplicaLink as journals keep it. */
export const linkSchema = z.object({
  primary: z.object({ id: z.object({ version: z.string(), name: z.string() }), port: z.number() }),
  replica: z.string(),
  slot: z.string(),
  role: z.string(),
  passFile: z.string(),
});

/** max_slot_wal_keep_size on the primary (a reload applies it); written only when it differs. */
export function limitSlotWalStep(p: ReplicaLink['primary'], mb: number, owner: Owner, systemd: boolean): Step {
  const file = `${pg.confDirOf(p.id)}/conf.d/${SLOT_CONF_NAME}`;
  const text = renderSlotConf(mb);
  return {
    id: 'limit-slot-wal',
    title: `let no slot keep more than ${mb} MB of WAL on ${pg.clusterLabel(p.id)} (slot-max-wal-mb)`,
    effect: 'write',
    run: async (ctx) => {
      if ((await ctx.fs.readText(file)) === text) return;
      await ctx.fs.mkdirp(`${pg.confDirOf(p.id)}/conf.d`, { mode: 0o755, owner });
      await ctx.fs.writeFileAtomic(file, text, { mode: 0o644, owner });
      await ctx.runner.run(pg.controlCluster(p.id, 'reload', systemd));
    },
    show: [`write ${file} (0644 postgres):`, ...indent(text), `$ ${pg.controlCluster(p.id, 'reload', systemd).argv.join(' ')}`],
  };
}

/**
 * A new random password into pgmam's file (0600 postgres, under a root-owned directory), and the role
 * on the primary with only its SCRAM verifier, sent on stdin: the password is in no argv, log or SQL.
 */
export function replicationRoleStep(l: ReplicaLink, owner: Owner): Step {
  return {
    id: 'create-replication-role',
    title: `a replication role ${l.role} on ${pg.clusterLabel(l.primary.id)}, its password in ${l.passFile} (0600 postgres)`,
    effect: 'write',
    run: async (ctx) => {
      const password = randomBytes(24).toString('base64url');
      const dir = l.passFile.replace(/\/[^/]+$/, '');
      await ctx.fs.mkdirp(dir, { mode: 0o755, owner: { uid: 0, gid: 0 } });
      await ctx.fs.writeFileAtomic(l.passFile, passFileLine(l.primary.port, l.role, password), { mode: 0o600, owner });
      await ctx.runner.run(pg.psqlScript({ version: l.primary.id.version, port: l.primary.port }, upsertRoleSql(l.role, scramSha256Verifier(password))));
    },
    show: [`write ${l.passFile} (0600 postgres): a new random password`, `$ psql -p ${l.primary.port} -f -  (create role ${l.role} with replication login password '<its SCRAM verifier>', on stdin)`],
    undo: { title: `drop role ${l.role} and remove ${l.passFile}`, run: (ctx) => dropRoleAndFile(ctx, l) },
  };
}

async function dropRoleAndFile(ctx: Context, l: ReplicaLink): Promise<void> {
  await ctx.runner.run(pg.psqlScript({ version: l.primary.id.version, port: l.primary.port }, dropRoleSql(l.role)));
  await ctx.fs.rm(l.passFile);
}

/** The role may connect for replication over TLS from this host only, with SCRAM. */
export function allowReplicationStep(l: ReplicaLink, systemd: boolean): Step {
  const hba = `${pg.confDirOf(l.primary.id)}/pg_hba.conf`;
  return {
    id: 'allow-replication',
    title: `let ${l.role} stream from ${pg.clusterLabel(l.primary.id)} over TLS (${hba})`,
    effect: 'write',
    run: (ctx) => editHba(ctx, l.primary.id, systemd, (t) => withReplicaRule(t, l.replica, l.role)),
    show: [`after pgmam's TLS rules in ${hba}: hostssl replication ${l.role} 127.0.0.1/32 and ::1/128 scram-sha-256`, '(reload)'],
    undo: { title: `take the rule of ${l.role} out of ${hba}`, run: (ctx) => editHba(ctx, l.primary.id, systemd, (t) => withoutReplicaRule(t, l.replica)) },
  };
}

export function createSlotStep(l: ReplicaLink): Step {
  const t = { version: l.primary.id.version, port: l.primary.port };
  return {
    id: 'create-slot',
    title: `a physical replication slot ${l.slot} on ${pg.clusterLabel(l.primary.id)}, keeping WAL from now on`,
    effect: 'write',
    run: { ...pg.psqlValue(t, createSlotSql(l.slot)), effect: 'write' },
    undo: { title: `drop slot ${l.slot}`, run: { ...pg.psqlValue(t, dropSlotSql(l.slot)), effect: 'write' } },
  };
}

/** Everything on the primary for one replica, in order (the slot by pg_basebackup -C when it is the source). */
export function primarySideSteps(l: ReplicaLink, o: { slotMaxWalMb: number; owner: Owner; systemd: boolean; createSlot: boolean }): Step[] {
  return [limitSlotWalStep(l.primary, o.slotMaxWalMb, o.owner, o.systemd), replicationRoleStep(l, o.owner), allowReplicationStep(l, o.systemd), ...(o.createSlot ? [createSlotStep(l)] : [])];
}

/** Take the replica's slot, role, rule and password file away on a running primary; each part only if there. */
export function unlinkSteps(l: ReplicaLink, primaryRuns: boolean, systemd: boolean): Step[] {
  const t = { version: l.primary.id.version, port: l.primary.port };
  const onPrimary: Step[] = primaryRuns
    ? [
        {
          id: 'drop-slot',
          title: `drop slot ${l.slot} on ${pg.clusterLabel(l.primary.id)}`,
          effect: 'destroy',
          // The walsender of a replica just stopped may hold the slot a moment longer.
          run: async (ctx) => {
            for (let i = 0; ; i++) {
              await ctx.runner.run({ ...pg.psqlValue(t, dropSlotSql(l.slot)), effect: 'write' });
              const left = (await ctx.runner.run(pg.psqlValue(t, `select count(*) from pg_replication_slots where slot_name = ${pg.literal(l.slot)}`))).stdout.trim();
              if (left === '0') return;
              if (i >= 100) throw new Error(`slot ${l.slot} is still in use on ${pg.clusterLabel(l.primary.id)} (a replica still streams through it)`);
              await sleep(100);
            }
          },
          show: [`$ psql -p ${l.primary.port} -c "${dropSlotSql(l.slot)}"  (until it is gone: at most 10 s while its walsender ends)`],
        },
        { id: 'drop-replication-role', title: `drop role ${l.role} on ${pg.clusterLabel(l.primary.id)}`, effect: 'destroy', run: pg.psqlScript(t, dropRoleSql(l.role)) },
        { id: 'remove-replication-rule', title: `take the rule of ${l.role} out of ${pg.clusterLabel(l.primary.id)}'s pg_hba.conf`, effect: 'write', run: (ctx) => editHba(ctx, l.primary.id, systemd, (x) => withoutReplicaRule(x, l.replica)) },
      ]
    : [];
  return [...onPrimary, { id: 'remove-password-file', title: `remove ${l.passFile}`, effect: 'destroy', run: (ctx) => ctx.fs.rm(l.passFile), show: [`rm -f ${l.passFile}`] }];
}

/** The standby's settings in pgmam's conf.d (never postgresql.auto.conf, which the data travels with). */
export function configureStandbyStep(id: pg.ClusterId, s: StandbySpec, owner: Owner): Step {
  const file = `${pg.confDirOf(id)}/conf.d/${REPLICA_CONF_NAME}`;
  const text = renderReplicaConf(s);
  return {
    id: 'configure-standby',
    title: `stream from port ${s.primaryPort} through slot ${s.slot}, WAL older than it from stanza ${s.stanza} (${file})`,
    effect: 'write',
    run: async (ctx) => {
      await ctx.fs.mkdirp(`${pg.confDirOf(id)}/conf.d`, { mode: 0o755, owner });
      await ctx.fs.writeFileAtomic(file, text, { mode: 0o644, owner });
    },
    show: [`write ${file} (0644 postgres):`, ...indent(text)],
  };
}

/**
 * The restore's (or the primary's) recovery settings out of postgresql.auto.conf, which is read last and
 * would override pgmam's conf.d; then standby.signal: the cluster starts as a standby.
 */
export function standbySignalStep(dataDir: string, owner: Owner): Step {
  const auto = `${dataDir}/postgresql.auto.conf`;
  return {
    id: 'request-standby',
    title: `start ${dataDir} as a standby (standby.signal), with pgmam's recovery settings only`,
    effect: 'write',
    run: async (ctx) => {
      const text = await ctx.fs.readText(auto);
      if (text !== undefined) {
        const kept = text
          .split('\n')
          .map((l) => (/^\s*(recovery_target\w*|restore_command|primary_conninfo|primary_slot_name|archive_mode)\s*=/.test(l) ? `# Removed by pgmam (a replica's settings are in conf.d): ${l}` : l))
          .join('\n');
        if (kept !== text) await ctx.fs.writeFileAtomic(auto, kept, { mode: 0o600, owner });
      }
      await ctx.fs.writeFileAtomic(`${dataDir}/standby.signal`, '', { mode: 0o600, owner });
    },
    show: [`comment out recovery_target*, restore_command, primary_conninfo, primary_slot_name and archive_mode in ${auto}`, `touch ${dataDir}/standby.signal`],
  };
}

/** Before the first start: the effective settings (postgres -C) are pgmam's — its port, its slot, the primary over TLS. */
export function verifyStandbyStep(c: LiveCluster, s: StandbySpec, only?: string[]): Step {
  const all: Record<string, string> = { port: String(c.port), primary_conninfo: primaryConninfo(s), primary_slot_name: s.slot, restore_command: restoreCommandFor(s) };
  const want = only ? Object.fromEntries(Object.entries(all).filter(([k]) => only.includes(k))) : all;
  return {
    id: 'verify-standby-settings',
    title: `verify ${pg.clusterLabel(c.id)} will start as a standby of port ${s.primaryPort} with pgmam's settings`,
    effect: 'read',
    run: async (ctx) => {
      const wrong: string[] = [];
      for (const [k, v] of Object.entries(want)) {
        const got = (await ctx.runner.run(pg.showSetting(c.id, c.dataDir, k))).stdout.trim();
        if (got !== v) wrong.push(`${k} is "${got}", not "${v}"`);
      }
      if (!(await ctx.fs.exists(`${c.dataDir}/standby.signal`))) wrong.push('standby.signal is missing');
      if (wrong.length) throw new Error(`the replica would not start as pgmam's standby: ${wrong.join('; ')}`);
    },
    show: ['$ runuser -u postgres -- postgres -C port|primary_conninfo|primary_slot_name|restore_command'],
  };
}

/** Bounded: the replica runs, is in recovery and its WAL receiver streams from the primary. */
export function waitStreamingStep(c: LiveCluster, timeoutSec: number): Step {
  return {
    id: 'wait-streaming',
    title: `wait until ${pg.clusterLabel(c.id)} streams from its primary (at most ${timeoutSec} s)`,
    effect: 'read',
    run: async (ctx) => {
      const deadline = Date.now() + timeoutSec * 1000;
      for (;;) {
        const r = await ctx.runner.run(pg.psqlValue({ version: c.id.version, port: c.port }, STANDBY_STATE_SQL), { check: false });
        const s = r.exitCode === 0 ? parseStandbyState(r.stdout) : undefined;
        if (s && !s.inRecovery) throw new Error(`${pg.clusterLabel(c.id)} is not in recovery: it was promoted, not a standby`);
        if (s?.receiver === 'streaming') return;
        const signal = ctx.host.interrupted();
        if (signal) throw new Error(`interrupted by ${signal}`);
        if (Date.now() > deadline) throw new Error(`${pg.clusterLabel(c.id)} does not stream within ${timeoutSec} s (WAL receiver: ${s?.receiver ?? 'none'})${await logTail(ctx, c.logFile)}`);
        await sleep(200);
      }
    },
    show: ['  poll pg_stat_wal_receiver.status until it is streaming'],
  };
}

/** The password file's password (for a re-run that keeps the role): never logged. */
export async function readPassword(ctx: Pick<Context, 'fs'>, passFile: string): Promise<string | undefined> {
  const t = await ctx.fs.readText(passFile);
  return t === undefined ? undefined : passwordOf(t);
}

/** A replica's link from its record (the primary's port from the host). */
export function linkOf(rec: ManagedCluster, primary: ManagedCluster | undefined, primaryPort: number | undefined): ReplicaLink | undefined {
  if (!rec.replication || !primary || primaryPort === undefined) return undefined;
  return { primary: { id: { version: primary.version, name: primary.name }, port: primaryPort }, replica: rec.name, ...rec.replication };
}

/**
 * An empty data directory in place of a stopped replica's. A standby's (standby.signal, pg_control in
 * recovery) took no writes: it is removed. One promoted by hand since may hold what users wrote: it is
 * moved aside as preserved (rule 1), never removed.
 */
export function replaceStandbyDataStep(id: pg.ClusterId, dataDir: string, owner: Owner): Step {
  return {
    id: 'replace-replica-data',
    title: `replace ${pg.clusterLabel(id)}'s data directory ${dataDir} with an empty one (removed if it is a standby's, else preserved)`,
    effect: 'destroy',
    run: async (ctx) => {
      if (await ctx.fs.exists(dataDir)) {
        const control = await ctx.runner.run(pg.pgControlData(id.version, dataDir), { check: false });
        const state = control.exitCode === 0 ? parseControlData(control.stdout).state : undefined;
        const standby = (await ctx.fs.exists(`${dataDir}/standby.signal`)) && (state === 'shut down in recovery' || state === 'in archive recovery');
        if (standby) await ctx.fs.rm(dataDir, { recursive: true });
        else {
          const now = ctx.clock.now();
          const aside: Preserved = { path: `${dataDir}.pre-replace-${stamp(now)}`, reason: 'replica-promoted-by-hand', createdAt: now.toISOString() };
          await ctx.fs.rename(dataDir, aside.path);
          await updateManaged(ctx.fs, ctx.paths.clustersDir, id.name, (r) => ({ ...r, preserved: [...r.preserved, aside] }));
        }
      }
      await ctx.fs.mkdirp(dataDir, { mode: 0o700, owner });
    },
    show: [`rm -rf ${dataDir} if pg_controldata says a standby's (else mv ${dataDir} ${dataDir}.pre-replace-<time>, preserved)`, `install -d -o postgres -g postgres -m 0700 ${dataDir}`],
  };
}

/** A replica as a restore of its primary sees it: stopped before, laid down again after (its journal keeps this). */
export const replicaViewSchema = z.object({ name: z.string(), version: z.string(), port: z.number(), dataDir: z.string(), link: linkSchema });
export type ReplicaView = z.infer<typeof replicaViewSchema>;

/** The replicas of `primary` that pgmam can lay down again: with their link, data directory and port. */
export function replicaViews(records: readonly ManagedCluster[], clusters: ReadonlyArray<{ name: string; version: string; port: number; dataDir?: string | undefined }>, primary: ManagedCluster, primaryPort: number): ReplicaView[] {
  return records.flatMap((r) => {
    const c = clusters.find((x) => x.name === r.name && x.version === r.version);
    const link = r.role === 'replica' && r.parent === primary.name ? linkOf(r, primary, primaryPort) : undefined;
    return link && c?.dataDir ? [{ name: r.name, version: r.version, port: c.port, dataDir: c.dataDir, link }] : [];
  });
}

const forReplica = (name: string, s: Step): Step => ({ ...s, id: `${s.id}@${name}` });

/** Before a restore of their primary: each replica stopped (it cannot follow the primary across it). */
export function stopReplicasSteps(replicas: readonly ReplicaView[], systemd: boolean): Step[] {
  return replicas.map((r) => forReplica(r.name, { id: 'stop-replica', title: `stop the replica ${r.version}/${r.name} (laid down again after the restore)`, effect: 'write', run: pg.controlCluster({ version: r.version, name: r.name }, 'stop', systemd) }));
}

/**
 * After a restore of their primary and its first full backup on the new timeline: each replica gets its
 * role (the restored catalog may predate it) and slot (a restore brings none) again, and its data laid
 * down anew from that backup. A replica's data is only ever a copy of its primary's.
 */
export function relayReplicasSteps(replicas: readonly ReplicaView[], stanza: string, stanzaDir: string | undefined, owner: Owner, systemd: boolean, timeoutSec: number): Step[] {
  return replicas.flatMap((r) => {
    const id = { version: r.version, name: r.name };
    const live: LiveCluster = { id, port: r.port, dataDir: r.dataDir, logFile: `/var/log/postgresql/postgresql-${r.version}-${r.name}.log` };
    const scope = { stanza, ...(stanzaDir ? { configIncludePath: stanzaDir } : {}) };
    const restore = { ...pgRestoreStandby(scope, r.dataDir), effect: 'write' as const };
    const spec = { primaryPort: r.link.primary.port, role: r.link.role, slot: r.link.slot, passFile: r.link.passFile, replica: r.name, stanza, dataDir: r.dataDir, configIncludePath: stanzaDir };
    const steps: Step[] = [
      replicationRoleStep(r.link, owner),
      createSlotStep(r.link),
      replaceStandbyDataStep(id, r.dataDir, owner),
      { id: 'restore-standby', title: `restore the newest backup of stanza ${stanza} into ${r.dataDir} as a standby`, effect: 'write', run: restore },
      standbySignalStep(r.dataDir, owner),
      verifyStandbyStep(live, { ...spec, caFile: '', copied: {} }, ['port', 'primary_slot_name', 'restore_command']),
      { id: 'start-replica', title: `start ${pg.clusterLabel(id)}`, effect: 'write', run: { ...pg.controlCluster(id, 'start', systemd), env: { PGCTLTIMEOUT: String(timeoutSec) } } },
      waitStreamingStep(live, timeoutSec),
    ];
    return steps.map((s) => forReplica(r.name, s));
  });
}
