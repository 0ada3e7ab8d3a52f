// Off-host backups on a real S3 server (Ceph's RADOS Gateway, started for this file): repo add checks
// everything before it writes, a new cluster gets a full backup and its WAL in both repositories,
// attach and detach, and no secret in any output, log or listing.
import { execa } from 'execa';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, STATE, TEST_ROOT, freePort, pgmam, removeTestCluster, sh, sql, targetBetween, testConfigLines, uniqueName, type Run } from './helpers.js';
import { startRgw, stopRgw, type Rgw } from './rgw.js';

const CONFIG = `${TEST_ROOT}/s3.conf`;
const LOG = `${TEST_ROOT}/s3.log`;
const REPOS = `${STATE}/repos`;
let rgw: Rgw;
/** Every output of pgmam in this file, searched for secrets at the end. */
const outputs: string[] = [];
const run = async (args: string[]): Promise<Run> => {
  const r = await pgmam(args, { env: { PGMAM_CONFIG: CONFIG } });
  outputs.push(r.stdout, r.stderr);
  return r;
};
const mine: string[] = [];
const app = () => {
  const n = uniqueName();
  mine.push(n);
  return n;
};
/** Each test its own path in the bucket. */
let paths = 0;
const bucketPath = () => `/${TEST_ROOT.split('/').at(-1)}/p${++paths}`;
const repoFiles = () => (existsSync(REPOS) ? readdirSync(REPOS).sort() : []);
const addArgs = (name: string, over: Record<string, string> = {}) => {
  const o: Record<string, string> = { '--s3-endpoint': rgw.endpoint, '--s3-bucket': rgw.bucket, '--s3-key-file': rgw.keyFile, '--ca-file': rgw.ca, '--path': bucketPath(), ...over };
  return ['repo', 'add', name, ...Object.entries(o).flatMap(([k, v]) => [k, v])];
};
/** The objects under a path of the bucket, as pgBackRest lists them with the repository's own settings. */
const stanzaInfo = async (stanza: string) => JSON.parse((await sh('pgbackrest', [`--stanza=${stanza}`, '--output=json', 'info'], { user: 'postgres' })).stdout.replace(/"system-id":(\d+)/g, '"system-id":"$1"'))[0] as { backup: Array<{ type: string; database: { 'repo-key': number } }> };
const repoLs = async (stanza: string, repo: number, path: string) => (await sh('pgbackrest', [`--stanza=${stanza}`, `--repo=${repo}`, 'repo-ls', path], { user: 'postgres' })).stdout.split('\n');

beforeAll(async () => {
  mkdirSync(TEST_ROOT, { recursive: true, mode: 0o755 });
  writeFileSync(CONFIG, [...testConfigLines(), `log-file = ${LOG}`].join('\n') + '\n');
  rgw = await startRgw();
}, 120_000);

afterAll(async () => {
  for (const n of mine) {
    await run(['drop', n, '--purge-backups', '--yes', '-q']);
    await removeTestCluster(n);
  }
  const stopMs = await stopRgw(rgw);
  console.log(`Ceph RGW for s3.test.ts: started in ${rgw?.startMs} ms, stopped in ${stopMs} ms`);
}, 120_000);

