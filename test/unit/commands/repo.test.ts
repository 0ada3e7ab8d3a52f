// Repositories: repo add's parsing, probe reading, guards and plan; the stanza file's repoN lines;
// attach/detach/remove planners and recovery; new clusters attached to attach-new repositories.
import { attachment } from '../../../src/state/store.js';
import { describe, expect, it } from 'vitest';
import { gatherRepoAdd, parseEndpoint, repoAddCommand, type RepoAddFacts, type RepoAddOptions } from '../../../src/commands/repo/add.js';
import { nextIndex, recoverRepoAttach, repoAttachTargetCommand, type RepoAttachFacts, type RepoAttachOptions } from '../../../src/commands/repo/attach.js';
import { repoRemoveCommand } from '../../../src/commands/repo/remove.js';
import { initClusterCommand, type InitFacts } from '../../../src/commands/initcluster/initcluster.js';
import { UsageError } from '../../../src/errors.js';
import type { FileStat } from '../../../src/host-fs.js';
import { assemblePlan } from '../../../src/plan/command.js';
import { renderPlan } from '../../../src/plan/render.js';
import { withRepoLines } from '../../../src/pgbackrest/config.js';
import { classifyProbe } from '../../../src/pgbackrest/probe.js';
import { probeEnv, repoLines, s3Options } from '../../../src/pgbackrest/repo-options.js';
import { redactText } from '../../../src/redact.js';
import { stanzaScope } from '../../../src/pgbackrest/commands.js';
import { deleteStanzaEverywhere } from '../../../src/steps/stanza.js';
import { parseKeyFile, type RepoRecord } from '../../../src/state/repos.js';
import type { Journal } from '../../../src/state/journal.js';
import { fakeContext, MemoryFs } from '../fakes.js';
import { aNewCluster, aRecord, planEnv } from '../fixtures.js';

const SECRET = 'Zq9secretvalue0000';
const ACCESS = 'AKIDEXAMPLE0001';
const repo = (over: Partial<RepoRecord> = {}): RepoRecord => ({
  format: 1, name: 'offsite', kind: 's3', s3: { host: 's3.example.net', port: 443, bucket: 'pgbackrest', region: 'us-east-1', uriStyle: 'path' }, path: '/pgbackrest',
  caFile: '/var/lib/pgmam/repos/offsite.ca.crt', certFile: null, keyFile: null, encrypted: false, retention: { full: 4, fullType: 'count' }, attachNew: true, fullInterval: null, diffInterval: null, createdAt: 'x',
  ...over,
});
const secrets = { accessKey: ACCESS, secretKey: SECRET, cipherPass: null };
const env = planEnv();

describe('repo add: input', () => {
  it.each([
    ['s3.example.net', { host: 's3.example.net', port: 443 }],
    ['localhost:17443', { host: 'localhost', port: 17443 }],
    ['https://s3.example.net:9000/', { host: 's3.example.net', port: 9000 }],
  ])('%s', (v, want) => expect(parseEndpoint(v)).toEqual(want));
  it.each(['http://s3.example.net', 'http://x:80', 'a b', 's3:99999', ''])('refuses %s (usage, exit 2)', (v) => expect(() => parseEndpoint(v)).toThrow(UsageError));
  it('reads a key file; one without both keys is no key file', () => {
    expect(parseKeyFile(`# offsite\naccess-key = ${ACCESS}\nsecret-key=${SECRET}\n`)).toEqual({ accessKey: ACCESS, secretKey: SECRET });
    expect(parseKeyFile(`access-key = ${ACCESS}\n`)).toBeUndefined();
  });
});

