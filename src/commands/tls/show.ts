// `pgmam tls show [--json]`: pgmam's CA and each managed cluster's server certificate — subject,
// names, serial, expiry. Read-only.
import { z } from 'zod';
import type { Context } from '../../context.js';
import { managedClusters } from '../../host/facts.js';
import { readCa, readClusterTls, type ClusterTls } from '../../host/tls.js';
import { runFlagsSchema, type CommandModule } from '../../plan/command.js';
import { renderTable } from '../../plan/render.js';
import type { CertInfo } from '../../tls/names.js';

export const tlsShowOptionsSchema = runFlagsSchema;
export type TlsShowOptions = z.infer<typeof tlsShowOptionsSchema>;

export interface TlsShowFacts {
  ca: { file: string; certificate: CertInfo | null };
  clusters: ClusterTls[];
}

const days = (s: number | null) => (s === null ? '-' : `${Math.floor(s / 86400)} d`);

export function renderTlsTable(f: TlsShowFacts): string {
  const ca = f.ca.certificate ? `CA ${f.ca.file}: ${f.ca.certificate.subject}, expires ${f.ca.certificate.notAfter}\n` : `no CA yet (${f.ca.file}): the first cluster pgmam creates makes it\n`;
  const rows = f.clusters.map((c) => [c.cluster, c.enabled ? 'on' : 'off', c.certificate?.subject ?? '-', c.certificate ? c.certificate.sans.join(', ') : '-', c.certificate?.notAfter.slice(0, 10) ?? '-', days(c.expiresInSeconds), c.certificate?.serial ?? '-']);
  return `${ca}${renderTable(['CLUSTER', 'TLS', 'SUBJECT', 'NAMES', 'EXPIRES', 'LEFT', 'SERIAL'], rows)}`;
}

export const tlsShowCommand: CommandModule<TlsShowOptions, TlsShowFacts> = {
  spec: {
    name: 'tls show',
    summary: "pgmam's CA and each managed cluster's server certificate: subject, names, expiry",
    cli: { input: z.object({}) },
    options: tlsShowOptionsSchema,
    examples: ['pgmam tls show', 'pgmam tls show --json'],
    destructive: false,
  },
  gather: async (ctx: Context) => {
    const now = ctx.clock.now();
    const managed = (await managedClusters(ctx)).records;
    return { ca: await readCa(ctx), clusters: await Promise.all(managed.map((r) => readClusterTls(ctx, r, now))) };
  },
  guards: () => [],
  plan: () => ({ target: 'tls', steps: [] }),
  report: async (ctx, o, f) => ctx.io.out(o.json ? `${JSON.stringify(f, null, 2)}\n` : renderTlsTable(f)),
};
