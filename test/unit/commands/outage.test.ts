// An attached repository that fails while WAL piles up for it: backup suspends it for the app, puts it
// back once it answers, and a full bridges the WAL it missed.
import { describe, expect, it } from 'vitest';
import { defaultConfig } from '../../../src/config/schema.js';
import { parseSpoolError } from '../../../src/pgbackrest/spool.js';
import { gatherOutage, outageSteps, type OutageFacts } from '../../../src/steps/repo-outage.js';
import { tiersOf } from '../../../src/commands/backup/backup.js';
import { readRecord, type Attachment } from '../../../src/state/store.js';
import type { RepoRecord } from '../../../src/state/repos.js';
import type { Context } from '../../../src/context.js';
import { fakeContext } from '../fakes.js';
import { aCluster, aRecord } from '../fixtures.js';

const SPOOL_ERROR = [
  '104',
  'raised from local-1 protocol: archive-push command encountered error(s):',
  "repo2: [HostConnectError] unable to load info file '/exp1/archive/app1/archive.info' or '/exp1/archive/app1/archive.info.copy':",
  "HostConnectError: unable to connect to 'localhost:27950': [111] Connection refused",
].join('\n');

const repo = (name: string): RepoRecord => ({
  format: 1, name, kind: 's3', s3: { host: 'localhost', port: 27950, bucket: 'pgbackrest', region: 'us-east-1', uriStyle: 'path' }, path: '/exp1',
  caFile: null, certFile: null, keyFile: null, encrypted: false, retention: { full: 2, fullType: 'count' }, attachNew: true, fullInterval: null, diffInterval: null, createdAt: 'x',
});
const att = (over: Partial<Attachment> = {}): Attachment => ({ name: 'offsite', index: 2, suspended: null, gaps: [], ...over });
const SEGMENT = 8 * 1024 * 1024;

function host(ready: number, over: { suspended?: Attachment['suspended'] } = {}) {
  const { ctx, fs, runner } = fakeContext();
  (ctx as { config: Context['config'] }).config = { ...defaultConfig, 'repo-suspend-mb': 32 };
  const record = aRecord('app1', { repos: [att({ suspended: over.suspended ?? null })], repoPath: '/r' });
  fs.files.set(`${ctx.paths.clustersDir}/app1.json`, JSON.stringify(record));
  fs.files.set(`${ctx.paths.stateDir}/repos/offsite.json`, JSON.stringify(repo('offsite')));
  fs.files.set(`${ctx.paths.stateDir}/repos/offsite.secrets`, JSON.stringify({ accessKey: 'AK', secretKey: 'SK', cipherPass: null }));
  fs.files.set(record.stanzaFile, '[app1]\npg1-path=/var/lib/postgresql/15/app1\nrepo1-path=/r\nrepo2-type=s3\nrepo2-s3-key=AK\nstart-fast=y\n');
  const dir = '/var/lib/postgresql/15/app1/pg_wal';
  for (let i = 1; i <= ready; i++) {
    const seg = `0000000100000000000000${String(i).padStart(2, '0')}`;
    fs.files.set(`${dir}/${seg}`, i === 1 ? 'x'.repeat(SEGMENT) : '');
    fs.files.set(`${dir}/archive_status/${seg}.ready`, '');
  }
  fs.files.set(`${dir}/archive_status/000000010000000000000000.done`, '');
  fs.files.set('/var/spool/pgbackrest/archive/app1/out/000000010000000000000001.error', SPOOL_ERROR);
  return { ctx, fs, runner, record };
}

