// Streaming replication: the names pgmam gives a replica's slot and role, the settings a standby
// starts with, pg_hba.conf's rules for its replication role, and the SQL that creates, drops and
// watches them. Build and parse only.
import type { Cmd } from '../runner/types.js';
import { literal, pgBin, SOCKET_DIR, type PsqlTarget } from './commands.js';

export const REPLICA_CONF_NAME = '92-pgmam-replica.conf';
export const SLOT_CONF_NAME = '93-pgmam-slots.conf';

/** Slot and role names carry the replica's (≤ 48 characters): both stay within PostgreSQL's 63. */
export const slotName = (replica: string) => `pgmam_${replica}`;
export const replicationRole = (replica: string) => `pgmam_repl_${replica}`;
export const passFilePath = (stateDir: string, replica: string) => `${stateDir}/replicas/${replica}.pgpass`;

/** Settings a hot standby needs at least as high as its primary's (PostgreSQL refuses to start otherwise). */
export const COPIED_SETTINGS = ['max_connections', 'max_worker_processes', 'max_wal_senders', 'max_prepared_transactions', 'max_locks_per_transaction'] as const;

export interface StandbySpec {
  primaryPort: number;
  role: string;
  slot: string;
  passFile: string;
  caFile: string;
  /** application_name: the primary's pg_stat_replication names the replica. */
  replica: string;
  /** The app's stanza; its restore_command carries the replica's own data directory (--pg1-path). */
  stanza: string;
  dataDir: string;
  configIncludePath: string | undefined;
  /** The primary's values of COPIED_SETTINGS. */
  copied: Record<string, string>;
}

/** The connection string a standby streams through: TLS verified against pgmam's CA and the host name, the password from its file. */
export const primaryConninfo = (s: Pick<StandbySpec, 'primaryPort' | 'role' | 'passFile' | 'caFile' | 'replica'>) =>
  `host=localhost port=${s.primaryPort} user=${s.role} passfile=${s.passFile} sslmode=verify-full sslrootcert=${s.caFile} application_name=${s.replica}`;

export const restoreCommandFor = (s: Pick<StandbySpec, 'stanza' | 'dataDir' | 'configIncludePath'>) =>
  `pgbackrest${s.configIncludePath ? ` --config-include-path=${s.configIncludePath}` : ''} --stanza=${s.stanza} --pg1-path=${s.dataDir} archive-get %f "%p"`;

export function renderReplicaConf(s: StandbySpec): string {
  return [
    "# Written by pgmam: a streaming replica (pgmam replica). Removed when it is promoted. Do not edit by hand.",
    `primary_conninfo = ${literal(primaryConninfo(s))}`,
    `primary_slot_name = ${literal(s.slot)}`,
    `restore_command = ${literal(restoreCommandFor(s))}`,
    "recovery_target_timeline = 'latest'",
    'hot_standby = on',
    '# At least the primary\'s values (a standby refuses to start below them):',
    ...COPIED_SETTINGS.filter((k) => s.copied[k] !== undefined).map((k) => `${k} = ${s.copied[k]}`),
    '',
  ].join('\n');
}

export const renderSlotConf = (mb: number) =>
  ['# Written by pgmam: a replica that stopped cannot make its slot keep more WAL than this (slot-max-wal-mb).', `max_slot_wal_keep_size = ${mb}MB`, ''].join('\n');

const ruleBegin = (replica: string) => `# pgmam: replica ${replica} — begin`;
const ruleEnd = (replica: string) => `# pgmam: replica ${replica} — end`;
const TLS_END = '# pgmam: TLS rules — end';

/** pg_hba.conf with the replica's rule (TLS, SCRAM, loopback only) right after pgmam's TLS block (first match wins). Replaces an earlier one. */
export function withReplicaRule(hba: string, replica: string, role: string): string {
  const block = [ruleBegin(replica), `hostssl replication ${role} 127.0.0.1/32 scram-sha-256`, `hostssl replication ${role} ::1/128 scram-sha-256`, ruleEnd(replica)];
  const lines = withoutReplicaRule(hba, replica).split('\n');
  const at = lines.indexOf(TLS_END) + 1;
  return [...lines.slice(0, at), ...block, ...lines.slice(at)].join('\n');
}

export function withoutReplicaRule(hba: string, replica: string): string {
  const lines = hba.split('\n');
  const b = lines.indexOf(ruleBegin(replica));
  const e = lines.indexOf(ruleEnd(replica));
  return (b >= 0 && e > b ? [...lines.slice(0, b), ...lines.slice(e + 1)] : lines).join('\n');
}

export const hasReplicaRule = (hba: string, replica: string) => hba.split('\n').includes(ruleBegin(replica));

/** pgpass format; the password is base64url (no ':' or '\\' to escape). */
export const passFileLine = (port: number, role: string, password: string) => `localhost:${port}:replication:${role}:${password}\n`;
export const passwordOf = (passFileText: string) => passFileText.trim().split(':').at(-1) ?? '';

