// The Debian package, built by npm run deb and installed with apt on this host: lintian finds no error,
// /usr/sbin/pgmam and the legacy links run, man renders the pages, bash completes commands from the
// installed file; apt remove leaves clusters, backups and state alone; purge removes the configuration
// and pgmam's schedule only. Whatever /etc/pgmam/pgmam.conf the host had is put back at the end.
import { execa } from 'execa';
import { chmodSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFIG, ROOT, STATE, clusters, listEntry, pgbackrestInfo, removeTestCluster, sql, uniqueName, type Run } from './helpers.js';

const { version } = JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8')) as { version: string };
const DEB = `${ROOT}/pgmam_${version}_amd64.deb`;
const CONF = '/etc/pgmam/pgmam.conf';
const app = uniqueName();
let hostConf: { text: string; mode: number } | undefined;

async function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  const r = await execa(cmd, args, { reject: false, cwd: ROOT, stdin: 'ignore', env: { DEBIAN_FRONTEND: 'noninteractive', PGMAM_CONFIG: CONFIG, ...env } });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}
const installed = async () => (await run('dpkg-query', ['-W', '-f=${db:Status-Status}', 'pgmam'])).stdout === 'installed';
const configFiles = async () => (await run('dpkg-query', ['-W', '-f=${db:Status-Abbrev}', 'pgmam'])).stdout.trim();

/**
 * dpkg --purge where /etc/cron.d (and /etc/systemd/system) are empty tmpfs of this namespace, with a
 * planted schedule of pgmam's beside another file: other test files install schedules of their own.
 */
async function purgeInNamespace(): Promise<Run> {
  const units = existsSync('/etc/systemd/system') ? 'mount -t tmpfs tmpfs /etc/systemd/system; ' : '';
  const script = `set -e; mount -t tmpfs tmpfs /etc/cron.d; ${units}echo '0 * * * * root /usr/sbin/pgmam backup --all' > /etc/cron.d/pgmam; echo '# not pgmam' > /etc/cron.d/other; dpkg --purge pgmam >/dev/null; ls -A /etc/cron.d`;
  return run('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script]);
}

beforeAll(async () => {
  if (await installed()) throw new Error('the pgmam package is installed on this host: the test installs and purges its own (remove it first)');
  if (existsSync(CONF)) hostConf = { text: readFileSync(CONF, 'utf8'), mode: statSync(CONF).mode & 0o777 };
});

afterAll(async () => {
  if ((await configFiles()) !== '') await purgeInNamespace();
  if (hostConf) {
    writeFileSync(CONF, hostConf.text);
    chmodSync(CONF, hostConf.mode);
  }
  await removeTestCluster(app);
  rmSync(DEB, { force: true });
});

describe('the Debian package', () => {
  it('npm run deb builds it; lintian reports no error', { timeout: 600_000 }, async () => {
    const build = await run('npm', ['run', '-s', 'deb']);
    expect(build.code, build.stderr).toBe(0);
    expect(existsSync(DEB)).toBe(true);
    const contents = (await run('dpkg-deb', ['-c', DEB])).stdout;
    for (const f of ['./usr/sbin/pgmam', './usr/sbin/initcluster -> pgmam', './usr/share/man/man8/pgmam.8.gz', './usr/share/man/man8/pgmam-branch-create.8.gz', './usr/share/bash-completion/completions/pgmam', './etc/pgmam/pgmam.conf', './etc/logrotate.d/pgmam', './usr/share/doc/pgmam/copyright', './usr/share/doc/pgmam/changelog.gz'])
      expect(contents).toContain(f);
    const depends = (await run('dpkg-deb', ['-f', DEB, 'Depends'])).stdout;
    expect(depends).toMatch(/^postgresql-common, pgbackrest, .*libc6 \(>= /);
    const lint = await run('lintian', [DEB]);
    expect(lint.stdout.split('\n').filter((l) => l.startsWith('E:')), lint.stdout).toEqual([]);
    expect(lint.code, lint.stdout + lint.stderr).toBe(0);
  });

  it('apt installs it: pgmam from /usr/sbin, man 8 pgmam, initcluster -a through the installed link, completion', { timeout: 600_000 }, async () => {
    const inst = await run('apt', ['install', '-y', '-o', 'Dpkg::Options::=--force-confdef', '-o', 'Dpkg::Options::=--force-confold', DEB]);
    expect(inst.code, inst.stderr).toBe(0);
    expect(await installed()).toBe(true);
    expect((await run('/usr/sbin/pgmam', ['--version'])).stdout.trim()).toBe(version);
    expect((await run('/usr/sbin/pgmam', ['list'])).code).toBe(0);

    const man = await run('man', ['-P', 'cat', '8', 'pgmam'], { MANWIDTH: '100' });
    expect(man.code, man.stderr).toBe(0);
    expect(man.stdout).toMatch(/pgmam-branch-create\(8\)/);
    const page = await run('man', ['-P', 'cat', '8', 'initcluster'], { MANWIDTH: '100' });
    expect(page.stdout).toMatch(/initcluster -a APP/);

    const init = await run('/usr/sbin/initcluster', ['-a', app, '-q']);
    expect(init.code, init.stderr).toBe(0);
    const e = await listEntry(app);
    expect(e).toMatchObject({ role: 'app', status: 'online' });
    await sql(e.port, "create table t (v text); insert into t values ('kept')");

    // The schedule runs the installed executable (the plan of schedule install names it).
    const plan = await run('/usr/sbin/pgmam', ['schedule', 'install', '--dry-run']);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toMatch(/\/usr\/sbin\/pgmam backup --all/);

    // bash-completion's own loader finds the installed file; `pgmam br<TAB>` completes to branch.
    const comp = await run('bash', ['-c', 'source /usr/share/bash-completion/bash_completion; _completion_loader pgmam; COMP_WORDS=(pgmam br); COMP_CWORD=1; COMP_LINE="pgmam br"; COMP_POINT=8; _pgmam; echo "${COMPREPLY[*]}"']);
    expect(comp.stdout.trim(), comp.stderr).toBe('branch');
  });

  it('apt remove leaves the cluster running, its backups and pgmam state; purge removes only the configuration and the schedule', { timeout: 300_000 }, async () => {
    const e = await listEntry(app);
    const backups = (await pgbackrestInfo(app))[0]!.backup.length;
    const rm = await run('apt', ['remove', '-y', 'pgmam']);
    expect(rm.code, rm.stderr).toBe(0);
    expect(existsSync('/usr/sbin/pgmam')).toBe(false);
    expect(existsSync('/usr/sbin/initcluster')).toBe(false);
    expect((await clusters()).find((c) => c.cluster === app)?.running).toBe(1);
    expect(await sql(e.port, 'select v from t')).toBe('kept');
    expect((await pgbackrestInfo(app))[0]!.backup.length).toBe(backups);
    expect(existsSync(`${STATE}/clusters/${app}.json`)).toBe(true);
    expect(existsSync(CONF)).toBe(true); // a conffile stays until purge

    const purge = await purgeInNamespace();
    expect(purge.code, purge.stderr).toBe(0);
    expect(purge.stdout.trim().split('\n')).toEqual(['other']);
    expect(existsSync(CONF)).toBe(false);
    expect(await configFiles()).toBe('');
    expect((await clusters()).find((c) => c.cluster === app)?.running).toBe(1);
    expect(existsSync(`${STATE}/clusters/${app}.json`)).toBe(true);
    expect(readdirSync('/etc/postgresql/15')).toContain(app);
  });
});