describe('a probe’s failure, as pgBackRest 2.45 reports it against Ceph RGW', () => {
  it.each([
    ['ERROR: [049]: unable to connect to \'localhost:57999\': [111] Connection refused', 'unreachable'],
    ["ERROR: [095]: unable to verify certificate presented by 'localhost:57902': [20] unable to get local issuer certificate", 'untrusted'],
    ['ERROR: [039]: HTTP request failed with 403 (Forbidden):\n       *** Path/Query ***:', 'refused'],
    ['ERROR: [039]: HTTP request failed with 404 (Not Found):\n       GET /nosuch/?delimiter=%2F', 'no-bucket'],
    ['ERROR: [055]: something else', 'other'],
  ])('%s → %s', (text, problem) => {
    expect(classifyProbe({ exitCode: 1, stdout: text, stderr: '' }).problem).toBe(problem);
  });
  it('a timeout is an endpoint that does not answer', () => expect(classifyProbe({ exitCode: 143, stdout: '', stderr: '', signal: 'SIGTERM' }).problem).toBe('unreachable'));
});

describe('a repository as pgBackRest options', () => {
  it('bundled, its own retention, secrets only in the file lines and the probe environment', () => {
    const lines = repoLines(2, s3Options(repo(), secrets));
    expect(lines).toContain('repo2-bundle=y');
    expect(lines).toContain('repo2-retention-full=4');
    expect(lines).toContain(`repo2-s3-key-secret=${SECRET}`);
    expect(lines).not.toContain('repo2-cipher-type=aes-256-cbc');
    expect(probeEnv(s3Options(repo(), secrets))).toMatchObject({ PGBACKREST_REPO1_TYPE: 's3', PGBACKREST_REPO1_S3_KEY_SECRET: SECRET, PGBACKREST_REPO1_S3_URI_STYLE: 'path' });
    expect(redactText(lines.join('\n'))).not.toContain(SECRET);
  });
  it('encrypted with aes-256-cbc when it has a cipher pass', () => {
    expect(repoLines(3, s3Options(repo({ encrypted: true }), { ...secrets, cipherPass: 'pass' }))).toEqual(expect.arrayContaining(['repo3-cipher-type=aes-256-cbc', 'repo3-cipher-pass=pass']));
  });
  it('the stanza file keeps its other lines; its repoN lines are replaced where the first stood', () => {
    const text = '# x\n[app1]\npg1-path=/d\nrepo1-path=/r\nrepo1-retention-full=2\nrepo2-type=s3\ncompress-type=lz4\n';
    expect(withRepoLines(text, ['repo1-path=/r', 'repo1-retention-full=3'])).toBe('# x\n[app1]\npg1-path=/d\nrepo1-path=/r\nrepo1-retention-full=3\ncompress-type=lz4\n');
    expect(withRepoLines(text, ['repo1-path=/r', 'repo1-retention-full=2', 'repo2-type=s3'])).toBe(text);
  });
});

const addOpts = (o: Partial<RepoAddOptions> = {}): RepoAddOptions => ({
  name: 'offsite', host: 'localhost', port: 17443, bucket: 'pgbackrest', region: 'us-east-1', uriStyle: 'path', keyFile: '/root/s3.key', caFile: '/root/ca.crt', path: '/pgbackrest', attachNew: true,
  dryRun: false, yes: true, json: false, keepOnError: false, ...o,
});
const addFacts = (f: Partial<RepoAddFacts> = {}): RepoAddFacts => ({
  uid: 0, taken: false, keyFile: { path: '/root/s3.key', exists: true, private: true, keys: { accessKey: ACCESS, secretKey: SECRET } }, caFile: { path: '/root/ca.crt', pem: '-----BEGIN CERTIFICATE-----\n' },
  cipherPassFile: undefined, list: { ok: true }, write: { ok: true }, now: '2026-12-01T00:00:00Z', ...f,
});
const failed = (f: RepoAddFacts, o = addOpts()) => assemblePlan(repoAddCommand, f, o, env).guards.filter((g) => !g.check().ok).map((g) => g.id);

