// A repository host over TLS: repo add --tls-host (parsing, guards, plan), the stanza file's lines for
// it, repo serve (plans with and without systemd, the server's configuration, recovery), attach
// (registration instead of a backup), backup (the repository host's tier is not this host's), and
// repo backup-clients (what it decides, the configuration it backs up with), drop's unregistering.
import { describe, expect, it } from 'vitest';
import { repoAddCli } from '../../../src/commands/repo/add-cli.js';
import { repoAddTlsCommand, type RepoAddTlsFacts, type RepoAddTlsOptions } from '../../../src/commands/repo/add-tls.js';
import { repoAttachTargetCommand, type RepoAttachFacts, type RepoAttachOptions } from '../../../src/commands/repo/attach.js';
import { decideServed, planServedBackup, servedBackupCommand, type ServedBackupFacts } from '../../../src/commands/repo/backup-clients.js';
import { recoverRepoServe, repoServeCommand, type RepoServeFacts, type RepoServeOptions } from '../../../src/commands/repo/serve.js';
import { backupGuards, tiersOf, type BackupFacts } from '../../../src/commands/backup/backup.js';
import { dropCommand, type DropFacts } from '../../../src/commands/drop/drop.js';
import { defaultConfig } from '../../../src/config/schema.js';
import { UsageError } from '../../../src/errors.js';
import { assemblePlan } from '../../../src/plan/command.js';
import { renderPlan } from '../../../src/plan/render.js';
import { classifyProbe } from '../../../src/pgbackrest/probe.js';
import { repoLines, repoOptions } from '../../../src/pgbackrest/repo-options.js';
import { renderClientConfig, renderServerConfig } from '../../../src/pgbackrest/server.js';
import type { Journal } from '../../../src/state/journal.js';
import type { RepoRecord } from '../../../src/state/repos.js';
import type { Registration, ServeRecord } from '../../../src/state/serve.js';
import { attachment } from '../../../src/state/store.js';
import { noOutage } from '../../../src/steps/repo-outage.js';
import { aRecord, aStanza, planEnv } from '../fixtures.js';
import { fakeContext } from '../fakes.js';

const env = planEnv();
const PEM = '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n';
const KEY = '-----BEGIN PRIVATE KEY-----\nsecretkeymaterial\n-----END PRIVATE KEY-----\n';
const flags = { dryRun: false, yes: true, json: false, keepOnError: false };

const vault = (over: Partial<RepoRecord> = {}): RepoRecord => ({
  format: 1, name: 'vault', kind: 'tls', tls: { host: '10.0.0.1', port: 8432, hostConfig: '/var/lib/pgmam/serve/pgbackrest-server.conf' }, path: '/var/lib/pgbackrest',
  caFile: '/var/lib/pgmam/repos/vault.ca.crt', certFile: '/var/lib/pgmam/repos/vault.crt', keyFile: '/var/lib/pgmam/repos/vault.key', encrypted: false,
  retention: { full: 2, fullType: 'count' }, attachNew: false, fullInterval: null, diffInterval: null, createdAt: 'x', ...over,
});

describe('a TLS repository in the stanza file', () => {
  it('names the repository host, its server configuration and the path there; no retention (expire runs on that host), no secret', () => {
    expect(repoLines(2, repoOptions(vault(), undefined))).toEqual([
      'repo2-path=/var/lib/pgbackrest',
      'repo2-host=10.0.0.1',
      'repo2-host-type=tls',
      'repo2-host-port=8432',
      'repo2-host-ca-file=/var/lib/pgmam/repos/vault.ca.crt',
      'repo2-host-cert-file=/var/lib/pgmam/repos/vault.crt',
      'repo2-host-key-file=/var/lib/pgmam/repos/vault.key',
      'repo2-host-config=/var/lib/pgmam/serve/pgbackrest-server.conf',
    ]);
  });
  it.each([
    ["ERROR: [049]: unable to connect to '10.0.0.1:8432': [111] Connection refused", 'unreachable'],
    ["ERROR: [095]: unable to verify certificate presented by '10.0.0.1:8432': [19] self-signed certificate in certificate chain", 'untrusted'],
    ["ERROR: [105]: raised from remote-0 tls protocol on '10.0.0.1': access denied", 'refused'],
    ["ERROR: [055]: raised from remote-0 tls protocol on '10.0.0.1': unable to open missing file '/nonexist' for read", 'other'],
  ])('a probe failing with %s is %s', (stderr, problem) => {
    expect(classifyProbe({ exitCode: Number(/\[(\d+)\]/.exec(stderr)![1]), stdout: '', stderr }).problem).toBe(problem);
  });
});

