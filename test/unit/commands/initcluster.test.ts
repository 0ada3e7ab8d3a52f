// initcluster's guards and plan over gathered facts, with a recording runner and an in-memory host.
import { describe, expect, it } from 'vitest';
import { chooseVersion, initClusterCommand, type InitFacts, type InitOptions } from '../../../src/commands/initcluster/initcluster.js';
import { assemblePlan, type PlanEnv } from '../../../src/plan/command.js';
import { RefusedError, StepFailedError } from '../../../src/errors.js';
import { renderPlan } from '../../../src/plan/render.js';
import { fakeContext, executePlan, stubOpenssl } from '../fakes.js';
import { aNewCluster, planEnv } from '../fixtures.js';

const DEBIAN_HBA = 'local all postgres peer\nlocal all all peer\nhost all all 127.0.0.1/32 scram-sha-256\n';
const opts = (o: Partial<InitOptions> = {}): InitOptions => ({ name: 'app1', dryRun: false, yes: false, keepOnError: false, json: false, ...o });

const facts = (f: Partial<InitFacts> = {}): InitFacts => ({
  uid: 0,
  now: new Date('2026-11-22T10:00:00Z'),
  tools: { pg_createcluster: '/usr/bin/pg_createcluster', pg_ctlcluster: '/usr/bin/pg_ctlcluster', pg_lsclusters: '/usr/bin/pg_lsclusters', pg_dropcluster: '/usr/bin/pg_dropcluster', pgbackrest: '/usr/bin/pgbackrest', runuser: '/usr/sbin/runuser' },
  installedPg: ['15'],
  pgbackrestVersion: '2.45',
  pgVersion: '15',
  clusters: [],
  ...aNewCluster('app1'),
  postgres: { uid: 101, gid: 104 },
  password: undefined,
  passwordProblem: undefined,
  source: undefined,
  generated: undefined,
  extras: {},
  ...f,
});

const env = (systemd = false): PlanEnv => planEnv({ systemd });
const plan = (f: InitFacts, o = opts()) => assemblePlan(initClusterCommand, f, o, env());

describe('initcluster guards', () => {
  it('all pass on a clean host', () => {
    expect(plan(facts()).guards.map((g) => g.check())).toEqual(plan(facts()).guards.map(() => ({ ok: true })));
  });

  it('every failed guard is reported at once, and nothing runs', async () => {
    const { ctx, runner, fs } = fakeContext();
    const p = plan(
      facts({
        uid: 1000,
        tools: { ...facts().tools, pgbackrest: undefined },
        nameTakenBy: ['cluster 15/app1 exists'],
        portConfiguredBy: ['15/main'],
        portHeldBy: "something is listening on it",
        repo: { path: '/r', exists: true, writableByPostgres: false },
        disk: [{ path: '/r', freeBytes: 1024 }],
        lock: { holder: { pid: 77, command: 'pitr', startedAt: 'x' }, alive: true },
      }),
    );
    const err = (await executePlan(ctx, p, opts()).catch((e: unknown) => e)) as RefusedError;
    expect(err).toBeInstanceOf(RefusedError);
    expect(err.exitCode).toBe(4);
    expect(err.failures.map((f) => f.id)).toEqual(['runs-as-root', 'tools-are-installed', 'name-is-free', 'port-is-free', 'repo-is-writable', 'enough-disk', 'cluster-is-not-locked']);
    expect(err.lines.filter((l) => l.startsWith('pgmam: initcluster refused:'))).toHaveLength(7);
    expect(runner.calls).toEqual([]);
    expect(fs.writes).toEqual([]);
  });

  it('refuses PostgreSQL 16 with pgBackRest 2.45', () => {
    const p = plan(facts({ pgVersion: '16', installedPg: ['16', '15'] }), opts({ pgVersion: '16' }));
    const failed = p.guards.map((g) => [g.id, g.check()] as const).filter(([, r]) => !r.ok);
    expect(failed.map(([id]) => id)).toEqual(['pg-version-is-supported']);
  });

  it('chooses the newest installed major that pgBackRest supports', () => {
    expect(chooseVersion(['16', '15'], '2.45')).toBe('15');
    expect(chooseVersion(['16', '15'], '2.50')).toBe('16');
    expect(chooseVersion(['16'], '2.45')).toBeUndefined();
  });

  it('no free port in the range', () => {
    const g = plan(facts({ port: undefined })).guards.find((x) => x.id === 'port-is-free')!;
    expect(g.check()).toMatchObject({ ok: false, reason: 'no free port in the range 5433-5999' });
  });
});

