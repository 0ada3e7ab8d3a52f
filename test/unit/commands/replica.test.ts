// Replicas: the names, settings, pg_hba.conf rules and parsers of pg/replication, and the guards and
// plans of replica create, promote, drop and of pitr on an app with replicas, over gathered facts.
import { pointStanzaFile } from '../../../src/pgbackrest/config.js';
import { describe, expect, it } from 'vitest';
import { replicaCreateCommand, type ReplicaCreateFacts, type ReplicaCreateOptions } from '../../../src/commands/replica/create.js';
import { replicaPromoteCommand, type ReplicaPromoteFacts, type ReplicaPromoteOptions } from '../../../src/commands/replica/promote.js';
import { descendants, replicaDropCommand, dropCommand, type DropFacts, type DropOptions } from '../../../src/commands/drop/drop.js';
import { judge } from '../../../src/commands/check/check.js';
import type { PrimaryFacts } from '../../../src/commands/replica/link.js';
import { assemblePlan } from '../../../src/plan/command.js';
import { lsnBytes, parseSlotsState, parseStandbyState, passFileLine, passwordOf, renderReplicaConf, withoutReplicaRule, withReplicaRule } from '../../../src/pg/replication.js';
import { emptySource } from '../../../src/restore/source.js';
import type { ParentFacts } from '../../../src/restore/parent.js';
import { currentPrimary } from '../../../src/state/store.js';
import { withTlsRules } from '../../../src/steps/tls.js';
import { replaceStandbyDataStep } from '../../../src/steps/replication.js';
import { fakeContext } from '../fakes.js';
import { aCluster, aNewCluster, aRecord, aStanza, planEnv } from '../fixtures.js';

const env = planEnv();
const flags = { json: false, dryRun: false, yes: true, keepOnError: false };
const at = (iso: string) => Date.parse(iso) / 1000;
const app = aRecord('app1');
const replica = aRecord('app1_replica', { role: 'replica', parent: 'app1', stanza: 'app1', stanzaFile: app.stanzaFile, replication: { slot: 'pgmam_app1_replica', role: 'pgmam_repl_app1_replica', passFile: '/var/lib/pgmam/replicas/app1_replica.pgpass' } });

describe('pg_hba.conf rules of a replica', () => {
  const debian = 'local all postgres peer\nhost replication all 127.0.0.1/32 scram-sha-256\n';
  it('come right after pgmam\'s TLS rules (the first matching line wins), loopback, TLS and SCRAM only', () => {
    const out = withReplicaRule(withTlsRules(debian, true), 'app1_replica', 'pgmam_repl_app1_replica').split('\n');
    const end = out.indexOf('# pgmam: TLS rules — end');
    expect(out.slice(end + 1, end + 5)).toEqual([
      '# pgmam: replica app1_replica — begin',
      'hostssl replication pgmam_repl_app1_replica 127.0.0.1/32 scram-sha-256',
      'hostssl replication pgmam_repl_app1_replica ::1/128 scram-sha-256',
      '# pgmam: replica app1_replica — end',
    ]);
  });
  it('replace an earlier block, and come out again leaving the rest as it was', () => {
    const once = withReplicaRule(withTlsRules(debian, true), 'r', 'role_r');
    expect(withReplicaRule(once, 'r', 'role_r')).toBe(once);
    expect(withoutReplicaRule(once, 'r')).toBe(withTlsRules(debian, true));
  });
});

describe('standby settings and parsers', () => {
  it('primary_conninfo verifies the server against pgmam\'s CA and reads the password from its file; restore_command names the replica\'s own data directory', () => {
    const text = renderReplicaConf({ primaryPort: 5433, role: 'r', slot: 's', passFile: '/p', caFile: '/ca.crt', replica: 'app1_replica', stanza: 'app1', dataDir: '/d', configIncludePath: undefined, copied: { max_connections: '200' } });
    expect(text).toContain("primary_conninfo = 'host=localhost port=5433 user=r passfile=/p sslmode=verify-full sslrootcert=/ca.crt application_name=app1_replica'");
    expect(text).toContain("restore_command = 'pgbackrest --stanza=app1 --pg1-path=/d archive-get %f \"%p\"'");
    expect(text).toContain('max_connections = 200');
    expect(text).not.toMatch(/password=/);
  });
  it('reads a standby\'s state, slots and LSNs', () => {
    expect(parseStandbyState('true|0/3000060|0/3000060|streaming|1.5')).toEqual({ inRecovery: true, receiveLsn: '0/3000060', replayLsn: '0/3000060', receiver: 'streaming', replayAgeSeconds: 1.5 });
    expect(parseStandbyState('true|||| ').receiver).toBeNull();
    expect(parseSlotsState('pgmam_a|false|16777216|reserved|||\n')).toEqual([{ slot: 'pgmam_a', active: false, retainedBytes: 16777216, walStatus: 'reserved', replayLagBytes: null, replayLagSeconds: null, state: null }]);
    expect(lsnBytes('1/0') - lsnBytes('0/FFFFFFFF')).toBe(1);
    expect(passwordOf(passFileLine(5433, 'r', 'abc-_9'))).toBe('abc-_9');
  });
  it('promote points the stanza file at the replica and keeps every other line', () => {
    const text = '[app1]\npg1-path=/var/lib/postgresql/15/app1\npg1-port=5433\npg1-socket-path=/var/run/postgresql\nrepo1-path=/r\n';
    expect(pointStanzaFile(text, { dataDir: '/var/lib/postgresql/15/app1_replica', port: 5434 })).toBe('[app1]\npg1-path=/var/lib/postgresql/15/app1_replica\npg1-port=5434\npg1-socket-path=/var/run/postgresql\nrepo1-path=/r\n');
  });
});