describe('repo add --tls-host', () => {
  const parse = (args: Record<string, unknown>) => repoAddCli.cli.input.parse({ name: 'vault', attachNew: 'yes', ...args });
  it('parses the host with pgBackRest’s default port 8432 and the defaults for path and host-config', () => {
    expect(parse({ tlsHost: 'vault.example.net', caFile: '/r/ca.crt', certFile: '/r/a.crt', keyFile: '/r/a.key' })).toEqual({
      name: 'vault', tlsHost: 'vault.example.net', tlsPort: 8432, hostConfig: '/var/lib/pgmam/serve/pgbackrest-server.conf', caFile: '/r/ca.crt', certFile: '/r/a.crt', keyFile: '/r/a.key', path: '/var/lib/pgbackrest', attachNew: true,
    });
  });
  it.each([
    ['S3 flags beside it', { tlsHost: 'h', caFile: '/c', certFile: '/a', keyFile: '/k', s3Bucket: 'b' }],
    ['no certificate', { tlsHost: 'h', caFile: '/c', keyFile: '/k' }],
    ['a retention of its own (the host keeps its own)', { tlsHost: 'h', caFile: '/c', certFile: '/a', keyFile: '/k', retentionFull: '3' }],
    ['plain http', { tlsHost: 'http://h', caFile: '/c', certFile: '/a', keyFile: '/k' }],
    ['--cert-file without --tls-host', { s3Endpoint: 'h', s3Bucket: 'bucket', s3KeyFile: '/k', certFile: '/a' }],
  ])('refuses %s (usage, exit 2)', (_w, args) => expect(() => parse(args)).toThrow(UsageError));

  const o: RepoAddTlsOptions = { name: 'vault', tlsHost: '10.0.0.1', tlsPort: 8432, hostConfig: '/var/lib/pgmam/serve/pgbackrest-server.conf', caFile: '/r/ca.crt', certFile: '/r/a.crt', keyFile: '/r/a.key', path: '/var/lib/pgbackrest', attachNew: false, ...flags };
  const facts = (over: Partial<RepoAddTlsFacts> = {}): RepoAddTlsFacts => ({ uid: 0, taken: false, ca: PEM, cert: PEM, key: { exists: true, private: true, pem: KEY }, list: { ok: true }, write: { ok: true }, postgres: { uid: 105, gid: 111 }, now: 'x', ...over });
  const failed = (f: RepoAddTlsFacts) => assemblePlan(repoAddTlsCommand, f, o, env).guards.filter((g) => !g.check().ok).map((g) => g.id);
  it.each([
    ['a key others can read', { key: { exists: true, private: false, pem: undefined } }, ['key-file-is-private']],
    ['a server that does not answer', { list: { ok: false, problem: 'unreachable' as const, detail: 'x' }, write: undefined }, ['server-answers']],
    ['a CA that does not verify it', { list: { ok: false, problem: 'untrusted' as const, detail: 'x' }, write: undefined }, ['certificate-is-trusted']],
    ['a server that does not let this host in', { list: { ok: false, problem: 'refused' as const, detail: 'access denied' }, write: undefined }, ['host-lets-this-host-in']],
    ['a certificate file that is none', { cert: undefined, list: undefined, write: undefined }, ['cert-file-is-a-certificate']],
  ])('%s: refused by %j', (_w, over, ids) => expect(failed(facts(over as Partial<RepoAddTlsFacts>))).toEqual(ids));
  it('copies the CA, the certificate and the key (root:postgres 0640), then records it; --dry-run shows no key', async () => {
    const p = assemblePlan(repoAddTlsCommand, facts(), o, env);
    expect(p.steps.map((s) => s.id)).toEqual(['copy-ca', 'copy-cert', 'copy-key', 'write-repo-record']);
    expect(renderPlan(p, 0)).not.toContain('secretkeymaterial');
    const { ctx, fs } = fakeContext();
    for (const s of p.steps) await (s.run as (c: typeof ctx) => Promise<void>)(ctx);
    expect(fs.files.get('/var/lib/pgmam/repos/vault.key')).toBe(KEY);
    expect(JSON.parse(fs.files.get('/var/lib/pgmam/repos/vault.json')!)).toMatchObject({ kind: 'tls', tls: { host: '10.0.0.1', port: 8432 }, keyFile: '/var/lib/pgmam/repos/vault.key' });
  });
});

