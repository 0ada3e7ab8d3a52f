// Parsers against recorded outputs in fixtures/.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseLsClusters } from '../../src/pg/clusters.js';
import { parseListeningPorts } from '../../src/pg/listening.js';
import { expandDataRoot, parseDataDirectory } from '../../src/pg/data-root.js';
import { archiveMax, firstBackup, lastBackup, parseInfo } from '../../src/pgbackrest/info.js';
import { newestSupportedPg, parseVersion } from '../../src/pgbackrest/commands.js';
import { parseMainConfig, parseStanzaFile, renderStanzaFile, localRepoLines, withArchiveLines } from '../../src/pgbackrest/config.js';
import { readClusters } from '../../src/host/facts.js';
import { RecordingRunner } from '../../src/runner/wrappers.js';

const fixture = (f: string) => readFileSync(new URL(`../../fixtures/${f}`, import.meta.url), 'utf8');

describe('pg_lsclusters --json', () => {
  it('parses a recorded host', () => {
    const all = parseLsClusters(fixture('pg_lsclusters.json'));
    expect(all.map((c) => c.name)).toEqual(['fxrec', 'main']);
    expect(all[1]).toMatchObject({ version: '15', name: 'main', port: 5432, running: false, dataDir: '/var/lib/postgresql/15/main', configDir: '/etc/postgresql/15/main' });
    expect(all[0]).toMatchObject({ name: 'fxrec', port: 5491, running: true, archiveCommand: 'pgbackrest --stanza=fxrec archive-push %p' });
  });
  it('empty host', () => expect(parseLsClusters('[]')).toEqual([]));
});

describe('pgbackrest info --output=json', () => {
  it('keeps every digit of the system identifier (it exceeds 2^53)', () => {
    const [s] = parseInfo(fixture('pgbackrest-info-one-full.json'));
    expect(s!.db[0]!['system-id']).toBe('7710859106177468397');
  });
  it('finds backups and the archive range', () => {
    const [s] = parseInfo(fixture('pgbackrest-info-one-full.json'));
    expect(lastBackup(s!)).toMatchObject({ type: 'full', label: '20261122-051133F' });
    expect(firstBackup(s!)?.timestamp.stop).toBe(1795324296);
    expect(archiveMax(s!)).toEqual({ id: '15-1', wal: '000000010000000000000003' });
  });
  it('a missing stanza has no backups', () => {
    const [s] = parseInfo('[{"archive":[],"backup":[],"cipher":"none","db":[],"name":"x","repo":[],"status":{"code":1,"message":"missing stanza path"}}]');
    expect(lastBackup(s!)).toBeUndefined();
    expect(archiveMax(s!)).toBeUndefined();
  });
});

describe('pgBackRest versions', () => {
  it('parses the version line', () => expect(parseVersion('pgBackRest 2.45\n')).toBe('2.45'));
  it('2.45 cannot back up PostgreSQL 16', () => {
    expect(newestSupportedPg('2.45')).toBe(15);
    expect(newestSupportedPg('2.54')).toBe(17);
  });
});

