// A repository host over TLS (pgBackRest's own server), with a second host in namespaces: host A serves
// its posix repository (repo serve), host B's app archives into it through A's server, A takes the app's
// backups through B's server (repo backup-clients: pgBackRest backs up only where the repository is
// local), and B restores from them. Certificates come from a CA the test makes with openssl.
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync, chmodSync, chownSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_ROOT, PORT_MAX, PORT_MIN, freePort, pgmam, sh, uniqueName, type Run } from './helpers.js';
import { onB, pgmamOnB, sqlOnB, startHostB, stopHostB, type HostB } from './hostb.js';

const CONFIG = `${TEST_ROOT}/tls.conf`;
const STATE = `${TEST_ROOT}/tls-state`;
/** Host A's repository, the one it serves. */
const REPO = `${TEST_ROOT}/tls-repo`;
const KEYS = `${TEST_ROOT}/tls-keys`;
const HOST_CONFIG = `${STATE}/serve/pgbackrest-server.conf`;
const run = (args: string[]): Promise<Run> => pgmam(args, { env: { PGMAM_CONFIG: CONFIG } });
const CN_A = 'repo-host-a';

let b: HostB;
const app = { name: uniqueName(), port: 0 };
let portA = 0;
let portB = 0;
let rows = 0;

/** A CA, and a certificate per host (serverAuth and clientAuth) naming its address; a second CA that signed nothing here. */
async function makeCertificates(addrA: string, addrB: string, cnB: string): Promise<void> {
  mkdirSync(KEYS, { recursive: true, mode: 0o700 });
  const ossl = async (args: string[]) => {
    const r = await sh('openssl', args);
    if (r.code !== 0) throw new Error(`openssl ${args[0]}: ${r.stderr}`);
  };
  for (const ca of ['ca', 'other-ca']) await ossl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${KEYS}/${ca}.key`, '-out', `${KEYS}/${ca}.crt`, '-days', '2', '-subj', `/CN=pgmam test ${ca}`]);
  for (const [name, cn, addr] of [['a', CN_A, addrA], ['b', cnB, addrB]] as const) {
    await ossl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${KEYS}/${name}.key`, '-out', `${KEYS}/${name}.csr`, '-subj', `/CN=${cn}`]);
    writeFileSync(`${KEYS}/${name}.ext`, `subjectAltName=IP:${addr},DNS:${addr},DNS:${cn}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n`);
    await ossl(['x509', '-req', '-in', `${KEYS}/${name}.csr`, '-CA', `${KEYS}/ca.crt`, '-CAkey', `${KEYS}/ca.key`, '-CAcreateserial', '-out', `${KEYS}/${name}.crt`, '-days', '2', '-extfile', `${KEYS}/${name}.ext`]);
    chmodSync(`${KEYS}/${name}.key`, 0o600);
  }
}

/** The registrations in A's repository (stanza → registered, or detached). */
const registrations = () =>
  Object.fromEntries(
    (existsSync(`${REPO}/pgmam/clients`) ? readdirSync(`${REPO}/pgmam/clients`) : []).map((f) => [f.replace(/\.json$/, ''), 'detachedAt' in (JSON.parse(readFileSync(`${REPO}/pgmam/clients/${f}`, 'utf8')) as object) ? 'detached' : 'registered']),
  );
/** B's view of the app's backups in the repository host's repository (repo2 of its stanza). */
async function backupsInVault(): Promise<Array<{ label: string; type: string; annotation?: Record<string, string> }>> {
  const r = await onB(b, ['runuser', '-u', 'postgres', '--', 'pgbackrest', `--stanza=${app.name}`, '--repo=2', '--output=json', 'info']);
  if (r.code !== 0) throw new Error(`info on B: ${r.stderr}`);
  return (JSON.parse(r.stdout.replace(/"system-id":(\d+)/g, '"system-id":"$1"')) as Array<{ backup: Array<{ label: string; type: string; annotation?: Record<string, string> }> }>)[0]!.backup;
}