describe('repo serve', () => {
  const o: RepoServeOptions = { stop: false, address: '10.0.0.1', port: 8432, caFile: '/r/ca.crt', certFile: '/r/a.crt', keyFile: '/r/a.key', allow: ['app1.example.net', 'app2.example.net'], ...flags };
  const facts = (over: Partial<RepoServeFacts> = {}): RepoServeFacts => ({ uid: 0, systemd: false, hostName: 'hosta', current: undefined, ca: PEM, cert: PEM, key: { exists: true, private: true, pem: KEY }, postgres: { uid: 105, gid: 111 }, binary: true, portTaken: false, now: 'x', ...over });
  it('the server configuration lets each CN in for every stanza and names no repository path (clients send theirs)', () => {
    const text = renderServerConfig({ address: '10.0.0.1', port: 8432, allow: o.allow, files: { ca: '/s/ca.crt', cert: '/s/server.crt', key: '/s/server.key' } });
    expect(text).toContain('tls-server-auth=app1.example.net=*\ntls-server-auth=app2.example.net=*\n');
    expect(text).not.toMatch(/repo\d*-path/);
  });
  it('without systemd: a cron @reboot line, the old server stopped by its PID file, the new one started, pinged, recorded', () => {
    expect(assemblePlan(repoServeCommand, facts(), o, env).steps.map((s) => s.id)).toEqual(['copy-server-certificates', 'write-server-config', 'write-serve-cron', 'stop-server', 'start-server', 'ping-server', 'write-serve-record']);
  });
  it('with systemd: a unit, enabled and restarted (a running server reads its allowed CNs only when it starts)', () => {
    expect(assemblePlan(repoServeCommand, facts({ systemd: true }), o, planEnv({ systemd: true })).steps.map((s) => s.id)).toEqual(['copy-server-certificates', 'write-server-config', 'write-server-unit', 'systemctl-daemon-reload', 'systemctl-enable', 'systemctl-restart', 'ping-server', 'write-serve-record']);
  });
  it('refused: a port another process listens on, a key others can read', () => {
    const ids = (f: RepoServeFacts) => assemblePlan(repoServeCommand, f, o, env).guards.filter((g) => !g.check().ok).map((g) => g.id);
    expect(ids(facts({ portTaken: true }))).toEqual(['port-is-free']);
    expect(ids(facts({ key: { exists: true, private: false, pem: undefined } }))).toEqual(['key-file-is-private']);
  });
  it('an interrupted serve is rolled back (server stopped, pgmam’s files of it removed); an interrupted --stop is finished', async () => {
    const { ctx } = fakeContext();
    const j = { name: '_serve' } as Journal;
    const serve = await recoverRepoServe(ctx, j, { stop: false, systemd: false });
    expect([serve.way, serve.steps.map((s) => s.id)]).toEqual(['rolled-back', ['stop-server', 'remove-serve-cron', 'remove-serve-files']]);
    expect((await recoverRepoServe(ctx, j, { stop: true, systemd: false })).way).toBe('finished');
  });
});

