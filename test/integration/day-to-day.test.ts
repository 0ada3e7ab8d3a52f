// Per-app operations on a real app: show, status, conninfo (URIs psql connects with), logs, start,
// stop and restart (stop asks on a terminal when a session is connected, and is refused without one
// and without --yes), set-port (the stanza file follows; backups keep working), and an unknown
// command that never suggests a destructive one.
import { execa, type ResultPromise } from 'execa';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFIG, freePort, listEntry, pgmam, pgmamOk, PGMAM, removeTestCluster, ROOT, sh, sql, STANZA_DIR, TEST_ROOT, uniqueName } from './helpers.js';

let app = '';
let port = 0;

beforeAll(async () => {
  app = uniqueName();
  await pgmamOk(['initcluster', app, '--yes', '-q']);
  port = (await listEntry(app)).port;
  await sql(port, 'create table t (k text)');
}, 120_000);

const other: string[] = [];
afterAll(async () => {
  for (const n of [app, ...other]) await removeTestCluster(n);
}, 120_000);

/** A session held open on the app (as an application would), until ended by endSessions. */
function heldSession(): ResultPromise {
  return execa('runuser', ['-u', 'postgres', '--', 'psql', '-X', '-h', '/var/run/postgresql', '-p', String(port), '-c', 'select pg_sleep(120) -- held by the test'], { reject: false });
}
/** Ends the test's held sessions on the server (killing runuser may leave its psql connected). */
const endSessions = async (s: ResultPromise) => {
  await sql(port, "select pg_terminate_backend(pid) from pg_stat_activity where query like '%held by the test%' and pid <> pg_backend_pid()").catch(() => '');
  await s;
};
const sessionsOn = async () => Number(await sql(port, "select count(*) from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid()"));
async function waitSessions(n: number): Promise<void> {
  for (let i = 0; i < 100 && (await sessionsOn()) < n; i++) await new Promise((ok) => setTimeout(ok, 100));
  expect(await sessionsOn()).toBeGreaterThanOrEqual(n);
}

