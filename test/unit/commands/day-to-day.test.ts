// Per-app operations: start, stop, restart (plans, the downtime line, asking when sessions are
// connected), status, conninfo, logs.
import { describe, expect, it } from 'vitest';
import { conninfoOf, type ConninfoTarget } from '../../../src/pg/conninfo.js';
import { controlGuards, recoverControl, renderStatus, startCommand, stopCommand, restartCommand, type ControlFacts, type ControlOptions } from '../../../src/commands/control/control.js';
import { pgmamLines } from '../../../src/commands/logs/logs.js';
import { recoverSetPort, setPortCommand, setPortGuards, type SetPortFacts, type SetPortOptions } from '../../../src/commands/set-port/set-port.js';
import { assemblePlan, runCommand } from '../../../src/plan/command.js';
import { renderPlan } from '../../../src/plan/render.js';
import type { Journal } from '../../../src/state/journal.js';
import { fakeContext } from '../fakes.js';
import { aCluster, aRecord, planEnv } from '../fixtures.js';

const env = planEnv();
const facts = (over: Partial<ControlFacts> = {}): ControlFacts => ({ uid: 0, record: aRecord('app1'), cluster: aCluster('app1'), sessions: 0, ...over });
const o = (action: ControlOptions['action']): ControlOptions => ({ name: 'app1', action, json: false, dryRun: false, yes: false, keepOnError: false });
const cmd = { start: startCommand, stop: stopCommand, restart: restartCommand };
const plan = (action: ControlOptions['action'], f = facts()) => assemblePlan(cmd[action], f, o(action), env);

describe('start, stop, restart', () => {
  it('stop: stops and verifies the postmaster is gone; the plan opens with the downtime and the sessions it cuts', () => {
    const p = plan('stop', facts({ sessions: 3 }));
    expect(p.steps.map((s) => s.id)).toEqual(['stop-cluster']);
    expect(renderPlan(p, 0).split('\n')[0]).toBe('downtime: 15/app1 stops until pgmam start app1; 3 sessions are connected and will be cut');
    expect(p).toMatchObject({ destructive: true, locks: ['app1'], journal: { rerun: 'pgmam stop app1 --yes' } });
  });
  it('stop with no session connected does not ask', () => {
    expect(plan('stop').destructive).toBe(false);
    expect(plan('stop').downtime).toBe('15/app1 stops until pgmam start app1; no session is connected');
  });
  it('start: starts and waits until it accepts connections; no downtime, never asks', () => {
    const p = plan('start', facts({ cluster: aCluster('app1', { running: false }), sessions: undefined }));
    expect(p.steps.map((s) => s.id)).toEqual(['start-cluster', 'verify-accepting']);
    expect(p).toMatchObject({ destructive: false });
    expect(p.downtime).toBeUndefined();
  });
  it('restart: stop, start, accepting; through systemctl where systemd runs', () => {
    const p = assemblePlan(restartCommand, facts({ sessions: 1 }), o('restart'), planEnv({ systemd: true }));
    expect(p.steps.map((s) => s.id)).toEqual(['stop-cluster', 'start-cluster', 'verify-accepting']);
    expect(renderPlan(p, 0)).toContain('$ systemctl stop postgresql@15-app1');
    expect(p.downtime).toContain('1 session is connected and will be cut');
  });
  it('nothing to do: start of a running cluster, stop of a stopped one', () => {
    expect(plan('start').steps).toEqual([]);
    expect(plan('stop', facts({ cluster: aCluster('app1', { running: false }) })).steps).toEqual([]);
  });
  it('refuses an unmanaged name, and a non-root user', () => {
    const failed = (f: ControlFacts) => controlGuards(f, o('stop')).filter((g) => !g.check().ok).map((g) => g.id);
    expect(failed(facts({ record: undefined, cluster: undefined }))).toEqual(['cluster-is-managed']);
    expect(failed(facts({ uid: 1000 }))).toEqual(['runs-as-root']);
  });
  it('stop with sessions connected, no terminal and no --yes: exit 2, nothing runs', async () => {
    const { ctx, runner } = fakeContext();
    runner.register('pg_lsclusters --json', { stdout: JSON.stringify([{ version: 15, cluster: 'app1', port: 5433, running: 1, pgdata: '/var/lib/postgresql/15/app1', configdir: '/etc/postgresql/15/app1', logfile: '/l' }]) });
    runner.register(/psql .*pg_stat_activity/, { stdout: '2\n' });
    const { fs } = { fs: ctx.fs as import('../fakes.js').MemoryFs };
    fs.files.set(`${ctx.paths.clustersDir}/app1.json`, JSON.stringify(aRecord('app1')));
    await expect(runCommand(ctx, stopCommand, o('stop'))).rejects.toMatchObject({ exitCode: 2 });
    expect(runner.writes()).toEqual([]);
  });
  it('an interrupted stop is finished by its re-run', async () => {
    const { ctx } = fakeContext();
    const j = { name: 'app1', target: '15/app1' } as Journal;
    const r = await recoverControl(ctx, j, { action: 'stop', version: '15', port: 5433, dataDir: '/var/lib/postgresql/15/app1' });
    expect(r).toMatchObject({ way: 'finished' });
    expect(r.steps.map((s) => s.id)).toEqual(['stop-cluster']);
  });
});

