// TLS by default: a new cluster and its branch each serve a certificate of their own signed by pgmam's
// CA (verify-full connects), TCP without TLS is refused by pg_hba.conf for clients and replication,
// tls renew changes the served certificate without a restart, and bad input changes nothing.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, listEntry, pgmam, pgmamOk, removeTestCluster, sh, sql, TEST_ROOT, testConfigLines, uniqueName } from './helpers.js';

const CA = `${TEST_ROOT}/tls/ca.crt`;
const app = { name: uniqueName(), port: 0 };
const branch = `${app.name}_dev`;
const PASSWORD = `pw-${app.name}`;

/** psql over TCP as the test's password role; exit code and output. */
const psql = (conninfo: string, query = 'select ssl from pg_stat_ssl where pid = pg_backend_pid()') =>
  sh('psql', ['-X', '-At', '-c', query, `${conninfo} user=tls_user dbname=postgres connect_timeout=5`], { env: { PGPASSWORD: PASSWORD, PATH: process.env['PATH'] ?? '' } });
/** The serial of the certificate the server at `port` presents (TLS negotiated in PostgreSQL's protocol). */
async function servedSerial(port: number): Promise<string> {
  const r = await sh('sh', ['-c', `echo | openssl s_client -starttls postgres -connect 127.0.0.1:${port} 2>/dev/null | openssl x509 -noout -serial`]);
  return r.stdout.trim();
}
const postmasterPid = (dataDir: string) => readFileSync(`${dataDir}/postmaster.pid`, 'utf8').split('\n')[0];
const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
const certOf = (name: string) => `${TEST_ROOT}/tls/clusters/15-${name}/server.crt`;

beforeAll(async () => {
  app.port = await freePort();
  const r = await pgmam(['initcluster', app.name, '--port', String(app.port), '--yes', '-q']);
  if (r.code !== 0) throw new Error(`initcluster: ${r.stderr}`);
  await sql(app.port, `create role tls_user login replication password '${PASSWORD}'`);
}, 180_000);

afterAll(async () => {
  await removeTestCluster(branch);
  await removeTestCluster(app.name);
}, 120_000);

describe('TLS by default', () => {
  it("a new cluster: verify-full against pgmam's CA connects over TLS (by name and by address)", async () => {
    for (const host of ['localhost', '127.0.0.1']) {
      const r = await psql(`host=${host} port=${app.port} sslmode=verify-full sslrootcert=${CA}`);
      expect([r.code, r.stdout.trim()], r.stderr).toEqual([0, 't']);
    }
  });

  it('TCP without TLS is refused by pg_hba.conf: a client, and a replication connection', async () => {
    const client = await psql(`host=127.0.0.1 port=${app.port} sslmode=disable`, 'select 1');
    expect(client.code, client.stderr).toBe(2);
    expect(client.stderr).toContain('pg_hba.conf rejects connection');
    const replication = await psql(`host=127.0.0.1 port=${app.port} sslmode=disable replication=true`, 'IDENTIFY_SYSTEM');
    expect(replication.code, replication.stderr).toBe(2);
    expect(replication.stderr).toContain('pg_hba.conf rejects replication connection');
  });

  it("a branch serves a certificate of its own (not its parent's), and verify-full connects to it", async () => {
    const r = await pgmam(['branch', 'create', app.name, '--yes', '-q']);
    expect(r.code, r.stderr).toBe(0);
    const port = (await listEntry(branch)).port!;
    const c = await psql(`host=localhost port=${port} sslmode=verify-full sslrootcert=${CA}`);
    expect([c.code, c.stdout.trim()], c.stderr).toEqual([0, 't']);
    expect(await servedSerial(port)).not.toBe(await servedSerial(app.port));
    const shown = JSON.parse((await pgmam(['tls', 'show', '--json'])).stdout) as { ca: { certificate: { subject: string } }; clusters: Array<{ name: string; enabled: boolean; certificate: { serial: string; sans: string[] } }> };
    expect(shown.ca.certificate.subject).toMatch(/^CN=pgmam CA on /);
    const mine = shown.clusters.filter((x) => x.name === app.name || x.name === branch);
    expect(mine.map((x) => x.enabled)).toEqual([true, true]);
    expect(mine[0]!.certificate.sans).toEqual(expect.arrayContaining(['DNS:localhost', 'IP Address:127.0.0.1', 'DNS:127.0.0.1']));
  });

  it('tls renew: the served certificate changes (another serial), the postmaster stays (same pid)', async () => {
    const dataDir = (await listEntry(app.name)).dataDir!;
    const [serial, pid] = [await servedSerial(app.port), postmasterPid(dataDir)];
    const r = await pgmam(['tls', 'renew', app.name, '-q']);
    expect(r.code, r.stderr).toBe(0);
    expect(await servedSerial(app.port)).not.toBe(serial);
    expect(postmasterPid(dataDir)).toBe(pid);
    const c = await psql(`host=localhost port=${app.port} sslmode=verify-full sslrootcert=${CA}`);
    expect(c.code, c.stderr).toBe(0);
  });

  it('bad input changes nothing: tls renew of an unknown app (exit 4); a tls-names entry that is no DNS name (exit 3)', async () => {
    const before = sha(certOf(app.name));
    expect((await pgmam(['tls', 'renew', 't_nosuchapp'])).code).toBe(4);
    const bad = `${TEST_ROOT}/tls-bad.conf`;
    writeFileSync(bad, [...testConfigLines(), 'tls-names = db.example.net, not_a_name'].join('\n') + '\n');
    expect((await pgmam(['tls', 'renew', app.name], { env: { PGMAM_CONFIG: bad } })).code).toBe(3);
    expect((await pgmam(['initcluster', uniqueName()], { env: { PGMAM_CONFIG: bad } })).code).toBe(3);
    expect(sha(certOf(app.name))).toBe(before);
  });

  it("check exports the certificate's expiry; tls-warn-days longer than its life makes the app unhealthy", async () => {
    const prom = `${TEST_ROOT}/tls.prom`;
    await pgmamOk(['check', app.name, '--prometheus', prom]);
    const line = readFileSync(prom, 'utf8').split('\n').find((l) => l.startsWith(`pgmam_tls_expiry_seconds{cluster="15/${app.name}"}`));
    expect(Number(line?.split(' ')[1])).toBeGreaterThan(Date.now() / 1000 + 9 * 365 * 86400);
    const warn = `${TEST_ROOT}/tls-warn.conf`;
    writeFileSync(warn, [...testConfigLines(), 'tls-warn-days = 3650'].join('\n') + '\n');
    const r = await pgmam(['check', app.name, '--json'], { env: { PGMAM_CONFIG: warn } });
    expect(r.code, r.stderr).toBe(7);
  });
});