describe('repo add: guards, then the plan', () => {
  it.each([
    ['a key file others can read', { keyFile: { ...addFacts().keyFile, private: false, keys: undefined } }, ['key-file-is-private']],
    ['a missing key file', { keyFile: { path: '/root/s3.key', exists: false, private: false, keys: undefined } }, ['key-file-is-private']],
    ['a key file without keys', { keyFile: { ...addFacts().keyFile, keys: undefined } }, ['key-file-has-keys']],
    ['a CA file that is no certificate', { caFile: { path: '/root/ca.crt', pem: undefined } }, ['ca-file-is-a-certificate']],
    ['an endpoint that does not answer', { list: { ok: false, problem: 'unreachable' as const, detail: 'x' }, write: undefined }, ['endpoint-answers']],
    ['a CA that does not match', { list: { ok: false, problem: 'untrusted' as const, detail: 'x' }, write: undefined }, ['certificate-is-trusted']],
    ['a wrong secret', { list: { ok: false, problem: 'refused' as const, detail: 'x' }, write: undefined }, ['credentials-are-accepted']],
    ['an unknown bucket', { list: { ok: false, problem: 'no-bucket' as const, detail: 'x' }, write: undefined }, ['bucket-exists']],
    ['a path it cannot write', { write: { ok: false, problem: 'refused' as const, detail: 'x' } }, ['path-is-writable']],
    ['a name in use', { taken: true }, ['repo-name-is-free']],
    ['not root', { uid: 1000 }, ['runs-as-root']],
  ] as const)('%s: refused by %j', (_what, over, ids) => {
    expect(failed(addFacts(over as Partial<RepoAddFacts>))).toEqual(ids);
  });

  it('the plan writes the secrets (root only), the CA copy, then the record; --dry-run shows no secret', () => {
    const p = assemblePlan(repoAddCommand, addFacts(), addOpts(), env);
    expect(p.steps.map((s) => s.id)).toEqual(['write-secrets', 'copy-ca', 'write-repo-record']);
    const text = renderPlan(p, 0);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(ACCESS);
  });

  it('an unsafe key file is never read and no probe runs', async () => {
    const { ctx, runner } = fakeContext();
    const fs = ctx.fs as MemoryFs;
    fs.files.set('/root/s3.key', `access-key = ${ACCESS}\nsecret-key = ${SECRET}\n`);
    fs.stat = async (f: string): Promise<FileStat | undefined> => (fs.files.has(f) ? { uid: 0, gid: 0, mode: 0o644, size: 1, mtimeMs: 0, isDirectory: false } : undefined);
    const f = await gatherRepoAdd(ctx, addOpts({ caFile: undefined }));
    expect(f.keyFile).toEqual({ path: '/root/s3.key', exists: true, private: false, keys: undefined });
    expect(runner.calls).toEqual([]);
  });

  it('probes list, then write and remove one object of its own; secrets only in the environment', async () => {
    const { ctx, runner } = fakeContext();
    const fs = ctx.fs as MemoryFs;
    fs.files.set('/root/s3.key', `access-key = ${ACCESS}\nsecret-key = ${SECRET}\n`);
    fs.stat = async (f: string): Promise<FileStat | undefined> => (fs.files.has(f) ? { uid: 0, gid: 0, mode: 0o600, size: 1, mtimeMs: 0, isDirectory: false } : undefined);
    runner.register(/repo-ls/).register(/repo-put \.pgmam-probe-/).register(/repo-rm \.pgmam-probe-/);
    const f = await gatherRepoAdd(ctx, addOpts({ caFile: undefined }));
    expect([f.list, f.write]).toEqual([{ ok: true }, { ok: true }]);
    for (const c of runner.calls) {
      expect(c.argv.join(' ')).not.toContain(SECRET);
      expect(c.argv).toContain('--config=/dev/null');
      expect(c.env?.['PGBACKREST_REPO1_S3_KEY_SECRET']).toBe(SECRET);
    }
    runner.verify();
  });
});

const attachOpts = (o: Partial<RepoAttachOptions> = {}): RepoAttachOptions => ({ repo: 'offsite', name: 'app1', detach: false, dryRun: false, yes: true, json: false, keepOnError: false, ...o });
const attachFacts = (f: Partial<RepoAttachFacts> = {}): RepoAttachFacts => ({ uid: 0, repo: repo(), record: aRecord('app1'), running: true, port: 5433, lock: { holder: undefined, alive: false }, inRepo: undefined, systemId: '7000000000000000001', hostName: 'hosta', dataDir: '/var/lib/postgresql/15/app1', serve: undefined, now: '2026-12-01T00:00:00.000Z', ...f });