describe('pgBackRest configuration', () => {
  it('reads repo1-path from Debian\'s /etc/pgbackrest.conf when the newer path is absent', () => {
    const m = parseMainConfig([
      ['/etc/pgbackrest/pgbackrest.conf', undefined],
      ['/etc/pgbackrest.conf', '[global]\nrepo1-path=/var/lib/pgbackrest\n\n[main]\npg1-path=/x\n'],
    ]);
    expect(m).toEqual({ file: '/etc/pgbackrest.conf', globalRepoPath: '/var/lib/pgbackrest', sections: ['main'] });
  });
  const A = { host: 'hosta', app: 'app1', role: 'app' };
  it('a stanza file round-trips, with pg1-port and pg1-socket-path (#1390)', () => {
    const text = renderStanzaFile({ stanza: 'app1', dataDir: '/d', port: 5433, socketDir: '/var/run/postgresql', compressType: 'lz4', processMax: 2, archiveIoTimeout: 2, annotations: A }, localRepoLines('/r', { full: 2, fullType: 'count' }));
    expect(text).toContain('pg1-socket-path=/var/run/postgresql');
    expect(text).not.toContain('[global]');
    expect(parseStanzaFile(text)).toEqual({ stanza: 'app1', repoPath: '/r', port: 5433, dataDir: '/d' });
    expect(withArchiveLines(text, 'app1', 2, A)).toBe(text);
  });
  it('an older stanza file gets asynchronous archiving and archive-push\'s own io-timeout, once', () => {
    const old = '# x\n[app1]\npg1-path=/d\nrepo1-path=/r\nstart-fast=y\n';
    const want = '# x\n[app1]\npg1-path=/d\nrepo1-path=/r\nstart-fast=y\nannotation=pgmam-host=hosta\nannotation=pgmam-app=app1\nannotation=pgmam-role=app\narchive-async=y\nspool-path=/var/spool/pgbackrest\n\n[app1:archive-push]\nio-timeout=2\n';
    expect(withArchiveLines(old, 'app1', 2, A)).toBe(want);
    expect(withArchiveLines(want, 'app1', 2, A)).toBe(want);
    expect(withArchiveLines(want, 'app1', 7, A)).toBe(want.replace('io-timeout=2', 'io-timeout=7'));
  });
});

describe('/proc/net/tcp', () => {
  it('finds listening ports only', () => {
    const text = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   101        0 1 1 0 100 0 0 10 0',
      '   1: 0100007F:DAC0 0100007F:1538 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1',
    ].join('\n');
    expect([...parseListeningPorts(text)]).toEqual([5432]);
  });
});

describe('pg_controldata', () => {
  it('reads the system identifier, state, timeline, last checkpoint and replay minimums of a recorded cluster', async () => {
    const { parseControlData } = await import('../../src/pg/controldata.js');
    expect(parseControlData(fixture('pg_controldata.txt'))).toEqual({
      systemId: '7710859106177468397',
      state: 'in production',
      timeline: 1,
      checkpointLsn: '0/2000060',
      walSegmentBytes: 16777216,
      recoveryMinimums: { max_connections: 100, max_worker_processes: 8, max_wal_senders: 10, max_prepared_transactions: 0, max_locks_per_transaction: 64 },
    });
  });
});

describe('readClusters while another cluster is half made', () => {
  const ok = JSON.stringify([{ version: 15, cluster: 'app1', port: 5433, running: 1, pgdata: '/d', configdir: '/c' }]);
  const half = JSON.stringify([{ version: 15, cluster: 'app1', port: 5433, running: 1, pgdata: '/d', configdir: '/c' }, { version: 15, cluster: 'new1', running: 0, configdir: '/c2' }]);

  it('tries again after a failed or incomplete listing', async () => {
    const runner = new RecordingRunner().register('pg_lsclusters --json', { exitCode: 1, stderr: 'Error: Invalid data directory for cluster 15 new1' }, 1).register('pg_lsclusters --json', { stdout: half }, 1).register('pg_lsclusters --json', { stdout: ok });
    expect((await readClusters(runner)).map((c) => c.name)).toEqual(['app1']);
    runner.verify();
  });

  it('refuses with one clear line when it stays so', async () => {
    const runner = new RecordingRunner().register('pg_lsclusters --json', { stdout: half });
    await expect(readClusters(runner, 2)).rejects.toMatchObject({ exitCode: 4, failures: [{ id: 'clusters-are-readable' }] });
  });
});

describe("createcluster.conf's data_directory", () => {
  it.each([
    ["data_directory = '/srv/postgresql/%v/%c'\n", '/srv/postgresql/%v/%c'],
    ['#data_directory = \'/x/%v/%c\'\nssl = on\n', undefined],
    ['data_directory = "/a/%c"\ndata_directory=/b/%v/%c # later wins\n', '/b/%v/%c'],
    ['', undefined],
  ])('%j → %s', (text, want) => expect(parseDataDirectory(text)).toBe(want));
  it('expands %v, %c and %%', () => {
    expect(expandDataRoot('/srv/pg%%/%v/%c', { version: '15', name: 'app1' })).toBe('/srv/pg%/15/app1');
  });
});