describe('initcluster plan', () => {
  it('steps in order, archiving to its own stanza, no --pg1-path in archive_command', () => {
    const p = plan(facts());
    expect(p.steps.map((s) => s.id)).toEqual(['create-cluster', 'close-to-users', 'configure-archiving', 'issue-certificate', 'require-tls', 'write-stanza-file', 'start-cluster', 'create-stanza', 'check-archiving', 'backup-full', 'verify-pitr-ready', 'record-managed', 'mark-backup', 'set-autostart', 'hand-over']);
    const text = renderPlan(p, 0);
    expect(text).toContain("archive_command = 'pgbackrest --stanza=app1 archive-push %p'");
    expect(text).not.toMatch(/archive_command.*pg1-path/);
    expect(text).toContain('pg1-port=5433');
    expect(text).toContain('$ runuser -u postgres -- pgbackrest --stanza=app1 --repo=1 --repo1-retention-full=2 --repo1-retention-full-type=count --type=full backup');
    expect(p.destructive).toBe(false);
  });

  it('creates the repository only when it is missing', () => {
    expect(plan(facts({ repo: { path: '/new', exists: false, writableByPostgres: undefined } })).steps[0]!.id).toBe('create-repo');
  });

  it('uses systemctl when systemd runs', () => {
    const p = assemblePlan(initClusterCommand, facts(), opts(), env(true));
    const start = p.steps.find((s) => s.id === 'start-cluster')!;
    expect(start.run).toMatchObject({ argv: ['systemctl', 'start', 'postgresql@15-app1'] });
  });

  /** The create-database step run against a recording runner: the psql call it made. */
  async function createDatabaseCall(p: ReturnType<typeof plan>, files: Record<string, string> = {}) {
    const { ctx, runner, fs } = fakeContext();
    for (const [f, t] of Object.entries(files)) fs.files.set(f, t);
    runner.register(/psql/);
    await (p.steps.find((s) => s.id === 'create-database')!.run as (c: typeof ctx) => Promise<void>)(ctx);
    return runner.calls[0]!;
  }

  it('the password travels as a SCRAM verifier on stdin, never in argv or the plan', async () => {
    const p = plan(facts({ password: 'hunter2' }), opts({ db: 'shop', owner: 'shop', passwordFile: '/pw' }));
    const cmd = await createDatabaseCall(p);
    expect(cmd.argv.join(' ')).not.toContain('hunter2');
    expect(cmd.input).toMatch(/CREATE ROLE "shop" LOGIN PASSWORD 'SCRAM-SHA-256\$4096:/);
    expect(cmd.input).not.toContain('hunter2');
    expect(cmd.input).toContain('CREATE DATABASE "shop" OWNER "shop";');
    expect(renderPlan(p, 0)).not.toContain('SCRAM-SHA-256$');
  });

  it('--owner without --password-file: a password generated into secrets-dir (0600 root) first, read when the role is made', async () => {
    const file = '/etc/pgmam/secrets/app1-shop.pw';
    const p = plan(facts({ generated: { file, exists: false } }), opts({ db: 'shop', owner: 'shop' }));
    const ids = p.steps.map((s) => s.id);
    expect(ids.indexOf('generate-password')).toBe(ids.indexOf('create-database') - 1);
    expect(renderPlan(p, 0)).toContain(`CREATE ROLE "shop" LOGIN PASSWORD '<SCRAM-SHA-256 verifier of ${file}>';`);
    expect(p.journal).toMatchObject({ data: { secretFile: file } });
    const cmd = await createDatabaseCall(p, { [file]: 'generated-secret\n' });
    expect(cmd.input).toMatch(/CREATE ROLE "shop" LOGIN PASSWORD 'SCRAM-SHA-256\$4096:/);
    expect(cmd.input).not.toContain('generated-secret');
    // A password once made is never replaced: refused when the file is there already.
    expect(plan(facts({ generated: { file, exists: true } }), opts({ db: 'shop', owner: 'shop' })).guards.filter((g) => !g.check().ok).map((g) => g.id)).toEqual(['generated-password-file-is-free']);
  });

  it('--listen and --conf: their settings in a conf.d file of their own before the first start; keys pgmam sets are refused', () => {
    const p = plan(facts({ extras: { conf: { file: '/root/app.conf', text: "work_mem = '16MB'\n" } } }), opts({ listen: '*', conf: '/root/app.conf' }));
    const ids = p.steps.map((s) => s.id);
    expect(ids.indexOf('apply-conf')).toBeLessThan(ids.indexOf('start-cluster'));
    expect(renderPlan(p, 0)).toContain("write /etc/postgresql/15/app1/conf.d/91-pgmam-conf.conf:\n       | # Written by pgmam from /root/app.conf\n       | work_mem = '16MB'\n       | listen_addresses = '*'");
    const bad = plan(facts({ extras: { conf: { file: '/root/app.conf', text: 'port = 5999\n' } } }), opts({ conf: '/root/app.conf' }));
    expect(bad.guards.filter((g) => !g.check().ok).map((g) => g.check())).toEqual([expect.objectContaining({ reason: "--conf /root/app.conf sets port, which would break pgmam's archiving, port and data directory settings" })]);
  });

  it('--dry-run prints the plan and runs nothing', async () => {
    const { ctx, runner, fs, out } = fakeContext();
    expect(await executePlan(ctx, plan(facts()), opts({ dryRun: true }))).toBe('dry-run');
    expect(out.join('')).toContain('$ pg_createcluster 15 app1 --port 5433 -d /var/lib/postgresql/15/app1 -- --data-checksums');
    expect(runner.calls).toEqual([]);
    expect(fs.writes).toEqual([]);
  });

  it('a failed step undoes what was made, newest first, and reports the step (exit 6)', async () => {
    const { ctx, runner, fs } = fakeContext();
    fs.files.set('/etc/postgresql/15/app1/pg_hba.conf', DEBIAN_HBA);
    stubOpenssl(runner)
      .register('pg_createcluster 15 app1 --port 5433 -d /var/lib/postgresql/15/app1 -- --data-checksums')
      .register('pg_lsclusters --json', { stdout: '[]' })
      .register(/pg_controldata/, { stdout: 'Database system identifier:           7710859106177468397\n' })
      .register('rm -rf -- /var/spool/pgbackrest/archive/app1')
      .register('pg_ctlcluster 15 app1 start')
      .register('pgbackrest --stanza=app1 stanza-create')
      .register('pgbackrest --stanza=app1 check')
      .register(/psql.*pg_snapshot_xmax/, { stdout: '800\n' })
      .register('pgbackrest --stanza=app1 --repo=1 --repo1-retention-full=2 --repo1-retention-full-type=count --type=full backup', { exitCode: 99, stderr: 'ERROR: [099]: boom' })
      .register('pgbackrest --stanza=app1 stop')
      .register('pgbackrest --stanza=app1 --repo=1 stanza-delete --force')
      .register('pg_dropcluster --stop 15 app1');
    const err = (await executePlan(ctx, plan(facts()), opts()).catch((e: unknown) => e)) as StepFailedError;
    expect(err).toBeInstanceOf(StepFailedError);
    expect(err.exitCode).toBe(6);
    const text = err.lines.join('\n');
    expect(text).toContain('failed at step 10/15 backup-full');
    expect(text).toContain('ERROR: [099]: boom');
    expect(text).toContain('nothing this run made is left behind');
    const writes = runner.writes().map((c) => c.argv.join(' '));
    expect(writes.slice(-4)).toEqual(['pgbackrest --stanza=app1 stop', 'pgbackrest --stanza=app1 --repo=1 stanza-delete --force', 'rm -rf -- /var/spool/pgbackrest/archive/app1', 'pg_dropcluster --stop 15 app1']);
    expect(fs.files.has('/etc/pgbackrest/conf.d/app1.conf')).toBe(false);
    expect(fs.files.has('/var/lib/pgmam/locks/app1.lock')).toBe(false);
    runner.verify();
  });

  it('--keep-on-error keeps what was made and says how to go back', async () => {
    const { ctx, runner, fs } = fakeContext();
    fs.files.set('/etc/postgresql/15/app1/pg_hba.conf', DEBIAN_HBA);
    stubOpenssl(runner).register(/^pg_createcluster/).register(/pg_controldata/).register('pg_lsclusters --json', { stdout: '[]' }).register(/^rm -rf -- \/var\/spool/).register(/^pg_ctlcluster/).register(/stanza-create$/, { exitCode: 1, stderr: 'nope' });
    const err = (await executePlan(ctx, plan(facts()), opts({ keepOnError: true })).catch((e: unknown) => e)) as StepFailedError;
    expect(err.lines.join('\n')).toContain('kept as it is (--keep-on-error)');
    expect(fs.files.has('/etc/pgbackrest/conf.d/app1.conf')).toBe(true);
    expect(runner.writes().map((c) => c.argv[0])).toEqual(['pg_createcluster', 'openssl', 'openssl', 'openssl', 'rm', 'pg_ctlcluster', 'pgbackrest']);
  });

  it('a live lock refuses; a stale lock is taken over', async () => {
    const live = fakeContext();
    live.fs.files.set('/var/lib/pgmam/locks/app1.lock', JSON.stringify({ pid: 4242, command: 'pitr', startedAt: 'x' }));
    // pid 4242 is "alive" in the fake host: the lock is respected even if facts were gathered earlier.
    await expect(executePlan(live.ctx, { ...plan(facts()), steps: [] }, opts())).rejects.toBeInstanceOf(RefusedError);

    const stale = fakeContext();
    stale.fs.files.set('/var/lib/pgmam/locks/app1.lock', JSON.stringify({ pid: 99999, command: 'pitr', startedAt: 'x' }));
    expect(await executePlan(stale.ctx, { ...plan(facts()), steps: [] }, opts())).toBe('done');
    expect(stale.fs.files.has('/var/lib/pgmam/locks/app1.lock')).toBe(false);
  });
});

describe('confirmation of destructive plans', () => {
  const destructive = () => ({ ...plan(facts()), destructive: true, steps: [] });
  it('without a terminal and without --yes: usage error, nothing runs', async () => {
    const { ctx, runner } = fakeContext({ interactive: false });
    await expect(executePlan(ctx, destructive(), opts())).rejects.toMatchObject({ exitCode: 2 });
    expect(runner.calls).toEqual([]);
  });
  it('declined on a terminal: cancelled (exit 5)', async () => {
    const { ctx } = fakeContext({ interactive: true, confirm: false });
    await expect(executePlan(ctx, destructive(), opts())).rejects.toMatchObject({ exitCode: 5 });
  });
  it('--yes runs without asking', async () => {
    const { ctx } = fakeContext({ interactive: false });
    expect(await executePlan(ctx, destructive(), opts({ yes: true }))).toBe('done');
  });
});