const inRepo = (exists: boolean | undefined, systemId = '7000000000000000001', host?: string) => ({
  repo: 'offsite',
  exists,
  problem: exists === undefined ? 'unable to connect' : undefined,
  stanza: exists ? { name: 'app1', status: { code: 0, message: 'ok' }, archive: [], db: [{ id: 1, 'system-id': systemId, version: '15' }], backup: host ? [{ label: 'F', type: 'full' as const, timestamp: { start: 1, stop: 2 }, annotation: { 'pgmam-host': host } }] : [] } : undefined,
});

describe('repo attach: fleet-wide names', () => {
  const refusedBy = (f: Partial<RepoAttachFacts>) => assemblePlan(repoAttachTargetCommand, attachFacts(f), attachOpts(), env).guards.filter((g) => !g.check().ok).map((g) => g.id);
  it('refuses a repository holding the stanza of another cluster or of another host, and one it cannot ask', () => {
    expect(refusedBy({ inRepo: inRepo(true, '7000000000000000999') })).toEqual(['name-is-free-in-repo']);
    expect(refusedBy({ inRepo: inRepo(true, '7000000000000000001', 'hostb') })).toEqual(['name-is-free-in-repo']);
    expect(refusedBy({ inRepo: inRepo(undefined) })).toEqual(['name-is-free-in-repo']);
  });
  it("accepts a repository without the stanza, or with this cluster's own from before a detach", () => {
    expect(refusedBy({ inRepo: inRepo(false) })).toEqual([]);
    expect(refusedBy({ inRepo: inRepo(true, '7000000000000000001', 'hosta') })).toEqual([]);
  });
});

