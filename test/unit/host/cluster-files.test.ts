// pgmam's own reading of the clusters' files (list, check, show): what pg_lsclusters would print, or
// undefined so that pg_lsclusters is asked. The integration test cluster-files.test.ts compares both on
// real clusters.
import { describe, expect, it } from 'vitest';
import { ConfLineError, includedConfFiles, parseConfLines, parsePidFile, parseStartConf } from '../../../src/pg/conf-file.js';
import { readClusterFiles } from '../../../src/host/cluster-files.js';
import { readClustersFast } from '../../../src/host/facts.js';
import { RecordingRunner } from '../../../src/runner/wrappers.js';
import { MemoryFs } from '../fakes.js';

describe('postgresql.conf lines, as PgCommon reads them', () => {
  it('reads quoted and simple values, skips comments, keeps includes in place', () => {
    const text = [
      '# a comment',
      '',
      "data_directory = '/var/lib/postgresql/15/app1'\t\t# use data in another directory",
      'Port = 5433 # (change requires restart)',
      "archive_command = 'pgbackrest --stanza=app1 archive-push %p'",
      "quoted = 'it''s \\'here\\''",
      "include_dir = 'conf.d'",
      "include_if_exists '/etc/extra.conf'",
      'max_wal_size 1GB',
      '   \t',
    ].join('\n');
    expect(parseConfLines(text, '/etc/postgresql/15/app1/postgresql.conf')).toEqual([
      { kind: 'set', key: 'data_directory', value: '/var/lib/postgresql/15/app1' },
      { kind: 'set', key: 'port', value: '5433' },
      { kind: 'set', key: 'archive_command', value: 'pgbackrest --stanza=app1 archive-push %p' },
      { kind: 'set', key: 'quoted', value: "it's 'here'" },
      { kind: 'include-dir', path: '/etc/postgresql/15/app1/conf.d' },
      { kind: 'include', path: '/etc/extra.conf' },
      { kind: 'set', key: 'max_wal_size', value: '1GB' },
    ]);
  });

  it('reads a file with CRLF line ends', () => {
    expect(parseConfLines('port = 5440\r\n# x\r\n\r\n', '/x/postgresql.conf')).toEqual([{ kind: 'set', key: 'port', value: '5440' }]);
  });

  it('keeps the case of keys in a file not named .conf', () => {
    expect(parseConfLines("PGDATA = '/x'\n", '/x/environment')).toEqual([{ kind: 'set', key: 'PGDATA', value: '/x' }]);
  });

  it.each(['port = ', 'shared_buffers = 128MB extra', "x = 'unterminated", 'ümlaut = 1'])('a line PgCommon refuses throws: %s', (line) => {
    expect(() => parseConfLines(`${line}\n`, '/x/postgresql.conf')).toThrow(ConfLineError);
  });

  it('include_dir reads .conf files that are not hidden, in byte order', () => {
    expect(includedConfFiles(['b.conf', '.hidden.conf', 'A.conf', 'a_1.conf', 'a1.conf', 'notes.txt'])).toEqual(['A.conf', 'a1.conf', 'a_1.conf', 'b.conf']);
  });

  it.each([
    [undefined, 'auto'],
    ['# comment\n\nmanual\n', 'manual'],
    ['  disabled  # off\n', 'disabled'],
    ['# only comments\n', 'auto'],
    ['sometimes\n', undefined],
  ])('start.conf %j is %s', (text, mode) => expect(parseStartConf(text)).toBe(mode));

  it.each([
    ['4242\n/var/lib/postgresql/15/app1\n', 4242],
    ['4242', 4242],
    ['', undefined],
    ['abc\n', undefined],
  ])('pid file %j names %s', (text, pid) => expect(parsePidFile(text)).toBe(pid));
});

/** A cluster's files as pg_createcluster writes them, with pgmam's conf.d file. */
function host(over: { pid?: string; cmdline?: string; extra?: Record<string, string> } = {}) {
  const fs = new MemoryFs();
  const conf = '/etc/postgresql/15/app1';
  fs.dirs.add('/etc/postgresql').add('/etc/postgresql/15').add(conf).add(`${conf}/conf.d`).add('/var/run/postgresql').add('/var/lib/postgresql/15/app1');
  fs.files.set(
    `${conf}/postgresql.conf`,
    [
      "data_directory = '/var/lib/postgresql/15/app1'",
      "external_pid_file = '/var/run/postgresql/15-app1.pid'",
      'port = 5433',
      "unix_socket_directories = '/var/run/postgresql'",
      "include_dir = 'conf.d'",
    ].join('\n'),
  );
  fs.files.set(`${conf}/conf.d/pgmam-archive.conf`, "archive_mode = on\narchive_command = 'pgbackrest --stanza=app1 archive-push %p'\n");
  fs.files.set(`${conf}/start.conf`, 'auto\n');
  if (over.pid !== undefined) fs.files.set('/var/run/postgresql/15-app1.pid', over.pid);
  if (over.cmdline !== undefined) fs.files.set('/proc/4242/cmdline', over.cmdline);
  for (const [f, t] of Object.entries(over.extra ?? {})) fs.files.set(f, t);
  return fs;
}