describe('repo attach to a TLS repository', () => {
  const serve: ServeRecord = { format: 1, address: '10.0.0.2', port: 8433, allow: ['repo-host'], via: 'cron', createdAt: 'x' };
  const o: RepoAttachOptions = { repo: 'vault', name: 'app1', detach: false, ...flags };
  const facts = (over: Partial<RepoAttachFacts> = {}): RepoAttachFacts => ({ uid: 0, repo: vault(), record: aRecord('app1'), running: true, port: 5433, lock: { holder: undefined, alive: false }, inRepo: undefined, systemId: '1', hostName: 'hostb', dataDir: '/var/lib/postgresql/15/app1', serve, now: '2026-12-01T00:00:00.000Z', ...over });
  it('ends by registering the app with the repository host (repo-put of how to reach it), not with a backup', () => {
    const p = assemblePlan(repoAttachTargetCommand, facts(), o, env);
    expect(p.steps.map((s) => s.id)).toEqual(['attach-in-stanza-file', 'create-stanza', 'check-archiving', 'register-with-repo-host']);
    const put = p.steps[3]!.run as unknown as { argv: string[]; input: string };
    expect(put.argv).toEqual(['pgbackrest', '--stanza=app1', '--repo=2', 'repo-put', 'pgmam/clients/app1.json']);
    expect(JSON.parse(put.input) as Registration).toMatchObject({ stanza: 'app1', app: 'app1', host: 'hostb', address: '10.0.0.2', port: 8433, pgPath: '/var/lib/postgresql/15/app1', pgPort: 5433, hostConfig: '/var/lib/pgmam/serve/pgbackrest-server.conf' });
  });
  it('refused while this host runs no server for the repository host to reach the cluster', () => {
    expect(assemblePlan(repoAttachTargetCommand, facts({ serve: undefined }), o, env).guards.filter((g) => !g.check().ok).map((g) => g.id)).toEqual(['host-serves']);
  });
  it('detach leaves a tombstone first (pgBackRest 2.45 cannot remove a file through a repository host)', () => {
    const p = assemblePlan(repoAttachTargetCommand, facts({ record: aRecord('app1', { repos: [attachment('vault', 2)] }) }), { ...o, detach: true }, env);
    expect(p.steps.map((s) => s.id)).toEqual(['unregister', 'detach-from-stanza-file']);
  });
});

describe('backup on the app host', () => {
  it('a TLS repository is no tier of this host: its host takes the backups', () => {
    expect(tiersOf(aRecord('app1', { repos: [attachment('vault', 2)] }), [vault()], defaultConfig).map((t) => t.name)).toEqual(['local']);
  });
  it('backup --repo vault is refused, with the command to run on the repository host', () => {
    const f: BackupFacts = { uid: 0, now: new Date(), target: undefined, decision: undefined, tiers: [], done: {}, outage: noOutage(), hostTaken: [{ name: 'vault', host: '10.0.0.1' }] };
    const failed = backupGuards(f, { name: 'app1', type: 'auto', force: false, repo: 'vault', ...flags }).filter((g) => !g.check().ok);
    expect(failed.map((g) => g.id)).toEqual(['cluster-is-managed', 'repo-is-not-another-hosts']);
  });
});