describe('an app after a failover', () => {
  it('resolves to its current primary through the successor chain; other names stay', () => {
    const old = { ...app, successor: 'app1_replica' };
    const promoted = { ...replica, role: 'app' as const, parent: null };
    expect(currentPrimary([old, promoted], 'app1')?.name).toBe('app1_replica');
    expect(currentPrimary([old, promoted], 'app1_replica')?.name).toBe('app1_replica');
    expect(currentPrimary([{ ...old, successor: 'app1' }], 'app1')?.name).toBe('app1');
  });
});

describe('replica create', () => {
  const primary = (over: Partial<PrimaryFacts> = {}): PrimaryFacts => ({ named: app, record: app, cluster: aCluster('app1'), copied: { max_connections: '100' }, tls: true, caExists: true, slots: [], systemId: '7710859106177468397', ...over });
  const source: ParentFacts = {
    ...emptySource(),
    record: app,
    cluster: aCluster('app1'),
    server: { inRecovery: false, timeline: 1 },
    control: { systemId: '7710859106177468397', state: 'in production', timeline: 1 },
    stanza: aStanza('app1', { backup: [{ label: 'F1', type: 'full', archive: { start: '000000010000000000000002', stop: '000000010000000000000003' }, lsn: { start: '0/2000028', stop: '0/3000050' }, timestamp: { start: at('2026-11-22T04:59:58Z'), stop: at('2026-11-22T05:00:00Z') } }] }),
    stanzaFile: { dataDir: '/var/lib/postgresql/15/app1', port: 5433 },
    currentTimeline: 1,
    tablespaces: [],
    archiveDir: undefined,
    archiveBefore: [],
  };
  const facts = (over: Partial<ReplicaCreateFacts> = {}): ReplicaCreateFacts => ({ ...aNewCluster('app1_replica', { port: 5434 }), uid: 0, now: new Date('2026-11-22T06:00:00Z'), name: 'app1_replica', primary: primary(), source, postgres: { uid: 101, gid: 104 }, tools: {}, ...over });
  const o = (over: Partial<ReplicaCreateOptions> = {}): ReplicaCreateOptions => ({ app: 'app1', label: 'replica', source: 'repo', ...flags, ...over });
  const failed = (f: ReplicaCreateFacts, x = o()) => assemblePlan(replicaCreateCommand, f, x, env).guards.filter((g) => !g.check().ok).map((g) => g.id);

  it('from the repository: the link on the primary first, closed until it streams, handed over last', () => {
    const plan = assemblePlan(replicaCreateCommand, facts(), o(), env);
    expect(plan.guards.filter((g) => !g.check().ok).map((g) => [g.id, g.check()])).toEqual([]);
    expect(plan.steps.map((s) => s.id)).toEqual([
      'limit-slot-wal', 'create-replication-role', 'allow-replication', 'create-slot', 'create-cluster', 'close-to-users', 'configure-archiving', 'issue-certificate', 'require-tls',
      'configure-standby', 'empty-datadir', 'restore-backup', 'request-standby', 'verify-standby-settings', 'start-cluster', 'wait-streaming', 'record-replica', 'set-autostart', 'hand-over',
    ]);
    const restore = plan.steps.find((s) => s.id === "restore-backup")!.run as unknown as { argv: string[] };
    expect(restore.argv).toEqual(expect.arrayContaining(['--stanza=app1', '--set=F1', '--type=standby', '--pg1-path=/var/lib/postgresql/15/app1_replica']));
    expect(restore.argv.join(' ')).not.toContain('target-action');
    expect(plan.locks).toEqual(['app1_replica', 'app1']);
  });

  it('from the primary: pg_basebackup makes the slot (-C -S), no password in its argv', () => {
    const plan = assemblePlan(replicaCreateCommand, facts({ source: { ...source } }), o({ source: 'primary' }), env);
    expect(plan.steps.some((s) => s.id === 'create-slot')).toBe(false);
    const bb = plan.steps.find((s) => s.id === "base-backup")!.run as unknown as { argv: string[] };
    expect(bb.argv).toEqual(expect.arrayContaining(['-X', 'stream', '-C', '-S', 'pgmam_app1_replica']));
    expect(bb.argv.join(' ')).toContain('sslmode=verify-full');
    expect(bb.argv.join(' ')).not.toMatch(/password=/);
  });

  it('refuses a replica of a replica, an unknown app, a primary without TLS or stopped, a taken slot', () => {
    expect(failed(facts({ primary: primary({ named: replica, record: undefined }) }), o({ app: 'app1_replica' }))).toContain('app-has-a-primary');
    expect(failed(facts({ primary: primary({ named: undefined, record: undefined, cluster: undefined }) }))).toEqual(['app-has-a-primary']);
    expect(failed(facts({ primary: primary({ tls: false }) }))).toEqual(['primary-has-tls']);
    expect(failed(facts({ primary: primary({ cluster: aCluster('app1', { running: false }) }) }))).toContain('primary-runs');
    expect(failed(facts({ primary: primary({ slots: ['pgmam_app1_replica'] }) }))).toEqual(['slot-is-free']);
    expect(failed(facts({ nameTakenBy: ['cluster 15/app1_replica exists'] }))).toEqual(['name-is-free']);
  });
});