describe('an S3 outage: suspend and re-attach', () => {
  it('reads which repository failed from the spool, in pgBackRest’s words', () => {
    expect([...parseSpoolError(SPOOL_ERROR)]).toEqual([[2, "[HostConnectError] unable to load info file '/exp1/archive/app1/archive.info' or '/exp1/archive/app1/archive.info.copy':"]]);
    expect(parseSpoolError('55\nsomething local broke').size).toBe(0);
  });

  it('past repo-suspend-mb of WAL waiting only for it, a repository that fails its probe is to be suspended from the oldest waiting segment', async () => {
    const { ctx, runner, record } = host(4);
    runner.register(/pg_stat_archiver/, { stdout: '2026-11-22T09:58:00.000000Z\n' }).register(/--config=\/dev\/null.*repo-ls/, { exitCode: 49, stderr: "ERROR: [049]: unable to connect to 'localhost:27950'" });
    const f = await gatherOutage(ctx, record, aCluster('app1', { running: true }));
    expect(f.backlog?.waitingMb).toBe(32);
    expect(f.suspend).toEqual([{ name: 'offsite', index: 2, reason: expect.stringContaining('[HostConnectError]'), waitingMb: 32, since: '2026-11-22T09:58:00.000Z', fromWal: '000000010000000000000001' }]);
    // The probe's environment carries the secrets, never its argv.
    expect(runner.calls.map((c) => c.argv.join(' ')).join('\n')).not.toMatch(/SK|AK/);
  });

  it('below repo-suspend-mb, or with a repository that answers, nothing is suspended', async () => {
    const below = host(3);
    below.runner.register(/--config=\/dev\/null.*repo-ls/, { exitCode: 49, stderr: 'ERROR: [049]: unable to connect' });
    const f = await gatherOutage(below.ctx, below.record, aCluster('app1', { running: true }));
    expect(f.suspend).toEqual([]);
    // Not suspended, but no backup tries it while it does not answer.
    expect(f.unreachable).toEqual([{ name: 'offsite', index: 2, reason: '[049]: unable to connect' }]);
    const answering = host(4);
    answering.runner.register(/pg_stat_archiver/, { stdout: '2026-11-22T09:58:00Z\n' }).register(/--config=\/dev\/null.*repo-ls/, { stdout: '{}' });
    expect((await gatherOutage(answering.ctx, answering.record, aCluster('app1', { running: true }))).suspend).toEqual([]);
  });

  it('the local repository is never suspended: WAL it lacks too waits for it, not for the other', async () => {
    const { ctx, fs, runner, record } = host(4);
    runner.register(/--config=\/dev\/null.*repo-ls/, { exitCode: 49, stderr: 'ERROR: [049]: unable to connect' });
    fs.files.set('/var/spool/pgbackrest/archive/app1/out/000000010000000000000001.error', '55\nrepo1: [FileOpenError] unable to open\n');
    expect((await gatherOutage(ctx, record, aCluster('app1', { running: true }))).suspend).toEqual([]);
  });

  it('suspending takes it out of the record and the stanza file; putting it back records the gap; backup then owes it a full', async () => {
    const { ctx, fs, record } = host(4);
    const f: OutageFacts = { backlog: undefined, suspend: [{ name: 'offsite', index: 2, reason: 'down', waitingMb: 32, since: '2026-11-22T09:58:00Z', fromWal: '000000010000000000000001' }], reattach: [], stillDown: [], unreachable: [] };
    const [suspend] = outageSteps(record, f, ctx);
    expect(suspend!.id).toBe('suspend-repo2');
    await (suspend!.run as (c: Context) => Promise<void>)(ctx);
    const after = (await readRecord(fs, ctx.paths.clustersDir, 'app1'))!;
    expect(after.repos[0]!.suspended).toMatchObject({ since: '2026-11-22T09:58:00Z', fromWal: '000000010000000000000001', reason: 'down' });
    expect(fs.files.get(record.stanzaFile)).not.toMatch(/repo2-/);
    expect(fs.files.get(record.stanzaFile)).toMatch(/repo1-path=\/r/);
    expect(tiersOf(after, [repo('offsite')], defaultConfig).map((t) => t.name)).toEqual(['local']);

    const [reattach] = outageSteps(after, { backlog: undefined, suspend: [], reattach: [after.repos[0]!], stillDown: [], unreachable: [] }, ctx);
    expect(tiersOf(after, [repo('offsite')], defaultConfig, ['offsite'])[1]).toMatchObject({ name: 'offsite', forceFull: expect.stringContaining('a full bridges') });
    await (reattach!.run as (c: Context) => Promise<void>)(ctx);
    const back = (await readRecord(fs, ctx.paths.clustersDir, 'app1'))!;
    expect(back.repos[0]).toMatchObject({ suspended: null, gaps: [{ from: '2026-11-22T09:58:00Z', to: null, fromWal: '000000010000000000000001' }] });
    expect(fs.files.get(record.stanzaFile)).toMatch(/repo2-s3-key=AK/);
    // Killed before that full: the next backup still owes it one.
    expect(tiersOf(back, [repo('offsite')], defaultConfig)[1]?.forceFull).toBeDefined();
  });
});