beforeAll(async () => {
  mkdirSync(TEST_ROOT, { recursive: true, mode: 0o755 });
  mkdirSync(REPO, { recursive: true, mode: 0o750 });
  chownSync(REPO, Number((await sh('id', ['-u', 'postgres'])).stdout), Number((await sh('id', ['-g', 'postgres'])).stdout));
  writeFileSync(CONFIG, [`repo-path = ${REPO}`, `state-dir = ${STATE}`, `log-file = ${TEST_ROOT}/tls.log`, `port-min = ${PORT_MIN}`, `port-max = ${PORT_MAX}`, 'archive-timeout = 10'].join('\n') + '\n');
  b = await startHostB(`${TEST_ROOT}/hostb`, [`port-min = ${PORT_MIN}`, `port-max = ${PORT_MAX}`, 'archive-timeout = 10']);
  await makeCertificates(b.addrA, b.addrB, b.name);
  for (const f of ['ca.crt', 'other-ca.crt', 'b.crt', 'b.key']) writeFileSync(`${b.root}/etc-pgmam/${f}`, readFileSync(`${KEYS}/${f}`), { mode: f.endsWith('.key') ? 0o600 : 0o644 });
  [portA, portB, app.port] = [await freePort(), await freePort(), await freePort()];
  const serve = await run(['repo', 'serve', '--address', b.addrA, '--port', String(portA), '--ca-file', `${KEYS}/ca.crt`, '--cert-file', `${KEYS}/a.crt`, '--key-file', `${KEYS}/a.key`, '--allow', b.name, '--yes']);
  if (serve.code !== 0) throw new Error(`repo serve on A: ${serve.stderr}`);
  const init = await pgmamOnB(b, ['initcluster', app.name, '--port', String(app.port), '--yes', '-q']);
  if (init.code !== 0) throw new Error(`initcluster on B: ${init.stderr}`);
  await sqlOnB(b, app.port, 'create table vault(k int)');
}, 240_000);

afterAll(async () => {
  await stopHostB(b);
  await run(['repo', 'serve', '--stop', '--yes']);
}, 120_000);

const addVault = (caFile = '/etc/pgmam/ca.crt') =>
  pgmamOnB(b, ['repo', 'add', 'vault', '--tls-host', `${b.addrA}:${portA}`, '--ca-file', caFile, '--cert-file', '/etc/pgmam/b.crt', '--key-file', '/etc/pgmam/b.key', '--path', REPO, '--host-config', HOST_CONFIG, '--attach-new', 'no']);

async function writeRows(n: number): Promise<void> {
  await sqlOnB(b, app.port, `insert into vault select generate_series(1, ${n})`);
  rows += n;
}