/** The role, made or given a new password: the SCRAM verifier only (computed here), sent on stdin. */
export const upsertRoleSql = (role: string, verifier: string) =>
  `do $$ begin
  if exists (select from pg_roles where rolname = ${literal(role)}) then
    execute format('alter role %I with replication login password %L', ${literal(role)}, ${literal(verifier)});
  else
    execute format('create role %I with replication login password %L', ${literal(role)}, ${literal(verifier)});
  end if;
end $$;\n`;

export const dropRoleSql = (role: string) => `do $$ begin if exists (select from pg_roles where rolname = ${literal(role)}) then execute format('drop role %I', ${literal(role)}); end if; end $$;\n`;

/** Reserves WAL from now on (immediately_reserve): WAL older than it comes from the archive. */
export const createSlotSql = (slot: string) =>
  `select count(pg_create_physical_replication_slot(${literal(slot)}, true)) from (select 1) x where not exists (select from pg_replication_slots where slot_name = ${literal(slot)})`;
/** Only when no walsender uses it: an active slot is a replica still streaming. */
export const dropSlotSql = (slot: string) => `select count(pg_drop_replication_slot(slot_name)) from pg_replication_slots where slot_name = ${literal(slot)} and not active`;

/** On the replica: in recovery, what it received and replayed, whether it streams. */
export const STANDBY_STATE_SQL =
  "select pg_is_in_recovery()::text || '|' || coalesce(pg_last_wal_receive_lsn()::text, '') || '|' || coalesce(pg_last_wal_replay_lsn()::text, '') || '|' || coalesce((select status from pg_stat_wal_receiver), '') || '|' || coalesce(extract(epoch from now() - pg_last_xact_replay_timestamp())::text, '')";

export interface StandbyState {
  inRecovery: boolean;
  receiveLsn: string | null;
  replayLsn: string | null;
  /** pg_stat_wal_receiver.status ('streaming', …), null without a WAL receiver. */
  receiver: string | null;
  /** Seconds since the last replayed commit's time. */
  replayAgeSeconds: number | null;
}

export function parseStandbyState(out: string): StandbyState {
  const [rec = '', recv = '', replay = '', status = '', age = ''] = out.trim().split('|');
  return { inRecovery: rec === 'true', receiveLsn: recv || null, replayLsn: replay || null, receiver: status || null, replayAgeSeconds: age === '' ? null : Number(age) };
}

/** LSN "16/B374D848" → a number of bytes (exact below 2^53, i.e. 8 PB of WAL). */
export function lsnBytes(lsn: string): number {
  const [hi = '0', lo = '0'] = lsn.split('/');
  return parseInt(hi, 16) * 2 ** 32 + parseInt(lo, 16);
}

/** On the primary: each pgmam slot, whether in use, the WAL it retains; and the replica's walsender's lag. */
export const slotsStateSql = (slots: string[]) =>
  `select s.slot_name || '|' || s.active::text || '|' || coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)::bigint::text, '') || '|' || coalesce(s.wal_status, '') || '|' || coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn)::bigint::text, '') || '|' || coalesce(extract(epoch from r.replay_lag)::text, '') || '|' || coalesce(r.state, '')
   from pg_replication_slots s left join pg_stat_replication r on r.pid = s.active_pid
   where s.slot_name in (${slots.map(literal).join(', ') || "''"})`;

export interface SlotState {
  slot: string;
  active: boolean;
  retainedBytes: number | null;
  walStatus: string | null;
  replayLagBytes: number | null;
  replayLagSeconds: number | null;
  state: string | null;
}

export function parseSlotsState(out: string): SlotState[] {
  return out
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [slot = '', active = '', retained = '', walStatus = '', lagBytes = '', lagSec = '', state = ''] = l.split('|');
      const num = (v: string) => (v === '' ? null : Number(v));
      return { slot, active: active === 'true', retainedBytes: num(retained), walStatus: walStatus || null, replayLagBytes: num(lagBytes), replayLagSeconds: num(lagSec), state: state || null };
    });
}

/** A base backup of the primary over TLS as the replica's role, streaming WAL through a slot it creates (-C -S). */
export const baseBackupFromPrimary = (version: string, conninfo: string, dir: string, slot: string): Cmd => ({
  argv: [pgBin(version, 'pg_basebackup'), '-d', conninfo, '-D', dir, '-X', 'stream', '-C', '-S', slot, '-c', 'fast', '--no-password'],
  asUser: 'postgres',
  effect: 'write',
});

export const promote = (t: PsqlTarget): Cmd => ({
  argv: [pgBin(t.version, 'psql'), '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1', '-h', SOCKET_DIR, '-p', String(t.port), '-d', 'postgres', '-c', 'select pg_promote(true, 300)'],
  asUser: 'postgres',
  effect: 'write',
});
