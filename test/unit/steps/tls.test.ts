// TLS pieces: the pg_hba.conf block, the names a certificate carries, openssl's output read back, the
// CA made once (a racing second command waits for the first one's), the certificate step's files,
// and tls renew / enable plans.
import { describe, expect, it } from 'vitest';
import { tlsEnableCommand, tlsRenewTargetCommand, type TlsRenewFacts, type TlsRenewOptions } from '../../../src/commands/tls/renew.js';
import { validateConfig } from '../../../src/config/schema.js';
import { assemblePlan } from '../../../src/plan/command.js';
import { renderPlan } from '../../../src/plan/render.js';
import { ensureCa, issueCertificateStep, renderTlsConf, withTlsRules, withoutTlsRules } from '../../../src/steps/tls.js';
import { serverSans } from '../../../src/tls/names.js';
import { pemBlock } from '../../../src/tls/openssl.js';
import { aRecord, planEnv } from '../fixtures.js';
import { FAKE_PEM, fakeContext, stubOpenssl } from '../fakes.js';

const DEBIAN = 'local all postgres peer\nhost replication all 127.0.0.1/32 scram-sha-256\n';
const id = { version: '15', name: 'app1' };

describe("pg_hba.conf: pgmam's TLS rules", () => {
  it('tls-required: TCP without TLS refused first, replication on a line of its own (all does not match it)', () => {
    expect(withTlsRules(DEBIAN, true).split('\n').slice(0, 4)).toEqual(['# pgmam: TLS rules (tls-required) — begin', 'hostnossl all all all reject', 'hostnossl replication all all reject', '# pgmam: TLS rules — end']);
  });
  it('not required: only replication without TLS is refused', () => {
    expect(withTlsRules(DEBIAN, false).split('\n').filter((l) => l.startsWith('hostnossl'))).toEqual(['hostnossl replication all all reject']);
  });
  it('applied twice, the same text; switched, one block; taken out, the rules as they were', () => {
    const once = withTlsRules(DEBIAN, true);
    expect(withTlsRules(once, true)).toBe(once);
    expect(withTlsRules(once, false).match(/begin/g)).toHaveLength(1);
    expect(withoutTlsRules(once)).toBe(DEBIAN);
  });
});

describe('the certificate', () => {
  it('names the host, its FQDN, localhost and the loopback addresses as IP and DNS names, then tls-names, each once', () => {
    expect(serverSans('db1', 'db1.example.net', ['db.example.net', 'localhost']).map((s) => `${s.kind}:${s.value}`)).toEqual([
      'DNS:db1', 'DNS:db1.example.net', 'DNS:localhost', 'DNS:127.0.0.1', 'DNS:::1', 'DNS:db.example.net', 'IP:127.0.0.1', 'IP:::1',
    ]);
  });
  it("reads openssl's key, request and certificate blocks out of its output", () => {
    const out = FAKE_PEM.key + FAKE_PEM.csr;
    expect([pemBlock(out, 'PRIVATE KEY'), pemBlock(out, 'CERTIFICATE REQUEST'), pemBlock(out, 'CERTIFICATE')]).toEqual([FAKE_PEM.key, FAKE_PEM.csr, undefined]);
  });
  it('tls-names must be DNS names (configuration error otherwise)', () => {
    expect(validateConfig({ 'tls-names': 'db.example.net, db2' }).config['tls-names']).toEqual(['db.example.net', 'db2']);
    expect(validateConfig({ 'tls-names': 'db.example.net, not_a_name' }).problems.map((p) => p.key)).toEqual(['tls-names']);
  });
  it("ssl = on and the files in pgmam's conf.d, TLS 1.2 at least", () => {
    expect(renderTlsConf('/etc/pgmam/tls', id)).toContain("ssl = on\nssl_cert_file = '/etc/pgmam/tls/clusters/15-app1/server.crt'\nssl_key_file = '/etc/pgmam/tls/clusters/15-app1/server.key'\nssl_min_protocol_version = 'TLSv1.2'\n");
  });
});

