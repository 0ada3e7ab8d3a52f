// `pgmam show <app> [--json]`: one app in full — where it is (port, data directory, configuration,
// log), what it holds (databases and their sizes), how it is backed up (stanza, each repository's
// newest backup and recovery window), what pgmam keeps of it (preserved directories), its branches
// and replicas, its TLS certificate and its last restore drill. Reads only.
import { humanTime } from '../../plan/render.js';
import { z } from 'zod';
import type { Context } from '../../context.js';
import { clusterIsManaged } from '../../guards/cluster.js';
import { resolvingApp } from '../../host/facts.js';
import { buildList, gatherListFacts, type ListEntry } from '../../host/inventory.js';
import { readClusterTls } from '../../host/tls.js';
import { nameArg, nameSchema } from '../../names.js';
import * as pg from '../../pg/commands.js';
import { runFlagsSchema, type CommandModule } from '../../plan/command.js';
import { required } from '../../plan/types.js';

export const showOptionsSchema = runFlagsSchema.extend({ name: nameSchema });
export type ShowOptions = z.infer<typeof showOptionsSchema>;

export interface AppDetails extends ListEntry {
  logFile: string | null;
  configDir: string | null;
  startAtBoot: string | null;
  /** Each database a user can connect to, with its size (null: the cluster is down). */
  databases: Array<{ name: string; bytes: number }> | null;
  branches: string[];
  replicas: string[];
  tls: { enabled: boolean; notAfter: string | null };
}

export interface ShowFacts {
  entry: ListEntry | undefined;
  details: AppDetails | undefined;
}

const DATABASES_SQL = "select string_agg(datname || ':' || pg_database_size(datname), ',' order by datname) from pg_database where datallowconn";

export async function gatherShow(ctx: Context, o: ShowOptions): Promise<ShowFacts> {
  const facts = await gatherListFacts(ctx);
  const entries = buildList(facts);
  const entry = entries.find((e) => e.name === o.name && e.managed);
  const cluster = facts.clusters.find((c) => c.name === o.name && c.version === entry?.version);
  if (!entry) return { entry, details: undefined };
  const rec = facts.managed.find((r) => r.name === o.name);
  let databases: AppDetails['databases'] = null;
  if (entry.status === 'online' && entry.port !== null) {
    const r = await ctx.runner.run(pg.psqlValue({ version: entry.version, port: entry.port }, DATABASES_SQL), { check: false });
    if (r.exitCode === 0)
      databases = r.stdout
        .trim()
        .split(',')
        .filter(Boolean)
        .map((x) => {
          const i = x.lastIndexOf(':');
          return { name: x.slice(0, i), bytes: Number(x.slice(i + 1)) };
        });
  }
  const tls = rec ? await readClusterTls(ctx, rec, ctx.clock.now()) : undefined;
  const children = facts.managed.filter((r) => r.parent === o.name);
  return {
    entry,
    details: {
      ...entry,
      logFile: cluster?.logFile ?? null,
      configDir: cluster?.configDir ?? null,
      startAtBoot: cluster?.startConf ?? null,
      databases,
      branches: children.filter((r) => r.role === 'branch').map((r) => r.cluster),
      replicas: children.filter((r) => r.role === 'replica').map((r) => r.cluster),
      tls: { enabled: tls?.enabled ?? false, notAfter: tls?.certificate?.notAfter ?? null },
    },
  };
}

const t = humanTime;
const size = (b: number) => (b < 1024 * 1024 ? `${Math.round(b / 1024)} kB` : b < 1024 ** 3 ? `${(b / 1024 / 1024).toFixed(1)} MB` : `${(b / 1024 ** 3).toFixed(2)} GB`);

export function renderDetails(d: AppDetails): string {
  const rows: Array<[string, string]> = [
    ['cluster', `${d.cluster} (${d.role}${d.parent ? ` of ${d.parent}` : ''})`],
    ['status', `${d.status}${d.port !== null ? `, port ${d.port}` : ''}${d.interrupted ? `; ${d.interrupted.status === 'failed' ? 'failed' : 'interrupted'} ${d.interrupted.command} at ${d.interrupted.step} (run: ${d.interrupted.rerun})` : ''}`],
    ['start at boot', d.startAtBoot === 'auto' ? 'yes' : `no (start.conf ${d.startAtBoot ?? '?'})`],
    ['data directory', d.dataDir ?? '-'],
    ['configuration', d.configDir ?? '-'],
    ['server log', d.logFile ?? '-'],
    ['databases', d.databases === null ? '(the cluster is down)' : d.databases.map((x) => `${x.name} ${size(x.bytes)}`).join(', ') || '-'],
    ['stanza', d.stanza ?? '-'],
    ...d.repos.map((r): [string, string] => [
      `repository ${r.name}`,
      r.suspended
        ? `suspended since ${t(r.suspended.at)}: ${r.suspended.reason}`
        : `${r.lastBackup ? `last backup ${r.lastBackup.type} ${r.lastBackup.label} (${t(r.lastBackup.stoppedAt)})` : 'no backup'}; window ${r.recoveryWindow ? `${t(r.recoveryWindow.from)} .. ${t(r.recoveryWindow.to)}${r.recoveryWindow.excluded.length ? ` except ${r.recoveryWindow.excluded.map((x) => `${t(x.from)} .. ${t(x.to)}`).join(', ')} (abandoned timelines)` : ''}` : '-'}`,
    ]),
    ['preserved', d.preserved.length ? d.preserved.map((p) => `${p.path} (${p.reason}, ${t(p.createdAt)})`).join('; ') : '-'],
    ['branches', d.branches.join(', ') || '-'],
    ['replicas', d.replicas.join(', ') || '-'],
    ['TLS', d.tls.enabled ? `on, certificate until ${d.tls.notAfter ? t(d.tls.notAfter) : '?'}` : 'off'],
    ['last drill', d.lastDrill ? `${d.lastDrill.ok ? 'passed' : 'FAILED'} ${t(d.lastDrill.at)}${d.lastDrill.ok ? `, RTO ${d.lastDrill.rtoSeconds ?? '?'} s, RPO ${d.lastDrill.rpoSeconds ?? '?'} s` : ''}` : 'none yet (pgmam drill)'],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  return `${rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n')}\n`;
}

export const showCommand: CommandModule<ShowOptions, ShowFacts> = {
  spec: {
    name: 'show',
    summary: 'one app in full: port, directories, log, databases and sizes, stanza and backups per repository, preserved directories, branches, replicas, TLS, last drill',
    cli: {
      args: [{ syntax: '<app>', key: 'name', help: 'managed cluster' }],
      input: z.object({ name: nameArg('cluster name') }),
      prepare: resolvingApp,
    },
    options: showOptionsSchema,
    examples: ['pgmam show app1', 'pgmam show app1 --json'],
    destructive: false,
  },
  gather: gatherShow,
  guards: (f, o) => [clusterIsManaged(o.name, f.entry, f.entry && f.entry.status !== 'missing' ? f.entry : undefined)],
  plan: (f, o) => ({ target: f.entry?.cluster ?? o.name, steps: [] }),
  report: async (ctx, o, f) => {
    const d = required(f.details, 'the app');
    ctx.io.out(o.json ? `${JSON.stringify(d, null, 2)}\n` : renderDetails(d));
  },
};