describe('repo attach / detach', () => {
  it('attach: the stanza file names it at the lowest free index, the stanza is created there, archiving checked, a first full into it', () => {
    const p = assemblePlan(repoAttachTargetCommand, attachFacts({ record: aRecord('app1', { repos: [attachment('other', 2)] }) }), attachOpts(), env);
    expect(p.steps.map((s) => s.id)).toEqual(['attach-in-stanza-file', 'create-stanza', 'check-archiving', 'backup-full-repo3']);
    expect(p.steps[0]!.undo).toBeDefined();
    expect(p.locks).toEqual(['app1', '_repo_offsite']);
  });
  it('nothing to do when already attached (attach) or not attached (detach)', () => {
    expect(assemblePlan(repoAttachTargetCommand, attachFacts({ record: aRecord('app1', { repos: [attachment('offsite', 2)] }) }), attachOpts(), env).steps).toEqual([]);
    expect(assemblePlan(repoAttachTargetCommand, attachFacts(), attachOpts({ detach: true }), env).steps).toEqual([]);
  });
  it('refused: a stopped cluster, a full stanza, an unknown repository', () => {
    const ids = (f: RepoAttachFacts) => assemblePlan(repoAttachTargetCommand, f, attachOpts(), env).guards.filter((g) => !g.check().ok).map((g) => g.id);
    expect(ids(attachFacts({ running: false }))).toEqual(['cluster-is-running']);
    expect(ids(attachFacts({ record: aRecord('app1', { repos: [2, 3, 4].map((index) => (attachment(`r${index}`, index))) }) }))).toEqual(['stanza-has-room']);
    expect(ids(attachFacts({ repo: undefined }))).toEqual(['repo-exists']);
  });
  it('the next index skips the ones in use', () => {
    expect(nextIndex(aRecord('a', { repos: [attachment('x', 2), attachment('y', 4)] }))).toBe(3);
    expect(nextIndex(aRecord('a', { repos: [2, 3, 4].map((index) => (attachment(`r${index}`, index))) }))).toBeUndefined();
  });
  it('an interrupted attach is taken out of the stanza file again before it runs afresh', async () => {
    const { ctx, fs } = fakeContext();
    fs.files.set(`${ctx.paths.clustersDir}/app1.json`, JSON.stringify(aRecord('app1', { repos: [attachment('offsite', 2)] })));
    fs.files.set('/etc/pgbackrest/conf.d/app1.conf', '[app1]\npg1-path=/d\nrepo1-path=/var/lib/pgbackrest\nrepo1-retention-full=2\nrepo1-retention-full-type=count\nrepo2-type=s3\n');
    const j = { name: 'app1' } as Journal;
    const r = await recoverRepoAttach(ctx, j, { repo: 'offsite', index: 2, detach: false });
    expect(r.way).toBe('rolled-back');
    for (const s of r.steps) await (s.run as (c: typeof ctx) => Promise<void>)(ctx);
    expect(JSON.parse(fs.files.get(`${ctx.paths.clustersDir}/app1.json`)!).repos).toEqual([]);
    expect(fs.files.get('/etc/pgbackrest/conf.d/app1.conf')).not.toContain('repo2-');
  });
  it('a stanza is deleted from every repository, one --repo at a time, stopped before each (each delete removes the stop file)', async () => {
    const { ctx, fs, runner } = fakeContext();
    fs.files.set(`${ctx.paths.clustersDir}/app1.json`, JSON.stringify(aRecord('app1', { repos: [attachment('offsite', 2)] })));
    runner.register('pgbackrest --stanza=app1 stop').register('pgbackrest --stanza=app1 --repo=2 stanza-delete --force').register('pgbackrest --stanza=app1 --repo=1 stanza-delete --force');
    await deleteStanzaEverywhere(ctx, stanzaScope('app1', '/etc/pgbackrest/conf.d'), 'app1');
    expect(runner.calls.map((c) => c.argv.slice(1).join(' '))).toEqual(['--stanza=app1 stop', '--stanza=app1 --repo=2 stanza-delete --force', '--stanza=app1 stop', '--stanza=app1 --repo=1 stanza-delete --force']);
  });
  it('repo remove is refused while an app is attached', () => {
    const p = assemblePlan(repoRemoveCommand, { uid: 0, repo: repo(), attached: ['app1'] }, { name: 'offsite', dryRun: false, yes: true, json: false, keepOnError: false }, env);
    expect(p.guards.filter((g) => !g.check().ok).map((g) => g.id)).toEqual(['repo-is-detached']);
  });
});

describe('a new cluster and attach-new repositories', () => {
  const initFacts = (over: Partial<InitFacts> = {}): InitFacts => ({
    uid: 0, now: new Date('2026-11-22T10:00:00Z'),
    tools: { pg_createcluster: '/x', pg_ctlcluster: '/x', pg_lsclusters: '/x', pg_dropcluster: '/x', pgbackrest: '/x', runuser: '/x' },
    installedPg: ['15'], pgbackrestVersion: '2.45', pgVersion: '15', clusters: [], ...aNewCluster('app1', { attach: [{ index: 2, repo: repo() }] }),
    postgres: { uid: 101, gid: 104 }, password: undefined, passwordProblem: undefined, source: undefined, generated: undefined, extras: {}, ...over,
  });
  const o = { name: 'app1', dryRun: false, yes: true, keepOnError: false, json: false };
  it('the stanza file names it (secrets not shown); a full into it once the record exists', () => {
    const p = assemblePlan(initClusterCommand, initFacts(), o, env);
    const ids = p.steps.map((s) => s.id);
    expect(ids.indexOf('backup-full-repo2')).toBeGreaterThan(ids.indexOf('record-managed'));
    const text = renderPlan(p, 0);
    expect(text).toContain('repo2-s3-key-secret=[redacted]');
    expect(text).toContain('--repo=2 --repo2-retention-full=4');
  });
  it('refused when more repositories are attach-new than a stanza takes', () => {
    const p = assemblePlan(initClusterCommand, initFacts({ attach: [2, 3, 4, 5].map((index) => ({ index, repo: repo({ name: `r${index}` }) })) }), o, env);
    expect(p.guards.filter((g) => !g.check().ok).map((g) => g.id)).toEqual(['repos-are-usable']);
  });
});