describe('status', () => {
  const now = Date.parse('2026-12-01T12:00:00Z');
  it('one line for a running cluster', () => {
    expect(
      renderStatus({ cluster: '15/app1', status: 'online', port: 5433, pid: 4242, startedAt: '2026-12-01T10:00:00.000Z', sessions: 3, inRecovery: false, archiving: { lastArchivedWal: '000000010000000000000005', lastArchivedAt: '2026-12-01T11:59:48Z', failedCount: 0, failing: false }, startAtBoot: 'auto' }, now),
    ).toBe('15/app1: online, port 5433, pid 4242, up 2 h; 3 session(s); primary; archived 000000010000000000000005 12 s ago; starts at boot\n');
  });
  it('a stopped one', () => {
    expect(renderStatus({ cluster: '15/app1', status: 'down', port: 5433, pid: null, startedAt: null, sessions: null, inRecovery: null, archiving: null, startAtBoot: 'manual' }, now)).toBe('15/app1: down, port 5433; does not start at boot (start.conf manual)\n');
  });
});

describe('conninfo', () => {
  const f = (over: Partial<ConninfoTarget> = {}): ConninfoTarget => ({ port: 5433, listen: '*', host: 'db1.example.net', tls: true, caFile: '/etc/pgmam/tls/ca.crt', passwordFile: undefined, ...over });
  it('without a role: the local socket as the postgres OS user', () => {
    expect(conninfoOf(f(), {}).uri).toBe('postgresql:///postgres?host=%2Fvar%2Frun%2Fpostgresql&port=5433&user=postgres');
  });
  it('with a role: TCP to the host\'s FQDN, TLS verified against pgmam\'s CA; the password only by its file', () => {
    expect(conninfoOf(f({ passwordFile: '/etc/pgmam/secrets/app1-shop.pw' }), { db: 'shop', role: 'shop' })).toEqual({
      uri: 'postgresql://shop@db1.example.net:5433/shop?sslmode=verify-full&sslrootcert=%2Fetc%2Fpgmam%2Ftls%2Fca.crt',
      host: 'db1.example.net',
      port: 5433,
      dbname: 'shop',
      user: 'shop',
      sslmode: 'verify-full',
      sslrootcert: '/etc/pgmam/tls/ca.crt',
      passwordFile: '/etc/pgmam/secrets/app1-shop.pw',
    });
  });
  it('listening on localhost only: localhost; without pgmam\'s TLS: sslmode=prefer', () => {
    expect(conninfoOf(f({ listen: 'localhost', tls: false }), { role: 'r' }).uri).toBe('postgresql://r@localhost:5433/postgres?sslmode=prefer');
  });
});

