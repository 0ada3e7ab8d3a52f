// TLS for a cluster: pgmam's CA (made by the first command that needs it), a server certificate of the
// cluster's own signed by it, `ssl = on` in pgmam's conf.d (never postgresql.auto.conf, which travels
// into restores and branches), and pg_hba.conf rules that refuse TCP without TLS. The certificate lives
// outside the data directory (<tls-dir>/clusters/<version>-<name>/), so a restore keeps it and a branch,
// a new cluster, gets its own.
import type { Config } from '../config/schema.js';
import type { Context } from '../context.js';
import { readClusters } from '../host/facts.js';
import * as pg from '../pg/commands.js';
import type { Step } from '../plan/types.js';
import { caCertFromKey, newCa, newServerRequest, pemBlock, signRequest } from '../tls/openssl.js';
import { serverSans } from '../tls/names.js';
import { savedHbaPath } from './hand-over.js';

export const TLS_CONF_NAME = '91-pgmam-tls.conf';
export const caCertPath = (tlsDir: string) => `${tlsDir}/ca.crt`;
export const caKeyPath = (tlsDir: string) => `${tlsDir}/ca.key`;
export const clusterTlsDir = (tlsDir: string, id: pg.ClusterId) => `${tlsDir}/clusters/${id.version}-${id.name}`;
export const serverCertPath = (tlsDir: string, id: pg.ClusterId) => `${clusterTlsDir(tlsDir, id)}/server.crt`;
export const serverKeyPath = (tlsDir: string, id: pg.ClusterId) => `${clusterTlsDir(tlsDir, id)}/server.key`;

export function renderTlsConf(tlsDir: string, id: pg.ClusterId): string {
  return [
    '# Written by pgmam: this cluster’s own certificate, signed by pgmam’s CA (pgmam tls show, pgmam tls renew).',
    'ssl = on',
    `ssl_cert_file = '${serverCertPath(tlsDir, id)}'`,
    `ssl_key_file = '${serverKeyPath(tlsDir, id)}'`,
    "ssl_min_protocol_version = 'TLSv1.2'",
    '',
  ].join('\n');
}

const BEGIN = '# pgmam: TLS rules (tls-required) — begin';
const END = '# pgmam: TLS rules — end';

/**
 * pg_hba.conf with pgmam's TLS rules first (the first matching line wins): TCP without TLS refused —
 * every connection where tls-required = yes, replication connections always. Replaces an earlier block.
 */
export function withTlsRules(hba: string, required: boolean): string {
  // `all` does not match physical replication connections: they get a line of their own.
  const rules = required ? ['hostnossl all all all reject', 'hostnossl replication all all reject'] : ['hostnossl replication all all reject'];
  return [BEGIN, ...rules, END, withoutTlsRules(hba)].join('\n');
}

/** pg_hba.conf without pgmam's TLS block (an adopt that rolls back leaves the rules as they were). */
export function withoutTlsRules(hba: string): string {
  const lines = hba.split('\n');
  const b = lines.indexOf(BEGIN);
  const e = lines.indexOf(END);
  return (b >= 0 && e > b ? [...lines.slice(0, b), ...lines.slice(e + 1)] : lines).join('\n');
}

export interface TlsSpec {
  id: pg.ClusterId;
  config: Pick<Config, 'tls-dir' | 'tls-names' | 'tls-required'>;
  hostName: string;
  /** The host's FQDN (hostname -f), when it has one besides its name. */
  fqdn: string | undefined;
  owner: { uid: number; gid: number };
}

const isPem = (t: string | undefined, what: RegExp) => t !== undefined && what.test(t);
const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));

/**
 * pgmam's CA, made once: its key (root 0600) created exclusively, so two commands racing to make it
 * agree on one; its certificate from that key. A re-run after a crash between the two finishes it.
 */
export async function ensureCa(ctx: Pick<Context, 'fs' | 'runner'>, tlsDir: string, hostName: string): Promise<{ cert: string; key: string }> {
  const paths = { cert: caCertPath(tlsDir), key: caKeyPath(tlsDir) };
  const ready = async () => isPem(await ctx.fs.readText(paths.cert), /BEGIN CERTIFICATE/) && isPem(await ctx.fs.readText(paths.key), /PRIVATE KEY/);
  if (await ready()) return paths;
  await ctx.fs.mkdirp(tlsDir, { mode: 0o755, owner: { uid: 0, gid: 0 } });
  if (!(await ctx.fs.exists(paths.key))) {
    const out = (await ctx.runner.run(newCa(`pgmam CA on ${hostName}`))).stdout;
    const key = pemBlock(out, 'PRIVATE KEY');
    const cert = pemBlock(out, 'CERTIFICATE');
    if (!key || !cert) throw new Error('openssl printed no CA key and certificate');
    // The key first, exclusively: of two commands racing, one makes the CA, the other waits for it.
    if (await ctx.fs.createExclusive(paths.key, key, 0o600)) await ctx.fs.createExclusive(paths.cert, cert, 0o644);
  }
  for (let i = 0; !(await ready()); i++) {
    // A key without its certificate after 5 s: a run crashed between the two (no certificate was issued with it).
    if (i === 50) {
      const cert = pemBlock((await ctx.runner.run(caCertFromKey(paths.key, `pgmam CA on ${hostName}`))).stdout, 'CERTIFICATE');
      if (cert) await ctx.fs.createExclusive(paths.cert, cert, 0o644);
    }
    if (i > 60) throw new Error(`${paths.key} holds no key of a CA or ${paths.cert} no certificate: move them aside and run again`);
    await sleep(100);
  }
  return paths;
}