describe('replica promote', () => {
  const facts = (over: Partial<ReplicaPromoteFacts> = {}): ReplicaPromoteFacts => ({
    uid: 0,
    record: replica,
    cluster: aCluster('app1_replica', { port: 5434 }),
    standby: { inRecovery: true, receiveLsn: '0/5000000', replayLsn: '0/5000000', receiver: 'streaming', replayAgeSeconds: 0 },
    primary: app,
    primaryCluster: aCluster('app1', { running: false }),
    siblings: [],
    stanzaFileText: '',
    locks: [],
    ...over,
  });
  const o = (over: Partial<ReplicaPromoteOptions> = {}): ReplicaPromoteOptions => ({ name: 'app1_replica', fence: false, ...flags, ...over });
  const failed = (f: ReplicaPromoteFacts, x = o()) => assemblePlan(replicaPromoteCommand, f, x, env).guards.filter((g) => !g.check().ok).map((g) => g.id);

  it('the stanza file points at the replica before the promotion; a checkpoint, check and full backup after; the old primary fenced first', () => {
    const plan = assemblePlan(replicaPromoteCommand, facts(), o(), env);
    expect(plan.steps.map((s) => s.id)).toEqual(['fence-old-primary', 'point-stanza-file', 'promote', 'wait-promoted', 'checkpoint', 'remove-standby-settings', 'drop-stale-replication-role', 'check-archiving', 'backup-full', 'record-primary', 'mark-backup']);
    expect(plan).toMatchObject({ destructive: true, locks: ['app1_replica', 'app1'] });
  });

  it('--fence stops a running old primary first', () => {
    const f = facts({ primaryCluster: aCluster('app1') });
    expect(failed(f)).toEqual(['old-primary-is-stopped']);
    expect(assemblePlan(replicaPromoteCommand, f, o({ fence: true }), env).steps[0]!.id).toBe('stop-old-primary');
  });

  it('refuses a cluster that is not a replica, one not in recovery, and one that has not replayed what it received', () => {
    expect(failed(facts({ record: app, primary: undefined }), o({ name: 'app1' }))).toContain('target-is-a-replica');
    expect(failed(facts({ standby: { inRecovery: false, receiveLsn: null, replayLsn: null, receiver: null, replayAgeSeconds: null } }))).toEqual(['replica-runs-in-recovery']);
    expect(failed(facts({ standby: { inRecovery: true, receiveLsn: '0/5000100', replayLsn: '0/5000000', receiver: 'streaming', replayAgeSeconds: 0 } }))).toEqual(['replica-has-replayed-everything']);
  });
});