describe('read-only: show, status, conninfo, logs', () => {
  it('status: one line, and --json with pid and sessions', async () => {
    const r = await pgmamOk(['status', app]);
    expect(r.stdout).toMatch(new RegExp(`^15/${app}: online, port ${port}, pid \\d+, up \\d+ (s|min); \\d+ session\\(s\\); primary; .*starts at boot$`));
    const j = JSON.parse((await pgmamOk(['status', app, '--json'])).stdout) as { status: string; pid: number; sessions: number };
    expect(j).toMatchObject({ status: 'online', pid: expect.any(Number), sessions: expect.any(Number) });
  });

  it('show --json: where it is, what it holds, how it is backed up', async () => {
    const d = JSON.parse((await pgmamOk(['show', app, '--json'])).stdout) as { port: number; dataDir: string; logFile: string; databases: Array<{ name: string; bytes: number }>; stanza: string; repos: Array<{ name: string; lastBackup: { type: string } }>; lastDrill: null; startAtBoot: string };
    expect(d).toMatchObject({ port, dataDir: `/var/lib/postgresql/15/${app}`, logFile: `/var/log/postgresql/postgresql-15-${app}.log`, stanza: app, lastDrill: null, startAtBoot: 'auto' });
    expect(d.databases.find((x) => x.name === 'postgres')?.bytes).toBeGreaterThan(1_000_000);
    expect(d.repos[0]).toMatchObject({ name: 'local', lastBackup: { type: 'full' } });
    expect((await pgmamOk(['show', app])).stdout).toMatch(/^databases +postgres \d/m);
  });

  it('conninfo: the local URI psql connects with as postgres; with a role, TCP with TLS verified against pgmam\'s CA', async () => {
    const local = (await pgmamOk(['conninfo', app])).stdout.trim();
    expect((await sh('psql', ['-X', '-At', '-c', 'select 1', local], { user: 'postgres' })).stdout.trim()).toBe('1');
    await sql(port, "create role ci_user login password 'ci-secret'");
    const tcp = (await pgmamOk(['conninfo', app, '--role', 'ci_user'])).stdout.trim();
    expect(tcp).toMatch(new RegExp(`^postgresql://ci_user@localhost:${port}/postgres\\?sslmode=verify-full&sslrootcert=`));
    const r = await sh('psql', ['-X', '-At', '-c', 'select ssl from pg_stat_ssl where pid = pg_backend_pid()', tcp], { env: { PGPASSWORD: 'ci-secret', PATH: process.env['PATH'] ?? '' } });
    expect(r.stdout.trim(), r.stderr).toBe('t');
  });

  it('logs: the last lines of the server log; --pgmam: pgmam\'s own lines about the app', async () => {
    const server = readFileSync(`/var/log/postgresql/postgresql-15-${app}.log`, 'utf8').trimEnd().split('\n');
    expect((await pgmamOk(['logs', app, '-n', '3'])).stdout).toBe(server.slice(-3).join('\n'));
    const own = (await pgmamOk(['logs', app, '--pgmam', '-n', '1000'])).stdout;
    expect(own).toMatch(new RegExp(`\\[initcluster\\] begin initcluster 15/${app}`));
  });

  it('check --prometheus into a directory that does not exist: exit 4 with one clear line, no stack trace', async () => {
    const r = await pgmam(['check', app, '--prometheus', '/nonexistent/dir/x.prom']);
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toContain('pgmam: check refused: --prometheus /nonexistent/dir/x.prom: the directory /nonexistent/dir does not exist');
    expect(r.stderr).not.toMatch(/internal error|at .*\.js:\d+/);
  });

  it('list fits 80 columns (COLUMNS=80, every cluster on the host); names filter; -o wide has every column', async () => {
    const all = await pgmam(['list'], { env: { COLUMNS: '80' } });
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout.split('\n').filter((l) => l.length > 80)).toEqual([]);
    const one = (await pgmamOk(['list', app])).stdout.trimEnd().split('\n');
    expect(one).toHaveLength(2);
    expect(one[1]).toMatch(new RegExp(`^15/${app} +${port} +online +app +full \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ +-$`));
    expect((await pgmamOk(['list', app, '-o', 'wide'])).stdout.split('\n')[0]).toMatch(/RECOVERY WINDOW +PRESERVED$/);
    expect((await pgmam(['list', 't_nosuchapp'])).code).toBe(4);
  });

  it('--json errors: one JSON object on stdout (code, message, every refusal) as well as the stderr lines', async () => {
    const r = await pgmam(['status', 't_nosuchapp', '--json']);
    expect(r.code, r.stderr).toBe(4);
    expect(JSON.parse(r.stdout)).toEqual({ error: { code: 4, message: 'status refused: t_nosuchapp is not managed by pgmam', refusals: [{ guard: 'cluster-is-managed', reason: 't_nosuchapp is not managed by pgmam', hint: 'see pgmam list' }] } });
    expect(r.stderr).toContain('pgmam: status refused: t_nosuchapp is not managed by pgmam');
    const u = await pgmam(['list', '--nope', '--json']);
    expect(u.code, u.stderr).toBe(2);
    expect(JSON.parse(u.stdout)).toMatchObject({ error: { code: 2, message: expect.stringContaining("unknown option '--nope'") } });
  });

  it('an unknown command never suggests one that changes anything', async () => {
    const r = await pgmam(['stp', app]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toBe("pgmam: unknown command 'stp'; see pgmam --help");
  });
});

describe('stop, start, restart', () => {
  it('stop with a session connected and no terminal, without --yes: exit 2, still running, the session alive', async () => {
    const s = heldSession();
    await waitSessions(1);
    expect((await pgmam(['stop', app])).code).toBe(2);
    expect((await listEntry(app)).status).toBe('online');
    expect(await sessionsOn()).toBeGreaterThanOrEqual(1);
    await endSessions(s);
  });

  it('stop on a terminal with a session connected: the prompt says the downtime; declined, nothing changes (exit 5)', async () => {
    const s = heldSession();
    await waitSessions(1);
    const r = await execa('python3', [`${ROOT}/test/integration/pty-drive.py`, '60', 'Run these 1 steps', 'n\\r', '--', PGMAM, 'stop', app], { reject: false, env: { PGMAM_CONFIG: CONFIG } });
    expect(r.exitCode, r.stdout).toBe(5);
    // The plan's first line, then the prompt repeats it (the terminal may wrap it).
    expect(r.stdout).toMatch(new RegExp(`downtime: 15/${app} stops until pgmam start ${app}; \\d+ sessions? (is|are) connected and will be cut`));
    expect(r.stdout).toContain(`Downtime: 15/${app} stops until pgmam start ${app};`);
    expect((await listEntry(app)).status).toBe('online');
    await endSessions(s);
  });

  it('stop --yes cuts the session; start brings it back accepting connections; restart too', async () => {
    const s = heldSession();
    await waitSessions(1);
    await pgmamOk(['stop', app, '--yes']);
    expect((await listEntry(app)).status).toBe('down');
    expect((await s).exitCode).not.toBe(0);
    expect((await pgmamOk(['stop', app])).stdout).toBe(`15/${app} is already stopped: nothing to do`);
    await pgmamOk(['start', app]);
    expect(await sql(port, 'select 1')).toBe('1');
    const before = await sql(port, 'select pg_postmaster_start_time()');
    await pgmamOk(['restart', app, '--yes']);
    expect(await sql(port, 'select pg_postmaster_start_time()')).not.toBe(before);
  });
});