describe('an S3 repository beside the local one', () => {
  it('repo add refuses bad input before writing anything', async () => {
    const badKey = `${TEST_ROOT}/bad.key`;
    writeFileSync(badKey, `access-key = ${rgw.access}\nsecret-key = wrong${rgw.secret.slice(5)}\n`, { mode: 0o600 });
    const openKey = `${TEST_ROOT}/open.key`;
    copyFileSync(rgw.keyFile, openKey);
    chmodSync(openKey, 0o644);
    const otherCa = `${TEST_ROOT}/other-ca`;
    mkdirSync(otherCa, { recursive: true });
    await execa('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${otherCa}/ca.key`, '-out', `${otherCa}/ca.crt`, '-days', '2', '-subj', '/CN=another-ca'], { stdin: 'ignore' });
    const deadPort = await freePort();
    const cases: Array<[string, Record<string, string>, number, RegExp]> = [
      ['wrong secret (403)', { '--s3-key-file': badKey }, 4, /refused the key/],
      ['unknown bucket', { '--s3-bucket': 'nosuchbucket' }, 4, /bucket nosuchbucket does not exist/],
      ['endpoint not answering', { '--s3-endpoint': `localhost:${deadPort}` }, 4, /does not answer/],
      ['a CA that does not match', { '--ca-file': `${otherCa}/ca.crt` }, 4, /is not verified by/],
      ['http://', { '--s3-endpoint': `http://${rgw.endpoint}` }, 2, /plain http is refused/],
      ['a key file readable by others', { '--s3-key-file': openKey }, 4, /can be read by users other than root/],
    ];
    for (const [what, over, code, why] of cases) {
      const before = repoFiles();
      const r = await run(addArgs('bad', over));
      expect(r.code, `${what}: ${r.stderr}`).toBe(code);
      expect(r.stderr, what).toMatch(why);
      expect(repoFiles(), what).toEqual(before);
    }
  });

  it('a new cluster gets a full backup in both repositories, and its WAL reaches both', async () => {
    const r = await run(addArgs('offsite'));
    expect(r.code, r.stderr).toBe(0);
    expect(repoFiles()).toEqual(['offsite.ca.crt', 'offsite.json', 'offsite.secrets']);
    const n = app();
    const port = await freePort();
    const init = await run(['initcluster', n, '--port', String(port), '--yes']);
    expect(init.code, init.stderr).toBe(0);
    const fulls = (await stanzaInfo(n)).backup.filter((b) => b.type === 'full').map((b) => b.database['repo-key']);
    expect(fulls.sort()).toEqual([1, 2]);
    await sql(port, "create table t(k text); insert into t values ('in-both')");
    const seg = await sql(port, 'select pg_walfile_name(pg_current_wal_lsn())');
    await sql(port, 'select pg_switch_wal()');
    for (let i = 0; i < 100 && !(await repoLs(n, 2, `archive/${n}/15-1/${seg.slice(0, 16)}`)).some((l) => l.startsWith(seg)); i++) await new Promise((ok) => setTimeout(ok, 100));
    expect((await repoLs(n, 1, `archive/${n}/15-1/${seg.slice(0, 16)}`)).some((l) => l.startsWith(seg))).toBe(true);
    expect((await repoLs(n, 2, `archive/${n}/15-1/${seg.slice(0, 16)}`)).some((l) => l.startsWith(seg))).toBe(true);
    // Removing it while an app is attached is refused, and changes nothing.
    const remove = await run(['repo', 'remove', 'offsite', '--yes']);
    expect(remove.code, remove.stderr).toBe(4);
    expect(repoFiles()).toEqual(['offsite.ca.crt', 'offsite.json', 'offsite.secrets']);
  });

  it('backup goes into each repository on its own: --repo for one; list and check report each', async () => {
    const n = app();
    const port = await freePort();
    expect((await run(['initcluster', n, '--port', String(port), '--yes', '-q'])).code).toBe(0);
    // Nothing written since the first backups: every repository skips.
    const idle = JSON.parse((await run(['backup', n, '--json'])).stdout) as { outcomes: Array<{ repo: string; result: string }> };
    expect(idle.outcomes.map((x) => [x.repo, x.result])).toEqual([['local', 'skipped'], ['offsite', 'skipped']]);
    await sql(port, "create table t(k text); insert into t values ('x')");
    const only = await run(['backup', n, '--repo', 'offsite', '--type', 'full', '--json']);
    expect(only.code, only.stderr).toBe(0);
    expect((JSON.parse(only.stdout) as { outcomes: Array<{ repo: string; result: string; type: string }> }).outcomes).toEqual([expect.objectContaining({ repo: 'offsite', result: 'backed-up', type: 'full' })]);
    const fulls = (await stanzaInfo(n)).backup.filter((b) => b.type === 'full').map((b) => b.database['repo-key']);
    expect(fulls.sort()).toEqual([1, 2, 2]);
    const list = (JSON.parse((await run(['list', '--json'])).stdout) as Array<{ name: string; repos: Array<{ name: string; lastBackup: { type: string } | null; recoveryWindow: object | null }> }>).find((e) => e.name === n)!;
    expect(list.repos.map((r) => [r.name, r.lastBackup?.type, r.recoveryWindow !== null])).toEqual([['local', 'full', true], ['offsite', 'full', true]]);
    const check = await run(['check', n, '--json']);
    expect(check.code, check.stdout).toBe(0);
    expect((JSON.parse(check.stdout) as Array<{ repos: Array<{ name: string; reachable: boolean }> }>)[0]!.repos).toEqual([expect.objectContaining({ name: 'offsite', reachable: true })]);
    const unknown = await run(['backup', n, '--repo', 'nosuch']);
    expect(unknown.code, unknown.stderr).toBe(4);
  });

  it('attach to an app made before the repository, then detach: the stanza file follows, the backups stay', async () => {
    const n = app();
    const port = await freePort();
    expect((await run(['repo', 'add', 'later', '--attach-new', 'no', ...addArgs('x').slice(3)])).code).toBe(0);
    const init = await run(['initcluster', n, '--port', String(port), '--yes', '-q']);
    expect(init.code, init.stderr).toBe(0);
    // attach-new: offsite (added with the default yes) is repo2, later is not attached.
    expect(readFileSync(`/etc/pgbackrest/conf.d/${n}.conf`, 'utf8')).not.toMatch(/^repo3-/m);
    const unknown = await run(['repo', 'attach', 'later', 't_nosuch0']);
    expect(unknown.code, unknown.stderr).toBe(4);
    const attach = await run(['repo', 'attach', 'later', n, '--json']);
    expect(attach.code, attach.stderr).toBe(0);
    expect(readFileSync(`/etc/pgbackrest/conf.d/${n}.conf`, 'utf8')).toMatch(/^repo3-type=s3$/m);
    expect((await stanzaInfo(n)).backup.filter((b) => b.type === 'full').map((b) => b.database['repo-key']).sort()).toEqual([1, 2, 3]);
    const detach = await run(['repo', 'detach', 'later', n]);
    expect(detach.code, detach.stderr).toBe(0);
    expect(readFileSync(`/etc/pgbackrest/conf.d/${n}.conf`, 'utf8')).not.toMatch(/^repo3-/m);
    expect((await run(['repo', 'remove', 'later', '--yes'])).code).toBe(0);
    expect(repoFiles()).not.toContain('later.json');
  });

  it('an encrypted repository; a branch is attached too; drop --purge-backups deletes the stanza in every repository', async () => {
    const pass = `${TEST_ROOT}/cipher.pass`;
    writeFileSync(pass, 'a long cipher pass for the test\n', { mode: 0o600 });
    const add = await run(['repo', 'add', 'sealed', '--cipher-pass-file', pass, ...addArgs('x').slice(3)]);
    expect(add.code, add.stderr).toBe(0);
    const parent = app();
    const port = await freePort();
    const init = await run(['initcluster', parent, '--port', String(port), '--yes', '-q']);
    expect(init.code, init.stderr).toBe(0);
    await sql(port, "create table t(k text); insert into t values ('p')");
    // Attached to both S3 repositories (attach-new), the sealed one encrypted.
    const stanza = JSON.parse((await sh('pgbackrest', [`--stanza=${parent}`, '--output=json', 'info'], { user: 'postgres' })).stdout)[0] as { cipher: string; repo: Array<{ key: number; cipher: string }> };
    expect(stanza.repo.map((r) => [r.key, r.cipher])).toEqual([[1, 'none'], [2, 'none'], [3, 'aes-256-cbc']]);
    const branch = await run(['branch', 'create', parent, '--name', 'dev', '--yes', '-q']);
    expect(branch.code, branch.stderr).toBe(0);
    mine.push(`${parent}_dev`);
    const fulls = (await stanzaInfo(`${parent}_dev`)).backup.filter((b) => b.type === 'full').map((b) => b.database['repo-key']);
    expect(fulls.sort()).toEqual([1, 2, 3]);
    const drop = await run(['drop', `${parent}_dev`, '--purge-backups', '--yes']);
    expect(drop.code, drop.stderr).toBe(0);
    // Gone from the bucket too (as pgBackRest lists it with the parent's settings for that repository).
    for (const repo of [2, 3]) expect((await repoLs(parent, repo, `backup/${parent}_dev`)).filter(Boolean)).toEqual([]);
    expect((await run(['drop', parent, '--purge-backups', '--yes'])).code).toBe(0);
    // No app is attached to it any more.
    expect((await run(['repo', 'remove', 'sealed', '--yes'])).code).toBe(0);
    expect(repoFiles().filter((f) => f.startsWith('sealed'))).toEqual([]);
  });

  it('a branch and a pitr from the S3 repository when only it covers the target (the local stanza of the app lost)', async () => {
    const n = app();
    const port = await freePort();
    const init = await run(['initcluster', n, '--port', String(port), '--yes', '-q']);
    expect(init.code, init.stderr).toBe(0);
    const target = await targetBetween(port, "create table t as select 'before' k", "insert into t values ('after')");
    // --repo chooses explicitly, even while the local repository covers the target.
    const branch = await run(['branch', 'create', n, '--name', 's3', '--at', target, '--repo', 'offsite', '--yes']);
    expect(branch.code, branch.stderr).toBe(0);
    mine.push(`${n}_s3`);
    const branchPort = (JSON.parse((await run(['list', '--json'])).stdout) as Array<{ name: string; port: number }>).find((e) => e.name === `${n}_s3`)!.port;
    expect(await sql(branchPort, 'select string_agg(k, \',\') from t')).toBe('before');
    // The local repository loses the app's stanza (a lost disk) while the app is stopped: pitr finds
    // the target only in S3, says so, restores from it and makes the local stanza again.
    expect((await sh('pg_ctlcluster', ['15', n, 'stop'])).code).toBe(0);
    for (const sub of ['backup', 'archive']) rmSync(`${REPO}/${sub}/${n}`, { recursive: true, force: true });
    const dry = await run(['pitr', n, '--to', target, '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/from repository offsite \(repo2\): only repository offsite covers/);
    expect(dry.stdout).toContain('--repo=2 restore');
    const pitr = await run(['pitr', n, '--to', target, '--yes']);
    expect(pitr.code, pitr.stderr).toBe(0);
    expect(await sql(port, 'select string_agg(k, \',\') from t')).toBe('before');
    // The local stanza was made again, and holds the full backup pitr takes afterwards.
    expect((await stanzaInfo(n)).backup.some((b) => b.type === 'full' && b.database['repo-key'] === 1)).toBe(true);
  });

  it('adopt and initcluster --from-export attach the new cluster too: a full in each repository', async () => {
    const adopted = app();
    const port = await freePort();
    expect((await sh('pg_createcluster', ['15', adopted, '--port', String(port), '--start'])).code).toBe(0);
    await sql(port, 'create table t as select g from generate_series(1, 20) g');
    const adopt = await run(['adopt', `15/${adopted}`, '--yes']);
    expect(adopt.code, adopt.stderr).toBe(0);
    expect((await stanzaInfo(adopted)).backup.filter((b) => b.type === 'full').map((b) => b.database['repo-key']).sort()).toEqual([1, 2]);
    const to = `${TEST_ROOT}/exports`;
    mkdirSync(to, { recursive: true, mode: 0o755 });
    const exp = await run(['export', adopted, '--to', to]);
    expect(exp.code, exp.stderr).toBe(0);
    const copy = app();
    const from = `${to}/${adopted}/${readdirSync(`${to}/${adopted}`)[0]}`;
    const init = await run(['initcluster', copy, '--from-export', from, '--yes']);
    expect(init.code, init.stderr).toBe(0);
    expect((await stanzaInfo(copy)).backup.filter((b) => b.type === 'full').map((b) => b.database['repo-key']).sort()).toEqual([1, 2]);
    expect(readFileSync(`/etc/pgbackrest/conf.d/${copy}.conf`, 'utf8')).toMatch(/^repo2-type=s3$/m);
  });

  it('no secret in any output, listing, --dry-run or the log', async () => {
    await run(['list', '--json']);
    await run(['repo', 'list', '--json']);
    await run(['repo', 'list']);
    await run([...addArgs('dry'), '--dry-run']);
    await run(['initcluster', 't_dryrun00', '--dry-run']);
    const repos = JSON.parse((await run(['repo', 'list', '--json'])).stdout) as Array<{ name: string; reachable: boolean }>;
    expect(repos.find((r) => r.name === 'offsite')?.reachable).toBe(true);
    const everything = [...outputs, readFileSync(LOG, 'utf8')].join('\n');
    expect(everything.length).toBeGreaterThan(1000);
    expect(everything).not.toContain(rgw.secret);
    expect(everything).not.toContain(rgw.access);
    // The stanza files hold them, readable by root and postgres only.
    for (const n of mine) {
      const file = `/etc/pgbackrest/conf.d/${n}.conf`;
      if (!existsSync(file)) continue;
      expect((await sh('stat', ['-c', '%U:%G %a', file])).stdout).toBe('root:postgres 640');
    }
  });
});