describe('readClusterFiles', () => {
  it('reads a running cluster as pg_lsclusters prints it', async () => {
    const fs = host({ pid: '4242\n', cmdline: '/usr/lib/postgresql/15/bin/postgres\0-D\0/var/lib/postgresql/15/app1\0' });
    expect(await readClusterFiles(fs)).toEqual([
      {
        version: '15', cluster: 'app1', port: 5433, running: true, pgdata: '/var/lib/postgresql/15/app1', configdir: '/etc/postgresql/15/app1',
        logfile: '/var/log/postgresql/postgresql-15-app1.log', socketdir: '/var/run/postgresql', start: 'auto', config: { archive_command: 'pgbackrest --stanza=app1 archive-push %p' },
      },
    ]);
  });

  it('takes the port ALTER SYSTEM set, start.conf, the log link and a standby signal', async () => {
    const fs = host({
      extra: {
        '/var/lib/postgresql/15/app1/postgresql.auto.conf': "port = '5499'\ndata_directory = '/elsewhere'\n",
        '/etc/postgresql/15/app1/start.conf': 'manual\n',
        '/etc/postgresql/15/app1/log': '-> /srv/logs/app1.log',
        '/var/lib/postgresql/15/app1/standby.signal': '',
      },
    });
    expect(await readClusterFiles(fs)).toMatchObject([{ port: 5499, pgdata: '/var/lib/postgresql/15/app1', start: 'manual', logfile: '/srv/logs/app1.log', recovery: true, running: false }]);
  });

  it('a later conf.d file wins, and a line after the include wins over it', async () => {
    const fs = host({ extra: { '/etc/postgresql/15/app1/conf.d/zz.conf': 'port = 5600\n', '/etc/postgresql/15/app1/conf.d/aa.conf': 'port = 5500\n' } });
    expect((await readClusterFiles(fs))?.[0]?.port).toBe(5600);
    fs.files.set('/etc/postgresql/15/app1/postgresql.conf', `${fs.files.get('/etc/postgresql/15/app1/postgresql.conf')}\nport = 5700\n`);
    expect((await readClusterFiles(fs))?.[0]?.port).toBe(5700);
  });

  it('a pid file whose process is gone: asks the socket, as PgCommon does', async () => {
    const fs = host({ pid: '4242\n' });
    expect((await readClusterFiles(fs))?.[0]?.running).toBe(false);
    fs.listening.add('/var/run/postgresql/.s.PGSQL.5433');
    expect((await readClusterFiles(fs))?.[0]?.running).toBe(true);
  });

  it('a pid file naming another program: down', async () => {
    const fs = host({ pid: '4242\n', cmdline: '/usr/bin/sleep\x00100\x00' });
    fs.listening.add('/var/run/postgresql/.s.PGSQL.5433');
    expect((await readClusterFiles(fs))?.[0]?.running).toBe(false);
  });

  it.each([
    ['a line PgCommon refuses', { '/etc/postgresql/15/app1/conf.d/bad.conf': 'port = = 1\n' }],
    ['a start.conf mode it refuses', { '/etc/postgresql/15/app1/start.conf': 'sometimes\n' }],
  ])('%s: undefined (pg_lsclusters decides)', async (_what, extra) => {
    expect(await readClusterFiles(host({ extra }))).toBeUndefined();
  });

  it('no data_directory (an older layout, or a cluster half made): undefined', async () => {
    const fs = host();
    fs.files.set('/etc/postgresql/15/app1/postgresql.conf', 'port = 5433\n');
    expect(await readClusterFiles(fs)).toBeUndefined();
  });

  it('no clusters: an empty list', async () => expect(await readClusterFiles(new MemoryFs())).toEqual([]));
});

describe('readClustersFast', () => {
  it('asks pg_lsclusters when the files are not read as PgCommon reads them', async () => {
    const fs = host({ extra: { '/etc/postgresql/15/app1/start.conf': 'sometimes\n' } });
    const runner = new RecordingRunner().register('pg_lsclusters --json', { stdout: JSON.stringify([{ version: 15, cluster: 'app1', port: 5433, running: 0, pgdata: '/d', configdir: '/c' }]) });
    expect((await readClustersFast(fs, runner)).map((c) => [c.name, c.dataDir])).toEqual([['app1', '/d']]);
    runner.verify();
  });

  it('runs nothing when it reads them itself', async () => {
    const runner = new RecordingRunner();
    expect((await readClustersFast(host(), runner)).map((c) => [c.name, c.port, c.archiveCommand])).toEqual([['app1', 5433, 'pgbackrest --stanza=app1 archive-push %p']]);
    expect(runner.calls).toEqual([]);
  });
});