describe('a repository host over TLS', () => {
  it('repo add refuses a server whose certificate the CA does not verify (exit 4), and records nothing', async () => {
    const r = await addVault('/etc/pgmam/other-ca.crt');
    expect(r.code, r.stderr).toBe(4);
    expect(readdirSync(`${b.root}/var-lib-pgmam`).includes('repos') ? readdirSync(`${b.root}/var-lib-pgmam/repos`) : []).toEqual([]);
  });

  it('repo add checks the server and keeps copies of the certificates, the key root:postgres 0640', async () => {
    expect((await addVault()).code).toBe(0);
    const rec = JSON.parse(readFileSync(`${b.root}/var-lib-pgmam/repos/vault.json`, 'utf8')) as { kind: string; tls: { host: string; port: number } };
    expect([rec.kind, rec.tls.host, rec.tls.port]).toEqual(['tls', b.addrA, portA]);
    const key = (await onB(b, ['stat', '-c', '%U:%G %a', '/var/lib/pgmam/repos/vault.key'])).stdout.trim();
    expect(key).toBe('root:postgres 640');
  });

  it('attaching is refused while host B runs no server for the repository host to reach the app (exit 4), and the stanza file is unchanged', async () => {
    const before = (await onB(b, ['cat', `/etc/pgbackrest/conf.d/${app.name}.conf`])).stdout;
    const r = await pgmamOnB(b, ['repo', 'attach', 'vault', app.name]);
    expect(r.code, r.stderr).toBe(4);
    expect((await onB(b, ['cat', `/etc/pgbackrest/conf.d/${app.name}.conf`])).stdout).toBe(before);
  });

  it('with B serving, attach creates the stanza on A, archives WAL into it and registers the app there', async () => {
    const serve = await pgmamOnB(b, ['repo', 'serve', '--address', b.addrB, '--port', String(portB), '--ca-file', '/etc/pgmam/ca.crt', '--cert-file', '/etc/pgmam/b.crt', '--key-file', '/etc/pgmam/b.key', '--allow', CN_A, '--yes']);
    expect(serve.code, serve.stderr).toBe(0);
    expect((await pgmamOnB(b, ['repo', 'attach', 'vault', app.name])).code).toBe(0);
    expect(registrations()).toEqual({ [app.name]: 'registered' });
    await writeRows(100);
    const seg = await sqlOnB(b, app.port, 'select pg_walfile_name(pg_switch_wal())');
    for (let i = 0; i < 150 && !readdirSync(`${REPO}/archive/${app.name}/15-1/${seg.slice(0, 16)}`).some((f) => f.startsWith(seg)); i++) await new Promise((ok) => setTimeout(ok, 200));
    expect(readdirSync(`${REPO}/archive/${app.name}/15-1/${seg.slice(0, 16)}`).some((f) => f.startsWith(seg))).toBe(true);
  });

  it("B's backup leaves the repository host's backups to it: --repo vault is refused (exit 4)", async () => {
    const r = await pgmamOnB(b, ['backup', app.name, '--repo', 'vault']);
    expect(r.code, r.stderr).toBe(4);
    expect(await backupsInVault()).toEqual([]);
  });

  it("A's repo backup-clients backs the app up through B's server; the backup names host B", async () => {
    const r = await run(['repo', 'backup-clients', '--all', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as Array<{ stanza: string; result: string; type: string; label: string }>;
    expect(out.map((x) => [x.stanza, x.result, x.type])).toEqual([[app.name, 'backed-up', 'full']]);
    const backups = await backupsInVault();
    expect(backups.map((x) => x.label)).toEqual([out[0]!.label]);
    expect(backups[0]!.annotation).toEqual({ 'pgmam-host': b.name, 'pgmam-app': app.name, 'pgmam-role': 'app' });
  });

  it("B's check is healthy with the repository host's backup", async () => {
    const r = await pgmamOnB(b, ['check', app.name, '--json']);
    expect(r.code, r.stderr).toBe(0);
  });

  it('B restores from the repository host (pitr --repo vault --latest): every row, those after the backup from the WAL it archived there', async () => {
    await writeRows(50);
    await sqlOnB(b, app.port, 'select pg_switch_wal()');
    const r = await pgmamOnB(b, ['pitr', app.name, '--latest', '--repo', 'vault', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(Number(await sqlOnB(b, app.port, 'select count(*) from vault'))).toBe(rows);
  });

  it('detach marks the registration detached: the repository host backs the app up no more; its backups stay', async () => {
    expect((await pgmamOnB(b, ['repo', 'detach', 'vault', app.name])).code).toBe(0);
    expect(registrations()).toEqual({ [app.name]: 'detached' });
    const r = await run(['repo', 'backup-clients', '--all', '--json']);
    expect([r.code, r.stdout.trim()]).toEqual([0, '[]']);
    expect(existsSync(`${REPO}/backup/${app.name}/backup.info`)).toBe(true);
  });

  it('repo serve --stop stops the server and removes what serve made', async () => {
    // Started by start-stop-daemon (its PID file), or by systemd where it runs.
    const pidFile = `${STATE}/serve/server.pid`;
    const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : Number((await sh('systemctl', ['show', '--property', 'MainPID', '--value', 'pgmam-pgbackrest-server'])).stdout.trim());
    expect(pid).toBeGreaterThan(0);
    expect((await run(['repo', 'serve', '--stop', '--yes'])).code).toBe(0);
    expect(existsSync(`${STATE}/serve`)).toBe(false);
    expect(existsSync('/etc/cron.d/pgmam-serve') || existsSync('/etc/systemd/system/pgmam-pgbackrest-server.service')).toBe(false);
    expect(existsSync(`/proc/${pid}`) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('server')).toBe(false);
  });
});
