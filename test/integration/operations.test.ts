// check, adopt, prune and autostart on real clusters.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { clusters, freePort, listEntry, pgbackrestInfo, pgmam, pgmamOk, removeTestCluster, sh, sql, targetBetween, TEST_ROOT, traces, uniqueName } from './helpers.js';

const made: string[] = [];
afterAll(async () => {
  for (const n of made.reverse()) await removeTestCluster(n);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const startConf = (name: string) => readFileSync(`/etc/postgresql/15/${name}/start.conf`, 'utf8').split('\n').filter((l) => l && !l.startsWith('#'))[0];

interface Health {
  cluster: string;
  managed: boolean;
  healthy: boolean | null;
  problems: string[];
  archive: { checkOk: boolean | null } | null;
}

describe('pgmam adopt', () => {
  it('brings a plain pg_createcluster cluster under pgmam: archiving to its own stanza, a full backup, rows untouched', async () => {
    const name = uniqueName();
    made.push(name);
    const port = await freePort();
    expect((await sh('pg_createcluster', ['15', name, '--port', String(port), '--start'])).code).toBe(0);
    await sql(port, 'create table t as select g from generate_series(1, 50) g');
    await sql(port, 'select pg_reload_conf()');

    // Without --yes and without a terminal: the restart it needs is refused (exit 2), nothing changes.
    const noYes = await pgmam(['adopt', `15/${name}`]);
    expect(noYes.code, noYes.stderr).toBe(2);
    expect(await traces(name)).toEqual([`cluster 15/${name}`, `/etc/postgresql/15/${name}`, `/var/lib/postgresql/15/${name}`]);

    const r = await pgmam(['adopt', `15/${name}`, '--yes', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ cluster: `15/${name}`, stanza: name, restarted: true });
    const e = await listEntry(name);
    expect(e).toMatchObject({ managed: true, role: 'app', stanza: name, status: 'online', port });
    expect(e.lastBackup?.type).toBe('full');
    expect(await sql(port, 'select count(*) from t')).toBe('50');
    expect(await sql(port, 'show archive_mode')).toBe('on');
    expect((await sh('pgbackrest', [`--stanza=${name}`, 'check'], { user: 'postgres' })).code).toBe(0);
    expect(startConf(name)).toBe('auto');

    // Adopting again: refused, nothing changes.
    const backups = (await pgbackrestInfo(name))[0]!.backup.length;
    const again = await pgmam(['adopt', `15/${name}`, '--yes']);
    expect(again.code, again.stderr).toBe(4);
    expect((await pgbackrestInfo(name))[0]!.backup.length).toBe(backups);
  });

  it('refuses a cluster whose archive_command sends WAL elsewhere, unless --replace-archive-command', async () => {
    const name = uniqueName();
    made.push(name);
    const port = await freePort();
    const elsewhere = `${TEST_ROOT}/elsewhere-${name}`;
    await sh('install', ['-d', '-o', 'postgres', '-g', 'postgres', elsewhere]);
    expect((await sh('pg_createcluster', ['15', name, '--port', String(port), '--start', '--', '--no-sync'])).code).toBe(0);
    await sh('sh', ['-c', `printf "archive_mode = on\\narchive_command = 'cp %%p ${elsewhere}/%%f'\\n" > /etc/postgresql/15/${name}/conf.d/50-local.conf`]);
    await sh('pg_ctlcluster', ['15', name, 'restart']);
    const before = readdirSync(`/etc/postgresql/15/${name}/conf.d`).sort();

    const r = await pgmam(['adopt', `15/${name}`, '--yes']);
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toMatch(/archives WAL elsewhere/);
    expect(readdirSync(`/etc/postgresql/15/${name}/conf.d`).sort()).toEqual(before);
    expect((await listEntry(name)).managed).toBe(false);
    expect(existsSync(`/etc/pgbackrest/conf.d/${name}.conf`)).toBe(false);

    // archive_mode is on already: replaced without a restart (the old destination gets no more WAL).
    const pid = readFileSync(`/var/lib/postgresql/15/${name}/postmaster.pid`, 'utf8').split('\n')[0];
    const ok = await pgmam(['adopt', `15/${name}`, '--replace-archive-command', '--yes', '--json']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout).restarted).toBe(false);
    expect(readFileSync(`/var/lib/postgresql/15/${name}/postmaster.pid`, 'utf8').split('\n')[0]).toBe(pid);
    expect(await sql(port, 'show archive_command')).toContain(`--stanza=${name}`);
    await sh('rm', ['-rf', elsewhere]);
  });
});

describe('pgmam check', () => {
  it('exit 0 when healthy, 7 when archiving fails, textfile metrics written atomically; unmanaged clusters never count', async () => {
    const app = uniqueName();
    const plain = uniqueName();
    made.push(app, plain);
    await pgmamOk(['initcluster', app, '--yes', '-q']);
    const port = (await listEntry(app)).port;
    expect(startConf(app)).toBe('auto');
    expect((await sh('pg_createcluster', ['15', plain, '--port', String(await freePort())])).code).toBe(0);

    const prom = `${TEST_ROOT}/metrics/pgmam.prom`;
    await sh('install', ['-d', `${TEST_ROOT}/metrics`]);
    const ok = await pgmam(['check', app, plain, '--json', '--prometheus', prom]);
    expect(ok.code, ok.stderr).toBe(0);
    const health = JSON.parse(ok.stdout) as Health[];
    expect(health.find((h) => h.cluster === `15/${app}`)).toMatchObject({ managed: true, healthy: true, problems: [] });
    expect(health.find((h) => h.cluster === `15/${plain}`)).toMatchObject({ managed: false, healthy: null });
    const text = readFileSync(prom, 'utf8');
    expect(text).toContain(`pgmam_cluster_healthy{cluster="15/${app}"} 1`);
    expect(text).toContain(`pgmam_archive_check_ok{cluster="15/${app}"} 1`);
    expect(text).not.toContain(`cluster="15/${plain}"`);
    expect(readdirSync(`${TEST_ROOT}/metrics`)).toEqual(['pgmam.prom']); // no temporary file left

    // A failing archive_command: WAL piles up in pg_wal.
    await sql(port, "alter system set archive_command = '/bin/false'");
    await sql(port, 'select pg_reload_conf()');
    await sql(port, 'create table junk as select 1 a');
    await sql(port, 'select pg_switch_wal()');
    for (let i = 0; i < 50 && (await sql(port, 'select failed_count from pg_stat_archiver')) === '0'; i++) await sleep(100);
    const bad = await pgmam(['check', '--json', '--prometheus', prom]);
    expect(bad.code, bad.stderr).toBe(7);
    const mine = (JSON.parse(bad.stdout) as Health[]).find((h) => h.cluster === `15/${app}`)!;
    expect(mine.healthy).toBe(false);
    expect(mine.archive?.checkOk).toBe(false);
    expect(mine.problems.join('\n')).toMatch(/archive_command has failed/);
    const after = readFileSync(prom, 'utf8');
    expect(after).toContain(`pgmam_cluster_healthy{cluster="15/${app}"} 0`);
    expect(after).toContain(`pgmam_archive_failing{cluster="15/${app}"} 1`);

    await sql(port, 'alter system reset archive_command');
    await sql(port, 'select pg_reload_conf()');
    // Unknown names are refused; bad flags are usage errors.
    expect((await pgmam(['check', 't_nosuchcluster'])).code).toBe(4);
    expect((await pgmam(['check', app, '--user-not-an-option'])).code).toBe(2);
  });
});

describe('pgmam prune', () => {
  it('lists on --dry-run, keeps younger ones, removes older ones with --yes; refuses without --yes', async () => {
    const app = uniqueName();
    made.push(app);
    await pgmamOk(['initcluster', app, '--yes', '-q']);
    const port = (await listEntry(app)).port;
    const target = await targetBetween(port, 'create table t (a int)', 'insert into t values (1)');
    const p = await pgmam(['pitr', app, '--to', target, '--yes', '-q']);
    expect(p.code, p.stderr).toBe(0);
    const preserved = (await listEntry(app)).preserved.map((x) => x.path);
    expect(preserved).toHaveLength(1);

    const dry = await pgmam(['prune', app, '--older-than', '0s', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`rm -rf ${preserved[0]}`);
    expect(existsSync(preserved[0]!)).toBe(true);

    const young = await pgmam(['prune', app, '--older-than', '1h', '--yes']);
    expect(young.code, young.stderr).toBe(0);
    expect(existsSync(preserved[0]!)).toBe(true);

    expect((await pgmam(['prune', app, '--older-than', '0s'])).code).toBe(2);
    expect(existsSync(preserved[0]!)).toBe(true);
    expect((await pgmam(['prune', app, '--older-than', 'soon'])).code).toBe(2);

    const r = await pgmam(['prune', app, '--older-than', '0s', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(preserved[0]!)).toBe(false);
    expect((await listEntry(app)).preserved).toEqual([]);
    expect(await sql(port, 'select count(*) from t')).toBe('0');
  });

  it('branch create --no-autostart leaves the branch out of boot', async () => {
    const app = uniqueName();
    made.push(app);
    await pgmamOk(['initcluster', app, '--yes', '-q']);
    made.unshift(`${app}_dev`);
    const b = await pgmam(['branch', 'create', app, '--name', 'dev', '--no-autostart', '--yes', '-q']);
    expect(b.code, b.stderr).toBe(0);
    expect(startConf(`${app}_dev`)).toBe('manual');
    expect(startConf(app)).toBe('auto');
    expect((await clusters()).find((c) => c.cluster === `${app}_dev`)?.running).toBe(1);
  });
});