describe('the CA and the certificate step', () => {
  it('makes the CA once (key 0600 first, exclusively), then a key and a certificate for the cluster, owned by postgres; --dry-run shows no key', async () => {
    const { ctx, fs, runner } = fakeContext();
    stubOpenssl(runner);
    const step = issueCertificateStep({ id, config: ctx.config, hostName: 'hosta', fqdn: undefined, owner: { uid: 105, gid: 111 } });
    await (step.run as (c: typeof ctx) => Promise<void>)(ctx);
    expect([fs.files.get('/etc/pgmam/tls/ca.key'), fs.files.get('/etc/pgmam/tls/ca.crt')]).toEqual([FAKE_PEM.key, FAKE_PEM.cert]);
    expect([fs.files.get('/etc/pgmam/tls/clusters/15-app1/server.key'), fs.files.get('/etc/pgmam/tls/clusters/15-app1/server.crt')]).toEqual([FAKE_PEM.key, FAKE_PEM.cert]);
    expect(fs.files.get('/etc/postgresql/15/app1/conf.d/91-pgmam-tls.conf')).toContain('ssl = on');
    expect(step.show!.join('\n')).not.toContain('S0VZ');
    runner.verify();
  });
  it('a CA already there is used, not made again', async () => {
    const { ctx, fs, runner } = fakeContext();
    fs.files.set('/etc/pgmam/tls/ca.key', FAKE_PEM.key);
    fs.files.set('/etc/pgmam/tls/ca.crt', FAKE_PEM.cert);
    expect(await ensureCa(ctx, '/etc/pgmam/tls', 'hosta')).toEqual({ cert: '/etc/pgmam/tls/ca.crt', key: '/etc/pgmam/tls/ca.key' });
    expect(runner.calls).toEqual([]);
  });
});

describe('tls renew and tls enable', () => {
  const o = (enable: boolean): TlsRenewOptions => ({ name: 'app1', enable, dryRun: false, yes: true, json: false, keepOnError: false });
  const facts = (over: Partial<TlsRenewFacts> = {}): TlsRenewFacts => ({
    uid: 0, record: aRecord('app1'), running: true, owner: { uid: 105, gid: 111 }, fqdn: undefined, lock: { holder: undefined, alive: false },
    tls: { cluster: '15/app1', name: 'app1', enabled: true, certFile: '/etc/pgmam/tls/clusters/15-app1/server.crt', certificate: null, expiresInSeconds: null }, ...over,
  });
  it('renew: a new certificate, then a reload (no restart)', () => {
    expect(assemblePlan(tlsRenewTargetCommand, facts(), o(false), planEnv()).steps.map((s) => s.id)).toEqual(['issue-certificate', 'reload-cluster']);
  });
  it('renew is refused for a cluster without TLS of pgmam’s (tls enable first), and for an unknown app', () => {
    const ids = (f: TlsRenewFacts) => assemblePlan(tlsRenewTargetCommand, f, o(false), planEnv()).guards.filter((g) => !g.check().ok).map((g) => g.id);
    expect(ids(facts({ tls: { ...facts().tls!, enabled: false } }))).toEqual(['tls-is-enabled']);
    expect(ids(facts({ record: undefined, tls: undefined }))).toEqual(['cluster-is-managed']);
  });
  it('enable: certificate, reload, then the TLS rules into pg_hba.conf; destructive (clients without TLS are refused from then on)', () => {
    const p = assemblePlan(tlsEnableCommand, facts({ tls: { ...facts().tls!, enabled: false } }), o(true), planEnv());
    expect(p.steps.map((s) => s.id)).toEqual(['issue-certificate', 'reload-cluster', 'require-tls']);
    expect(p.destructive).toBe(true);
    expect(renderPlan(p, 0)).toContain('hostnossl all all all reject');
  });
  it('a stopped cluster is not reloaded: it takes the files when it starts', () => {
    expect(assemblePlan(tlsRenewTargetCommand, facts({ running: false }), o(false), planEnv()).steps.map((s) => s.id)).toEqual(['issue-certificate']);
  });
});