describe('repo backup-clients on the repository host', () => {
  const now = new Date('2026-12-01T12:00:00Z');
  const t = (h: number) => Math.floor(now.getTime() / 1000) - h * 3600;
  const backup = (label: string, type: 'full' | 'diff' | 'incr', hoursAgo: number, stop: string) => ({ label, type, timestamp: { start: t(hoursAgo) - 60, stop: t(hoursAgo) }, archive: { start: stop, stop } });
  const cfg = { 'full-interval': 7 * 86400, 'diff-interval': 86400 };
  it.each([
    ['no backup yet', [], 'auto', { action: 'backup', type: 'full' }],
    ['a full older than full-interval', [backup('F1', 'full', 24 * 8, '000000010000000000000002')], 'auto', { action: 'backup', type: 'full' }],
    ['a recent full and no WAL since', [backup('F1', 'full', 2, '000000010000000000000009')], 'auto', { action: 'skip' }],
    ['a recent full and WAL since', [backup('F1', 'full', 2, '000000010000000000000005')], 'auto', { action: 'backup', type: 'incr' }],
    ['a full past diff-interval and WAL since', [backup('F1', 'full', 30, '000000010000000000000005')], 'auto', { action: 'backup', type: 'diff' }],
    ['--type full', [backup('F1', 'full', 2, '000000010000000000000009')], 'full', { action: 'backup', type: 'full' }],
  ] as const)('%s: %j', (_w, backups, type, want) => {
    expect(decideServed(aStanza('app1', { backup: [...backups] }), type, cfg, now)).toMatchObject(want);
  });

  const reg: Registration = { format: 1, stanza: 'app1', app: 'app1', role: 'app', host: 'hostb', address: '10.0.0.2', port: 8433, hostConfig: '/var/lib/pgmam/serve/pgbackrest-server.conf', pgPath: '/var/lib/postgresql/15/app1', pgPort: 5433, socketPath: '/var/run/postgresql', registeredAt: 'x' };
  it("backs up through the app host's server into the local repository, with this host's retention and the app's annotations", () => {
    const text = renderClientConfig(reg, { ca: '/s/ca.crt', cert: '/s/server.crt', key: '/s/server.key' }, { repoPath: '/var/lib/pgbackrest', retention: { full: 3, fullType: 'count' }, compressType: 'lz4', processMax: 2 }, { host: 'hostb', app: 'app1', role: 'app' });
    for (const l of ['[app1]', 'pg1-host=10.0.0.2', 'pg1-host-type=tls', 'pg1-host-port=8433', 'pg1-host-config=/var/lib/pgmam/serve/pgbackrest-server.conf', 'pg1-path=/var/lib/postgresql/15/app1', 'pg1-port=5433', 'repo1-path=/var/lib/pgbackrest', 'repo1-retention-full=3', 'annotation=pgmam-host=hostb'])
      expect(text.split('\n')).toContain(l);
    const f: ServedBackupFacts = { uid: 0, now, serve: undefined, repoPath: '/var/lib/pgbackrest', registration: reg, problem: undefined, stanza: undefined, postgresGid: 111, decision: { action: 'backup', type: 'full', why: 'no full backup yet' }, done: undefined };
    const p = planServedBackup(f, { stanza: 'app1', type: 'auto', ...flags }, env);
    expect(p.steps.map((s) => s.id)).toEqual(['write-client-config', 'backup-full']);
  });
  it('refused without a server of its own, and for a stanza that is not registered (or was detached)', () => {
    const f: ServedBackupFacts = { uid: 0, now, serve: undefined, repoPath: '/r', registration: undefined, problem: 'its host detached it at x', stanza: undefined, postgresGid: 111, decision: undefined, done: undefined };
    expect(assemblePlan(servedBackupCommand, f, { stanza: 'app1', type: 'auto' as const, ...flags }, env).guards.filter((g) => !g.check().ok).map((g) => g.id)).toEqual(['host-serves', 'app-is-registered']);
  });
});

describe('drop of an app attached to a repository host', () => {
  it('marks its registration there detached before anything else of the stanza goes', () => {
    const record = aRecord('app1', { repos: [attachment('vault', 2)] });
    const f: DropFacts = { uid: 0, record, branches: [], replicas: [], running: [], ports: {}, managed: [record], targets: [record], dataDirs: { app1: '/d' }, locks: [{ name: 'app1', holder: undefined, alive: false }], interrupted: [], repoHosts: ['vault'], dropped: false };
    const p = assemblePlan(dropCommand, f, { name: 'app1', purgeBackups: true, withBranches: false, onlyBranches: false, withReplicas: false, onlyReplicas: false, ...flags }, env);
    expect(p.steps.map((s) => s.id)).toEqual(['drop-cluster', 'clear-archive-spool', 'remove-config', 'unregister-from-repo-hosts', 'delete-stanza', 'remove-stanza-file', 'forget-cluster']);
  });
});

describe('the schedule', () => {
  it('runs repo backup-clients --all beside backup --all (cron; a systemd unit whose result stays backup --all’s)', async () => {
    const { renderCron, renderUnits } = await import('../../../src/commands/schedule/schedule.js');
    expect(renderCron('0 * * * *', '/usr/sbin/pgmam', undefined, '/var/log/pgmam')).toContain('0 * * * * root /usr/sbin/pgmam backup --all >> /var/log/pgmam/cron.log 2>&1; /usr/sbin/pgmam repo backup-clients --all >> /var/log/pgmam/cron.log 2>&1\n');
    expect(renderUnits('*-*-* *:00:00', '/usr/sbin/pgmam', undefined).service).toContain('ExecStart=-/usr/sbin/pgmam repo backup-clients --all\nExecStart=/usr/sbin/pgmam backup --all\n');
  });
});