describe('drop and replicas', () => {
  const records = [app, replica];
  const o = (over: Partial<DropOptions> = {}): DropOptions => ({ name: 'app1', purgeBackups: false, withBranches: false, onlyBranches: false, withReplicas: false, onlyReplicas: false, ...flags, ...over });
  const facts = (x: DropOptions): DropFacts => {
    const record = records.find((r) => r.name === x.name);
    const replicas = records.filter((r) => r.role === 'replica' && r.parent === x.name);
    const targets = [...(x.withReplicas ? replicas : []), ...(record ? [record] : [])];
    return { uid: 0, record, branches: record ? descendants(records, record.name) : [], replicas, running: ['app1', 'app1_replica'], ports: { app1: 5433, app1_replica: 5434 }, managed: records, targets, dataDirs: Object.fromEntries(targets.map((t) => [t.name, `/d/${t.name}`])), locks: [], interrupted: [], repoHosts: [], dropped: false };
  };

  it('replica drop: the cluster, then its slot, role, rule and password file; never the app\'s stanza or spool', () => {
    const x = o({ name: 'app1_replica', onlyReplicas: true });
    expect(assemblePlan(replicaDropCommand, facts(x), x, env).steps.map((s) => s.id)).toEqual(['drop-cluster', 'remove-config', 'drop-slot', 'drop-replication-role', 'remove-replication-rule', 'remove-password-file', 'forget-cluster']);
  });

  it('drop of an app with replicas is refused without --with-replicas; with it, its replicas go first', () => {
    expect(assemblePlan(dropCommand, facts(o()), o(), env).guards.filter((g) => !g.check().ok).map((g) => g.id)).toEqual(['cluster-has-no-replicas']);
    const x = o({ withReplicas: true, purgeBackups: true });
    const drops = assemblePlan(dropCommand, facts(x), x, env).steps.filter((s) => s.id === 'drop-cluster').map((s) => s.show![0]);
    expect(drops).toEqual(['$ pg_dropcluster --stop 15 app1_replica', '$ pg_dropcluster --stop 15 app1']);
  });

  it('drop of a replica by pgmam drop is refused: replica drop is its command', () => {
    const x = o({ name: 'app1_replica' });
    expect(assemblePlan(dropCommand, facts(x), x, env).guards.filter((g) => !g.check().ok).map((g) => g.id)).toEqual(['cluster-is-managed']);
  });
});

describe('check of a replica', () => {
  const base = {
    cluster: '15/app1_replica', name: 'app1_replica', managed: true, running: true, acceptsConnections: true, archive: null, lastBackup: null, recoveryWindow: null,
    preserved: [], freeBytes: { data: 10e9, repo: null }, interrupted: null, repos: [], takenOver: null, tls: null, lastDrill: null, createdAt: null,
  };
  const t = { backupMaxAgeSeconds: 86400, readyMaxAgeSeconds: 600, minFreeBytes: 1e6 };
  it('is healthy streaming, whatever its (the app\'s) backups', () => {
    expect(judge({ ...base, replica: { primary: '15/app1', streaming: true, replayLagBytes: 0, replayLagSeconds: 0, slot: { name: 's', active: true, retainedBytes: 0, walStatus: 'reserved' } } }, t)).toEqual([]);
  });
  it('stopped, it is unhealthy and says what its slot keeps', () => {
    expect(judge({ ...base, running: false, replica: { primary: '15/app1', streaming: false, replayLagBytes: null, replayLagSeconds: null, slot: { name: 's', active: false, retainedBytes: 50 * 1024 * 1024, walStatus: 'reserved' } } }, t)).toEqual([
      'not running; its slot s on 15/app1 retains 50 MB of WAL',
    ]);
  });
});

describe('a replica laid down again', () => {
  const id = { version: '15', name: 'app1_replica' };
  const dir = '/var/lib/postgresql/15/app1_replica';
  const run = async (state: string, signal: boolean) => {
    const { ctx, fs, runner } = fakeContext();
    fs.dirs.add(dir);
    if (signal) fs.files.set(`${dir}/standby.signal`, '');
    fs.files.set(`${ctx.paths.clustersDir}/app1_replica.json`, JSON.stringify(replica));
    runner.register(/pg_controldata/, { stdout: `Database cluster state:               ${state}\n` });
    await (replaceStandbyDataStep(id, dir, { uid: 101, gid: 104 }).run as (c: typeof ctx) => Promise<void>)(ctx);
    return { fs, rec: JSON.parse(fs.files.get(`${ctx.paths.clustersDir}/app1_replica.json`)!) };
  };
  it("a standby's data directory took no writes: it is removed", async () => {
    const { fs, rec } = await run('shut down in recovery', true);
    expect(fs.writes.filter((w) => w.startsWith('rm ') || w.startsWith('rename '))).toEqual([`rm ${dir}`]);
    expect(rec.preserved).toEqual([]);
  });
  it('one promoted by hand may hold what users wrote: it is moved aside as preserved, never removed', async () => {
    const { fs, rec } = await run('shut down', false);
    expect(fs.writes.filter((w) => w.startsWith('rm '))).toEqual([]);
    expect(rec.preserved.map((p: { reason: string }) => p.reason)).toEqual(['replica-promoted-by-hand']);
    expect(fs.dirs.has(dir)).toBe(true);
  });
});