describe('logs --pgmam', () => {
  it('the lines about the app (its name as a whole word), readable; not another app whose name contains it', () => {
    const text = [
      JSON.stringify({ level: 30, time: Date.parse('2026-12-01T04:38:32.123Z'), command: 'backup', msg: 'begin backup 15/app1' }),
      JSON.stringify({ level: 30, time: Date.parse('2026-12-01T04:38:33Z'), command: 'backup', msg: 'begin backup 15/app10' }),
      JSON.stringify({ level: 'warn', time: '2026-12-01T04:38:34.000Z', command: 'branch create', msg: 'app1_dev: interrupted' }),
      JSON.stringify({ level: 50, time: Date.parse('2026-12-01T04:38:35Z'), command: 'pitr', msg: 'step failed', target: '15/app1' }),
    ].join('\n');
    expect(pgmamLines(text, 'app1')).toEqual(['2026-12-01 04:38:32Z INFO  [backup] begin backup 15/app1', '2026-12-01 04:38:35Z ERROR [pitr] step failed']);
  });
});

describe('set-port', () => {
  const sf = (over: Partial<SetPortFacts> = {}): SetPortFacts => ({ uid: 0, record: aRecord('app1'), cluster: aCluster('app1'), portConfiguredBy: [], portHeldBy: undefined, sessions: 2, replicas: [], stanzaPort: 5433, lock: { holder: undefined, alive: false }, ...over });
  const so: SetPortOptions = { name: 'app1', port: 5544, json: false, dryRun: false, yes: false, keepOnError: false };
  const failed = (f: SetPortFacts, o = so) => setPortGuards(f, o, env).filter((g) => !g.check().ok).map((g) => g.id);
  it('the port and the stanza file together (as postgres for its configuration), then a restart on the new port and an archiving check', () => {
    const p = assemblePlan(setPortCommand, sf(), so, env);
    expect(p.steps.map((s) => s.id)).toEqual(['set-port', 'point-stanza-file', 'stop-cluster', 'start-cluster', 'verify-accepting', 'check-archiving']);
    const text = renderPlan(p, 0);
    expect(text).toContain('$ runuser -u postgres -- pg_conftool 15 app1 set port 5544');
    expect(text).toContain('in /etc/pgbackrest/conf.d/app1.conf: pg1-path=/var/lib/postgresql/15/app1, pg1-port=5544');
    expect(text.split('\n')[0]).toBe('downtime: 15/app1 restarts on port 5544 (a few seconds); 2 sessions are connected and will be cut; clients must use port 5544 from then on');
    expect(p.destructive).toBe(true);
  });
  it('the port changed by hand (pg_conftool), the stanza file behind: set-port to the port it runs on realigns the stanza file only', () => {
    const p = assemblePlan(setPortCommand, sf({ stanzaPort: 5432 }), { ...so, port: 5433 }, env);
    expect(p.steps.map((s) => s.id)).toEqual(['point-stanza-file', 'check-archiving']);
    expect(p.downtime).toBeUndefined();
  });
  it('a stopped cluster: only the two files', () => {
    expect(assemblePlan(setPortCommand, sf({ cluster: aCluster('app1', { running: false }), sessions: undefined }), so, env).steps.map((s) => s.id)).toEqual(['set-port', 'point-stanza-file']);
  });
  it.each([
    ['the port it has', sf(), { ...so, port: 5433 }, ['port-differs']],
    ['a port another cluster has', sf({ portConfiguredBy: ['15/other'] }), so, ['port-is-free']],
    ['a port something listens on', sf({ portHeldBy: "something is listening on it" }), so, ['port-is-free']],
    ['an app with replicas', sf({ replicas: ['15/app1_replica'] }), so, ['cluster-has-no-replicas']],
    ['an unmanaged name', sf({ record: undefined, cluster: undefined }), so, ['cluster-is-managed']],
  ])('refuses %s', (_w, f, o, ids) => expect(failed(f, o)).toEqual(ids));
  it('an interrupted set-port is finished, never left half-way', async () => {
    const { ctx } = fakeContext();
    const r = await recoverSetPort(ctx, { name: 'app1', target: '15/app1' } as Journal, { port: 5544, from: 5433, version: '15', stanza: 'app1', stanzaFile: '/etc/pgbackrest/conf.d/app1.conf', dataDir: '/var/lib/postgresql/15/app1', running: true });
    expect(r.way).toBe('finished');
    expect(r.steps.map((s) => s.id)).toEqual(['set-port', 'point-stanza-file', 'stop-cluster', 'start-cluster', 'verify-accepting', 'check-archiving']);
  });
});