/** A new key and certificate for the cluster, signed by pgmam's CA (made if missing), and its conf.d file. Run again, it issues anew. */
export function issueCertificateStep(s: TlsSpec, id = 'issue-certificate'): Step {
  const tlsDir = s.config['tls-dir'];
  const dir = clusterTlsDir(tlsDir, s.id);
  const confFile = `${pg.confDirOf(s.id)}/conf.d/${TLS_CONF_NAME}`;
  const sans = serverSans(s.hostName, s.fqdn, s.config['tls-names']);
  const conf = renderTlsConf(tlsDir, s.id);
  return {
    id,
    title: `a server certificate of ${pg.clusterLabel(s.id)}'s own, signed by pgmam's CA (${caCertPath(tlsDir)}), and ssl = on in ${confFile}`,
    effect: 'write',
    run: async (ctx) => {
      const ca = await ensureCa(ctx, tlsDir, s.hostName);
      const req = (await ctx.runner.run(newServerRequest(s.fqdn ?? s.hostName, sans))).stdout;
      const key = pemBlock(req, 'PRIVATE KEY');
      const csr = pemBlock(req, 'CERTIFICATE REQUEST');
      if (!key || !csr) throw new Error('openssl printed no key and certificate request');
      const cert = pemBlock((await ctx.runner.run(signRequest(csr, ca))).stdout, 'CERTIFICATE');
      if (!cert) throw new Error(`openssl printed no certificate signed by ${ca.cert}`);
      await ctx.fs.mkdirp(`${tlsDir}/clusters`, { mode: 0o755, owner: { uid: 0, gid: 0 } });
      await ctx.fs.mkdirp(dir, { mode: 0o755, owner: { uid: 0, gid: 0 } });
      // PostgreSQL takes a key owned by its user at 0600; the directory is root's, so nobody plants a link there.
      await ctx.fs.writeFileAtomic(serverKeyPath(tlsDir, s.id), key, { mode: 0o600, owner: s.owner });
      await ctx.fs.writeFileAtomic(serverCertPath(tlsDir, s.id), cert, { mode: 0o644, owner: s.owner });
      await ctx.fs.mkdirp(`${pg.confDirOf(s.id)}/conf.d`, { mode: 0o755, owner: s.owner });
      await ctx.fs.writeFileAtomic(confFile, conf, { mode: 0o644, owner: s.owner });
    },
    show: [
      `(once) ${caCertPath(tlsDir)} and ${caKeyPath(tlsDir)} (0600 root): pgmam's CA, 10 years`,
      `$ openssl req -new -newkey ec … -keyout - -subj /CN=${s.fqdn ?? s.hostName} -addext subjectAltName=${sans.map((x) => `${x.kind}:${x.value}`).join(',')} …  (key to ${serverKeyPath(tlsDir, s.id)}, 0600 postgres)`,
      `$ openssl x509 -req -CA ${caCertPath(tlsDir)} -CAkey ${caKeyPath(tlsDir)} -days 3650 -copy_extensions copyall …  (to ${serverCertPath(tlsDir, s.id)})`,
      `write ${confFile} (0644 postgres):`,
      ...conf.trimEnd().split('\n').map((l) => `  | ${l}`),
    ],
  };
}

/** pg_hba.conf through `edit`, written only when it changes; a reload if the cluster runs. */
export async function editHba(ctx: Context, id: pg.ClusterId, systemd: boolean, edit: (text: string) => string): Promise<void> {
  const hba = `${pg.confDirOf(id)}/pg_hba.conf`;
  const text = await ctx.fs.readText(hba);
  if (text === undefined) throw new Error(`${hba} is missing`);
  const next = edit(text);
  if (next !== text) {
    const st = await ctx.fs.stat(hba);
    await ctx.fs.writeFileAtomic(hba, next, { mode: st ? st.mode & 0o777 : 0o640, owner: st ? { uid: st.uid, gid: st.gid } : undefined });
  }
  const c = (await readClusters(ctx.runner)).find((x) => x.version === id.version && x.name === id.name);
  if (c?.running) await ctx.runner.run(pg.controlCluster(id, 'reload', systemd));
}

/**
 * The TLS rules into pg_hba.conf: into pgmam's saved copy while the cluster is closed (hand-over puts
 * them in place), else into pg_hba.conf itself, then a reload if it runs. Idempotent.
 */
export function tlsRulesStep(id: pg.ClusterId, stateDir: string, required: boolean, systemd: boolean): Step {
  const hba = `${pg.confDirOf(id)}/pg_hba.conf`;
  const saved = savedHbaPath(stateDir, id.name);
  return {
    id: 'require-tls',
    title: required ? `refuse TCP connections without TLS (${hba})` : `refuse replication connections without TLS (${hba})`,
    effect: 'write',
    run: async (ctx) => {
      const savedRules = await ctx.fs.readText(saved);
      if (savedRules !== undefined) return ctx.fs.writeFileAtomic(saved, withTlsRules(savedRules, required), { mode: 0o600 });
      await editHba(ctx, id, systemd, (t) => withTlsRules(t, required));
    },
    undo: { title: `take pgmam's TLS rules out of ${hba} again`, run: (ctx) => editHba(ctx, id, systemd, withoutTlsRules) },
    show: [`first in ${hba} (or in pgmam's saved copy while the cluster is closed): ${required ? 'hostnossl all all all reject, ' : ''}hostnossl replication all all reject`, '(reload if running)'],
  };
}