describe('set-port', () => {
  it('the cluster and its stanza file on the new port together; archiving and backups keep working', { timeout: 120_000 }, async () => {
    await pgmamOk(['start', app]);
    const to = await freePort();
    await pgmamOk(['set-port', app, String(to), '--yes']);
    expect((await listEntry(app)).port).toBe(to);
    expect(readFileSync(`${STANZA_DIR}/${app}.conf`, 'utf8')).toContain(`pg1-port=${to}\n`);
    port = to;
    await sql(port, "insert into t values ('after the move')");
    expect((await sh('pgbackrest', [`--stanza=${app}`, 'check'], { user: 'postgres' })).code).toBe(0);
    expect((await pgmam(['backup', app, '--type', 'full'])).code).toBe(0);
  });

  it('refused, nothing changed: the port it has, a port another cluster has', async () => {
    expect((await pgmam(['set-port', app, String(port), '--yes'])).code).toBe(4);
    expect((await pgmam(['set-port', app, '80'])).code).toBe(2);
    expect((await listEntry(app)).port).toBe(port);
  });
});

describe('check says why and what to do', () => {
  it('a stopped stanza: said at once with how to start it (exit 7); -q prints nothing once healthy again', { timeout: 120_000 }, async () => {
    expect((await sh('pgbackrest', [`--stanza=${app}`, 'stop'], { user: 'postgres' })).code).toBe(0);
    try {
      const t0 = Date.now();
      const r = await pgmam(['check', app]);
      expect(r.code, r.stderr).toBe(7);
      expect(r.stdout).toContain(`its stanza ${app} is stopped (pgbackrest stop): archiving and backups refuse until it is started (hint: runuser -u postgres -- pgbackrest --stanza=${app} start)`);
      // Not pgbackrest check's minute of waiting for a segment that cannot be archived.
      expect(Date.now() - t0).toBeLessThan(30_000);
    } finally {
      expect((await sh('pgbackrest', [`--stanza=${app}`, 'start'], { user: 'postgres' })).code).toBe(0);
    }
    const quiet = await pgmam(['check', app, '-q']);
    expect(quiet.code, quiet.stdout).toBe(0);
    expect(quiet.stdout).toBe('');
  });
});

describe('initcluster for apps', () => {
  it('--owner without --password-file: a password generated into secrets-dir (0600 root); the success line says how to connect, and it works; --listen and --conf apply', { timeout: 120_000 }, async () => {
    const name = uniqueName();
    other.push(name);
    const secrets = `${TEST_ROOT}/secrets`;
    const conf = `${TEST_ROOT}/${name}.conf`;
    writeFileSync(conf, "work_mem = '16MB'\n");
    const cfg = `${TEST_ROOT}/initcluster-secrets.conf`;
    writeFileSync(cfg, `${readFileSync(CONFIG, 'utf8')}secrets-dir = ${secrets}\n`);
    const r = await pgmam(['initcluster', name, '--db', 'shop', '--owner', 'shop', '--listen', '*', '--conf', conf, '--yes'], { env: { PGMAM_CONFIG: cfg } });
    expect(r.code, r.stderr).toBe(0);
    const file = `${secrets}/${name}-shop.pw`;
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(file).uid).toBe(0);
    const password = readFileSync(file, 'utf8').trim();
    expect(password).toMatch(/^[A-Za-z0-9_-]{24}$/);
    const p = (await listEntry(name)).port;
    const uri = /^connect: (\S+)$/m.exec(r.stdout)?.[1];
    expect(uri).toMatch(new RegExp(`^postgresql://shop@\\S+:${p}/shop\\?sslmode=verify-full&sslrootcert=`));
    expect(r.stdout).toContain(`the password of shop is in ${file}`);
    expect(r.stdout + r.stderr).not.toContain(password);
    // Over localhost (pg_hba.conf's own rules admit it; the certificate names localhost too).
    const local = uri!.replace(/@[^:/]+:/, '@localhost:');
    const c = await sh('psql', ['-X', '-At', '-c', "select current_user || ' ' || current_setting('listen_addresses') || ' ' || current_setting('work_mem')", local], { env: { PGPASSWORD: password, PATH: process.env['PATH'] ?? '' } });
    expect(c.stdout.trim(), c.stderr).toBe('shop * 16MB');
  });
});
