// What pgmam's TLS looks like on this host, read-only: its CA and each managed cluster's server
// certificate (subject, names, serial, expiry), and whether a cluster has pgmam's TLS at all.
import type { Context } from '../context.js';
import { readCertificate, type CertInfo } from '../tls/names.js';
import { caCertPath, serverCertPath, TLS_CONF_NAME } from '../steps/tls.js';
import * as pg from '../pg/commands.js';
import type { ManagedCluster } from '../state/store.js';

export interface ClusterTls {
  cluster: string;
  name: string;
  /** pgmam's conf.d file for TLS is there (tls enable, or created with it). */
  enabled: boolean;
  certFile: string;
  certificate: CertInfo | null;
  /** Seconds until it expires (negative: expired); null without a certificate. */
  expiresInSeconds: number | null;
}

export async function readCa(ctx: Pick<Context, 'fs' | 'config'>): Promise<{ file: string; certificate: CertInfo | null }> {
  const file = caCertPath(ctx.config['tls-dir']);
  const pem = await ctx.fs.readText(file);
  return { file, certificate: pem ? (readCertificate(pem) ?? null) : null };
}

export async function readClusterTls(ctx: Pick<Context, 'fs' | 'config'>, r: Pick<ManagedCluster, 'cluster' | 'name' | 'version'>, now: Date): Promise<ClusterTls> {
  const id = { version: r.version, name: r.name };
  const certFile = serverCertPath(ctx.config['tls-dir'], id);
  const [pem, enabled] = await Promise.all([ctx.fs.readText(certFile), ctx.fs.exists(`${pg.confDirOf(id)}/conf.d/${TLS_CONF_NAME}`)]);
  const certificate = pem ? (readCertificate(pem) ?? null) : null;
  return { cluster: r.cluster, name: r.name, enabled, certFile, certificate, expiresInSeconds: certificate ? Math.round((Date.parse(certificate.notAfter) - now.getTime()) / 1000) : null };
}
