// `pgmam conninfo <app> [--db D] [--role R]`: how to connect to an app, as a libpq URI. Without a
// role, the local socket as the postgres OS user (peer); with one, TCP with TLS verified against
// pgmam's CA where the cluster has pgmam's TLS. Never a password: where pgmam keeps one, it says where.
import { z } from 'zod';
import type { Context } from '../../context.js';
import { hostFqdn, managedApp, resolvingApp } from '../../host/facts.js';
import { readClusterTls } from '../../host/tls.js';
import { nameArg, nameSchema } from '../../names.js';
import type { HostCluster } from '../../pg/clusters.js';
import * as pg from '../../pg/commands.js';
import { runFlagsSchema, type CommandModule } from '../../plan/command.js';
import { required } from '../../plan/types.js';
import { caCertPath } from '../../steps/tls.js';
import { conninfoOf } from '../../pg/conninfo.js';
import type { ManagedCluster } from '../../state/store.js';
import { clusterIsManaged } from '../../guards/cluster.js';

/** A database or role name as PostgreSQL takes it (identifiers pgmam accepts on its command line). */
const PG_IDENT = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;

export const conninfoOptionsSchema = runFlagsSchema.extend({ name: nameSchema, db: z.string().optional(), role: z.string().optional() });
export type ConninfoOptions = z.infer<typeof conninfoOptionsSchema>;

export interface ConninfoFacts {
  record: ManagedCluster | undefined;
  cluster: HostCluster | undefined;
  tls: boolean;
  /** listen_addresses as the cluster reads it (postgres -C). */
  listen: string | undefined;
  hostName: string;
  fqdn: string | undefined;
  caFile: string;
  /** pgmam's password file for this role, when there is one (its path only). */
  passwordFile: string | undefined;
}

export async function gatherConninfo(ctx: Context, o: ConninfoOptions): Promise<ConninfoFacts> {
  const { record, cluster } = await managedApp(ctx, o.name);
  const f: ConninfoFacts = { record, cluster, tls: false, listen: undefined, hostName: ctx.host.name, fqdn: undefined, caFile: caCertPath(ctx.config['tls-dir']), passwordFile: undefined };
  if (!record || !cluster?.dataDir || !o.role) return f;
  const id = { version: record.version, name: record.name };
  const pwFile = `${ctx.config['secrets-dir']}/${record.name}-${o.role}.pw`;
  const [tls, listen, fqdn, hasPw] = await Promise.all([
    readClusterTls(ctx, record, ctx.clock.now()),
    ctx.runner.run(pg.showSetting(id, cluster.dataDir, 'listen_addresses'), { check: false }),
    hostFqdn(ctx.runner, ctx.host.name),
    ctx.fs.exists(pwFile),
  ]);
  return { ...f, tls: tls.enabled, listen: listen.exitCode === 0 ? listen.stdout.trim() : undefined, fqdn, passwordFile: hasPw ? pwFile : undefined };
}

async function reportConninfo(ctx: Context, o: ConninfoOptions, f: ConninfoFacts): Promise<void> {
  const c = conninfoOf({ port: required(f.cluster, 'the cluster').port, listen: f.listen, host: f.fqdn ?? f.hostName, tls: f.tls, caFile: f.caFile, passwordFile: f.passwordFile }, o);
  if (o.json) return ctx.io.out(`${JSON.stringify(c, null, 2)}\n`);
  ctx.io.out(`${c.uri}\n`);
  // Said on stderr: stdout stays the URI alone, for scripts.
  if (!o.role) ctx.io.err(`pgmam: as the postgres OS user, e.g. runuser -u postgres -- psql '${c.uri}'\n`);
  else if (c.passwordFile) ctx.io.err(`pgmam: the password of ${o.role} is in ${c.passwordFile} (root only); libpq reads one from PGPASSFILE or ~/.pgpass\n`);
  if (o.role && c.host === 'localhost' && f.listen !== undefined) ctx.io.err(`pgmam: ${f.record?.cluster} listens on ${f.listen || 'no TCP address'} only: other hosts cannot connect (listen_addresses)\n`);
}

export const conninfoCommand: CommandModule<ConninfoOptions, ConninfoFacts> = {
  spec: {
    name: 'conninfo',
    summary: 'how to connect to an app: a libpq URI (TLS verified against pgmam\'s CA where the cluster has it); never a password',
    cli: {
      args: [{ syntax: '<app>', key: 'name', help: 'managed cluster' }],
      flags: [
        { flags: '--db <name>', help: 'database (default postgres)' },
        { flags: '--role <name>', help: 'a login role: TCP with TLS (default: the local socket as the postgres OS user)' },
      ],
      input: z.object({
        name: nameArg('cluster name'),
        db: z.string().regex(PG_IDENT, 'database name: letters, digits, _ and $ (at most 63), starting with a letter or _').optional(),
        role: z.string().regex(PG_IDENT, 'role name: letters, digits, _ and $ (at most 63), starting with a letter or _').optional(),
      }),
      prepare: resolvingApp,
    },
    options: conninfoOptionsSchema,
    examples: ['pgmam conninfo app1', 'pgmam conninfo app1 --db shop --role shop_owner', 'psql "$(pgmam conninfo app1 --db shop --role shop_owner)"'],
    destructive: false,
  },
  gather: gatherConninfo,
  guards: (f, o) => [clusterIsManaged(o.name, f.record, f.cluster)],
  plan: (f, o) => ({ target: f.record?.cluster ?? o.name, steps: [] }),
  report: reportConninfo,
};
