// initcluster → list → pgbackrest info/check, through the built bin/pgmam on real clusters.
import { afterAll, describe, expect, it } from 'vitest';
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync, rmSync } from 'node:fs';
import { execa } from 'execa';
import { PGMAM, STATE, TEST_ROOT, freePort, pgbackrestInfo, pgmam, removeTestCluster, sh, sql, traces, uniqueName } from './helpers.js';

const made: string[] = [];
afterAll(async () => {
  for (const n of made) await removeTestCluster(n);
});

describe('pgmam initcluster', () => {
  it('creates a PITR-ready cluster with its own stanza, database and owner; list shows it', async () => {
    const name = uniqueName();
    made.push(name);
    const pwFile = `${TEST_ROOT}/${name}.pw`;
    const password = `s3cret-${name}-pw`;
    writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });

    const r = await pgmam(['initcluster', name, '--db', 'appdb', '--owner', 'appowner', '--password-file', pwFile]);
    expect(r.code, r.stderr).toBe(0);

    const list = await pgmam(['list', '--json']);
    expect(list.code, list.stderr).toBe(0);
    const entry = (JSON.parse(list.stdout) as Array<Record<string, any>>).find((e) => e.name === name)!;
    expect(entry).toMatchObject({ cluster: `15/${name}`, managed: true, role: 'app', status: 'online', stanza: name, parent: null, preserved: [] });
    expect(entry.port).toBeGreaterThanOrEqual(26000);
    expect(entry.lastBackup.type).toBe('full');
    expect(new Date(entry.recoveryWindow.from).getTime()).toBeLessThanOrEqual(new Date(entry.recoveryWindow.to).getTime());

    const info = await pgbackrestInfo(name);
    expect(info[0]!.status.code).toBe(0);
    expect(info[0]!.backup.map((b) => b.type)).toEqual(['full']);
    expect(info[0]!.backup[0]!.label).toBe(entry.lastBackup.label);
    expect((await sh('pgbackrest', [`--stanza=${name}`, 'check'], { user: 'postgres' })).code).toBe(0);

    // Archiving goes to its own stanza, configured outside the data directory.
    expect(await sql(entry.port, 'show archive_command')).toBe(`pgbackrest --stanza=${name} archive-push %p`);
    expect(readFileSync(`/var/lib/postgresql/15/${name}/postgresql.auto.conf`, 'utf8')).not.toMatch(/archive/);
    const stanzaFile = readFileSync(`/etc/pgbackrest/conf.d/${name}.conf`, 'utf8');
    expect(stanzaFile).toContain(`pg1-port=${entry.port}`);
    expect(stanzaFile).toContain('pg1-socket-path=/var/run/postgresql');

    // The database belongs to the owner, who can log in over TCP with the password.
    expect(await sql(entry.port, "select pg_get_userbyid(datdba) from pg_database where datname = 'appdb'")).toBe('appowner');
    const login = await execa('psql', ['-X', '-At', '-h', '127.0.0.1', '-p', String(entry.port), '-U', 'appowner', '-d', 'appdb', '-c', 'select current_user'], {
      reject: false,
      env: { PGPASSWORD: password },
    });
    expect(login.stdout.trim()).toBe('appowner');
    // The password is in no log.
    expect(readFileSync(`${TEST_ROOT}/pgmam.log`, 'utf8')).not.toContain(password);
    expect(readFileSync(`/var/log/postgresql/postgresql-15-${name}.log`, 'utf8')).not.toContain(password);
    rmSync(pwFile);
  });

  it('as a symlink named initcluster, takes the legacy flags -a and -p', async () => {
    const name = uniqueName();
    made.push(name);
    const port = await freePort();
    const dir = mkdtempSync('/tmp/pgmam-legacy-');
    symlinkSync(PGMAM, `${dir}/initcluster`);
    const r = await pgmam(['-a', name, '-p', String(port)], { bin: `${dir}/initcluster` });
    rmSync(dir, { recursive: true });
    expect(r.code, r.stderr).toBe(0);
    const entry = (JSON.parse((await pgmam(['list', '--json'])).stdout) as Array<Record<string, any>>).find((e) => e.name === name)!;
    expect(entry).toMatchObject({ port, managed: true, status: 'online', stanza: name });
    expect(entry.lastBackup.type).toBe('full');
    expect((await sh('pgbackrest', [`--stanza=${name}`, 'check'], { user: 'postgres' })).code).toBe(0);
    expect(await sql(port, 'select 1')).toBe('1');
  });

  it('--dry-run prints every step with its command line and changes nothing', async () => {
    const name = uniqueName();
    const port = await freePort();
    const r = await pgmam(['initcluster', name, '--port', String(port), '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`$ pg_createcluster 15 ${name} --port ${port} -d /var/lib/postgresql/15/${name} -- --data-checksums`);
    // The host's facts choose: systemctl where systemd runs, pg_ctlcluster otherwise.
    expect(r.stdout).toContain(existsSync('/run/systemd/system') ? `$ systemctl start postgresql@15-${name}` : `$ pg_ctlcluster 15 ${name} start`);
    expect(r.stdout).toContain(`$ runuser -u postgres -- pgbackrest --stanza=${name} stanza-create`);
    expect(r.stdout).toContain(`$ runuser -u postgres -- pgbackrest --stanza=${name} --repo=1 --repo1-retention-full=2 --repo1-retention-full-type=count --type=full backup`);
    expect(r.stdout).toContain(`archive_command = 'pgbackrest --stanza=${name} archive-push %p'`);
    expect(await traces(name)).toEqual([]);
  });

  it('undoes everything it made when a step fails, and names the step (exit 6)', async () => {
    const name = uniqueName();
    const port = await freePort();
    // A pgbackrest on PATH that fails only the backup: everything before it really happens.
    const dir = mkdtempSync('/tmp/pgmam-failbackup-');
    chmodSync(dir, 0o755); // pgbackrest runs as postgres, which must be able to find the wrapper
    writeFileSync(`${dir}/pgbackrest`, '#!/bin/sh\nfor a in "$@"; do [ "$a" = backup ] && { echo "ERROR: [099]: injected failure" >&2; exit 99; }; done\nexec /usr/bin/pgbackrest "$@"\n', { mode: 0o755 });
    const r = await pgmam(['initcluster', name, '--port', String(port)], { env: { PATH: `${dir}:${process.env['PATH']}` } });
    rmSync(dir, { recursive: true });
    expect(r.code, r.stderr).toBe(6);
    expect(r.stderr).toContain('backup-full');
    expect(await traces(name)).toEqual([]);
    expect(existsSync(`${STATE}/clusters/${name}.json`)).toBe(false);
  });
  it('takes a port whose socket a killed postmaster left behind; refuses one whose socket lock file names a running process (4)', async () => {
    const uid = Number((await sh('id', ['-u', 'postgres'])).stdout);
    const gid = Number((await sh('id', ['-g', 'postgres'])).stdout);
    // What a SIGKILLed postmaster leaves in the socket directory: its socket, nothing listening on it, and a lock file naming its PID.
    const leave = async (port: number, pid: number) => {
      const sock = `/var/run/postgresql/.s.PGSQL.${port}`;
      expect((await sh('python3', ['-c', `import socket; socket.socket(socket.AF_UNIX).bind('${sock}')`], { user: 'postgres' })).code).toBe(0);
      // A t_ data directory: should this test fail before a postmaster replaces them, the suite's teardown removes both.
      writeFileSync(`${sock}.lock`, `${pid}\n/var/lib/postgresql/15/${uniqueName()}\n1796243399\n${port}\n/var/run/postgresql\n`, { mode: 0o600 });
      chownSync(`${sock}.lock`, uid, gid);
      return sock;
    };
    const exited = Number((await execa('sh', ['-c', 'echo $$'])).stdout);

    const held = await freePort();
    const heldSock = await leave(held, process.pid); // this test's own process: running
    try {
      const refused = uniqueName();
      const r = await pgmam(['initcluster', refused, '--port', String(held)]);
      expect(r.code, r.stderr).toBe(4);
      expect(await traces(refused)).toEqual([]);
      expect(readFileSync(`${heldSock}.lock`, 'utf8').split('\n')[0]).toBe(String(process.pid));
    } finally {
      rmSync(heldSock, { force: true });
      rmSync(`${heldSock}.lock`, { force: true });
    }

    const stale = await freePort();
    const staleSock = await leave(stale, exited);
    const name = uniqueName();
    made.push(name);
    const r = await pgmam(['initcluster', name, '--port', String(stale)]);
    expect(r.code, r.stderr).toBe(0);
    expect(await sql(stale, 'select 1')).toBe('1');
    // The new postmaster replaced both: the lock names it.
    const postmaster = readFileSync(`/var/lib/postgresql/15/${name}/postmaster.pid`, 'utf8').split('\n')[0];
    expect(readFileSync(`${staleSock}.lock`, 'utf8').split('\n')[0]).toBe(postmaster);
  });
});
