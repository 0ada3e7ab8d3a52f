// `pgmam export <app>… | --all`: logical (pg_dump) or physical (pg_basebackup) copies outside the
// pgBackRest repository — never instead of it — with SHA256SUMS, meta.json, tiers and retention;
// `pgmam export --verify DIR` checks one.
import { absolutePath, flag, type CliBatch } from '../../plan/cli-spec.js';
import { notManaged } from '../../guards/cluster.js';
import { z } from 'zod';
import { nameSchema, namesArg } from '../../names.js';
import type { Context } from '../../context.js';
import { ExitCode, PgmamError, UsageError } from '../../errors.js';
import { runsAsRoot } from '../../guards/host.js';
import type { HostCluster } from '../../pg/clusters.js';
import * as pg from '../../pg/commands.js';
import { batchTargets, runBatch, runFlagsSchema, type CommandModule, type PlanBody, type PlanEnv, type Recovery } from '../../plan/command.js';
import { fail, pass, type Guard, type Step } from '../../plan/types.js';
import type { Journal } from '../../state/journal.js';
import type { ManagedCluster } from '../../state/store.js';
import { managedClusters, postgresOwner, readClusters } from '../../host/facts.js';
import { verifyExport, type ExportFormat } from '../../export/manifest.js';
import { baseBackupStreamed, fileGrowth } from '../../steps/measures.js';

export type { ExportFormat };

export type Tier = 'daily' | 'weekly' | 'monthly';

export interface ExportOptions {
  names: string[];
  all: boolean;
  to: string | undefined;
  format: ExportFormat;
  keepOnError: boolean;
  dryRun: boolean;
  json: boolean;
}

/** The 1st of the month is monthly, a Saturday weekly, any other day daily (UTC). */
export function tierOf(d: Date): Tier {
  if (d.getUTCDate() === 1) return 'monthly';
  if (d.getUTCDay() === 6) return 'weekly';
  return 'daily';
}

export const exportStamp = (d: Date) => d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
const DIR_NAME = /^(\d{8})T(\d{6})Z-(daily|weekly|monthly)(-\d+)?$/;

/** Export directories of one app past their tier's keep time (the newest is never one of them). */
export function expiredExports(names: string[], now: Date, keep: Record<Tier, number>, newest: string): string[] {
  return names.filter((n) => {
    const m = DIR_NAME.exec(n);
    if (!m || n === newest) return false;
    const [, d, t, tier] = m;
    const at = Date.parse(`${d!.slice(0, 4)}-${d!.slice(4, 6)}-${d!.slice(6, 8)}T${t!.slice(0, 2)}:${t!.slice(2, 4)}:${t!.slice(4, 6)}Z`);
    return (now.getTime() - at) / 1000 > keep[tier as Tier];
  });
}

export interface ExportResult {
  cluster: string;
  result: 'exported' | 'failed';
  dir?: string;
  removed?: string[];
  reason?: string;
  durationMs?: number;
}

export const exportTargetOptionsSchema = runFlagsSchema.extend({
  name: nameSchema,
  to: z.string().startsWith('/'),
  format: z.enum(['dump', 'basebackup']),
});
export type ExportTargetOptions = z.infer<typeof exportTargetOptionsSchema>;

export interface ExportFacts {
  uid: number;
  now: Date;
  record: ManagedCluster | undefined;
  cluster: HostCluster | undefined;
  owner: { uid: number; gid: number } | undefined;
  databases: Array<{ name: string; size: number }>;
  /** This run's own directory: never one that exists (a failure removes only what this run wrote). */
  dir: string;
  existing: string[];
  freeBytes: number | undefined;
}

export async function gatherExport(ctx: Context, o: ExportTargetOptions): Promise<ExportFacts> {
  const runner = ctx.runner;
  const [managed, clusters, owner] = await Promise.all([managedClusters(ctx), readClusters(runner), postgresOwner(ctx.fs)]);
  const record = managed.records.find((r) => r.name === o.name);
  const cluster = record && clusters.find((c) => c.name === record.name && c.version === record.version);
  const now = ctx.clock.now();
  const base = `${exportStamp(now)}-${tierOf(now)}`;
  const existing = await ctx.fs.readdir(`${o.to}/${o.name}`);
  let name = base;
  for (let n = 2; existing.includes(name); n++) name = `${base}-${n}`;
  const f: ExportFacts = { uid: ctx.host.uid, now, record, cluster, owner, databases: [], dir: `${o.to}/${o.name}/${name}`, existing, freeBytes: undefined };
  if (!record || !cluster?.running || ctx.host.uid !== 0) return f;
  const t = { version: record.version, port: cluster.port };
  f.databases = (await runner.run(pg.psqlValue(t, "select string_agg(datname || ':' || pg_database_size(datname), ',' order by datname) from pg_database where datallowconn and not datistemplate"))).stdout
    .trim()
    .split(',')
    .filter(Boolean)
    .map((x) => {
      const i = x.lastIndexOf(':');
      return { name: x.slice(0, i), size: Number(x.slice(i + 1)) };
    });
  f.freeBytes = await ctx.fs.freeBytes(o.to).catch(() => undefined);
  return f;
}

export function exportGuards(f: ExportFacts, o: ExportTargetOptions, env: Pick<PlanEnv, 'config'>): Guard[] {
  const label = f.record?.cluster ?? o.name;
  // A compressed dump is smaller than the data; the whole size is the safe estimate.
  const total = f.databases.reduce((s, d) => s + d.size, 0);
  return [
    runsAsRoot(f.uid, 'export clusters'),
    { id: 'cluster-is-managed', check: () => (f.uid !== 0 || f.record ? pass : notManaged(o.name)) },
    { id: 'cluster-is-running', check: () => (!f.record || f.cluster?.running ? pass : fail(`${label} is ${f.cluster ? 'down' : 'missing'}`)) },
    {
      id: 'enough-disk',
      check: () =>
        f.freeBytes !== undefined && f.freeBytes - total < env.config['min-free-mb'] * 1048576
          ? fail(`not enough free disk in ${o.to}: ${Math.floor(f.freeBytes / 1048576)} MB free, about ${Math.ceil(total / 1048576)} MB needed`)
          : pass,
    },
  ];
}

export function planExport(f: ExportFacts, o: ExportTargetOptions, env: PlanEnv): PlanBody {
  const rec = f.record;
  const t = { version: rec?.version ?? '?', port: f.cluster?.port ?? 0 };
  const label = rec?.cluster ?? o.name;
  const dir = f.dir;
  const owner = f.owner ?? { uid: 0, gid: 0 };
  const tier = tierOf(f.now);
  const keep = { daily: env.config['export-keep-daily'], weekly: env.config['export-keep-weekly'], monthly: env.config['export-keep-monthly'] };
  const files = o.format === 'dump' ? ['globals.sql', ...f.databases.map((d) => `${d.name}.dump`)] : [];
  const steps: Step[] = [
    {
      id: 'create-export-dir',
      title: `create ${dir}`,
      effect: 'write',
      run: async (c) => {
        await c.fs.mkdirp(`${o.to}/${o.name}`, { mode: 0o755 });
        await c.fs.mkdirp(dir, { mode: 0o750, owner });
      },
      show: [`install -d -o postgres -m 0750 ${dir}`],
      // Only this run's directory goes; older good exports are never touched on failure.
      undo: { title: `remove the unfinished ${dir}`, run: (c) => c.fs.rm(dir, { recursive: true }), show: [`rm -rf ${dir}`] },
    },
    ...(o.format === 'dump'
      ? [
          { id: 'dump-globals', title: 'dump roles and tablespaces (pg_dumpall --globals-only)', effect: 'write' as const, run: pg.dumpGlobals(t, `${dir}/globals.sql`) },
          // A compressed dump has no size to reach: the line shows what is written and how fast.
          ...f.databases.map((d): Step => ({ id: 'dump-database', title: `dump database ${d.name} (pg_dump -Fc)`, effect: 'write', run: pg.dumpDatabase(t, d.name, `${dir}/${d.name}.dump`), progress: fileGrowth(`dump ${d.name} of ${label}`, `${dir}/${d.name}.dump`, undefined) })),
        ]
      : [{ id: 'base-backup', title: 'take a base backup (pg_basebackup -Ft -z, WAL streamed)', effect: 'write' as const, run: pg.baseBackup(t, dir), progress: baseBackupStreamed(`base backup of ${label}`, t) }]),
    {
      id: 'write-manifest',
      title: 'write meta.json and SHA256SUMS',
      effect: 'write',
      run: async (c) => {
        const all = [...(o.format === 'dump' ? files : await c.fs.readdir(dir)), 'meta.json'];
        const meta = {
          format: o.format,
          cluster: rec?.cluster,
          pgVersion: rec?.version,
          tier,
          createdAt: f.now.toISOString(),
          databases: f.databases.map((d) => ({ name: d.name, size: d.size, ...(o.format === 'dump' ? { file: `${d.name}.dump` } : {}) })),
          durationMs: Math.round(c.clock.now().getTime() - f.now.getTime()),
          pgmamVersion: c.version,
        };
        await c.fs.writeFileAtomic(`${dir}/meta.json`, `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o640, owner });
        const sums = await Promise.all(all.sort().map(async (x) => `${await c.fs.sha256(`${dir}/${x}`)}  ${x}`));
        await c.fs.writeFileAtomic(`${dir}/SHA256SUMS`, `${sums.join('\n')}\n`, { mode: 0o640, owner });
      },
    },
    {
      id: 'remove-expired-exports',
      title: `remove ${o.name}'s exports older than their tier's keep time`,
      effect: 'destroy',
      run: async (c) => {
        for (const r of expiredExports(await c.fs.readdir(`${o.to}/${o.name}`), f.now, keep, dir.split('/').at(-1)!)) await c.fs.rm(`${o.to}/${o.name}/${r}`, { recursive: true });
      },
      show: [`  daily ${keep.daily} s, weekly ${keep.weekly} s, monthly ${keep.monthly} s; never the newest`],
    },
  ];
  // The expired ones, for the report (the step removes what is expired when it runs).
  return { target: rec?.cluster ?? o.name, steps, journal: { rerun: `pgmam export ${o.name} --to ${o.to} --format ${o.format}`, data: { dir } satisfies ExportJournal }, quiet: true };
}

/** What an export records: its own directory, removed when the run did not finish (nothing else was written). */
export const exportJournalSchema = z.object({ dir: z.string() });
export type ExportJournal = z.infer<typeof exportJournalSchema>;

export async function recoverExport(_ctx: Context, _j: Journal, d: ExportJournal): Promise<Recovery> {
  return { way: 'rolled-back', steps: [{ id: 'remove-unfinished-export', title: `remove the unfinished ${d.dir}`, effect: 'destroy', run: (c) => c.fs.rm(d.dir, { recursive: true }), show: [`rm -rf ${d.dir}`] }] };
}

/** One cluster's export: the module `export` runs once per target through runBatch. */
export const exportTargetCommand: CommandModule<ExportTargetOptions, ExportFacts, ExportJournal> = {
  spec: {
    name: 'export',
    summary: 'dumps (pg_dump) or base backups (pg_basebackup) outside the pgBackRest repository, with SHA256SUMS; --verify DIR checks one',
    options: exportTargetOptionsSchema,
    examples: [],
    target: (o) => o.name,
    destructive: false,
    waitsForLock: true,
    journal: exportJournalSchema,
  },
  gather: gatherExport,
  guards: exportGuards,
  plan: planExport,
  recover: recoverExport,
  report: async () => undefined,
};

export async function runExport(ctx: Context, o: ExportOptions): Promise<void> {
  const { names, managed } = await batchTargets(ctx, 'export', o, 'export clusters');
  const to = o.to ?? ctx.config['export-dir'];
  const labelOf = (name: string) => managed.find((r) => r.name === name)?.cluster ?? name;
  const runs = names.map((name) => ({ name, to, format: o.format, json: o.json, dryRun: o.dryRun, yes: true, keepOnError: o.keepOnError }));
  await runBatch(ctx, exportTargetCommand, runs, {
    report: async (batch) => {
      if (o.dryRun) {
        const lines = batch.filter((b) => b.result !== 'done').map((b) => `${labelOf(b.target)}: cannot export: ${reasonOf(b.lines)}`);
        if (lines.length) ctx.io.out(`${lines.join('\n')}\n`);
        return;
      }
      const results: ExportResult[] = batch.map((b) => {
        const f = b.run?.facts;
        if (b.result === 'done' && f) {
          const expired = expiredExports(f.existing, f.now, { daily: ctx.config['export-keep-daily'], weekly: ctx.config['export-keep-weekly'], monthly: ctx.config['export-keep-monthly'] }, f.dir.split('/').at(-1)!);
          return { cluster: labelOf(b.target), result: 'exported', dir: f.dir, removed: expired };
        }
        return { cluster: labelOf(b.target), result: 'failed', reason: reasonOf(b.lines) };
      });
      ctx.io.out(
        o.json
          ? `${JSON.stringify(results, null, 2)}\n`
          : `${results.map((r) => (r.result === 'exported' ? `${r.cluster}: exported to ${r.dir}${r.removed?.length ? `; removed ${r.removed.join(', ')}` : ''}` : `${r.cluster}: failed: ${r.reason}`)).join('\n')}\n`,
      );
    },
  });
}

/** A refusal's or failure's first line, without the `pgmam: … refused:` prefix. */
const reasonOf = (lines: readonly string[]) => (lines[0] ?? '').replace(/^pgmam: [a-z ]+ refused: |^pgmam: /, '');

export async function runVerifyExport(ctx: Context, o: { dir: string; json: boolean }): Promise<void> {
  const problems = await verifyExport(ctx, o.dir);
  ctx.io.out(o.json ? `${JSON.stringify({ dir: o.dir, ok: !problems.length, problems })}\n` : problems.length ? '' : `${o.dir}: every file verified\n`);
  if (problems.length) throw new PgmamError(`export ${o.dir} is damaged`, ExitCode.refused, problems.map((p) => `pgmam: export --verify refused: ${p}`));
}

/** `pgmam export <app>… | --all`, or `export --verify DIR`. */
export const exportBatch: CliBatch<ExportOptions & { verify: string | undefined }> = {
  name: 'export',
  summary: 'dumps (pg_dump) or base backups (pg_basebackup) outside the pgBackRest repository, with SHA256SUMS; --verify DIR checks one',
  examples: ['pgmam export app1', 'pgmam export --all --format basebackup --to /mnt/exports', 'pgmam export --verify /var/backups/pgmam/app1/20261122T064500Z-daily'],
  cli: {
    args: [{ syntax: '[apps...]', key: 'names', help: 'managed clusters (or --all)' }],
    flags: [
      { flags: '--all', help: 'every cluster pgmam manages' },
      { flags: '--to <dir>', help: 'where exports go (default: export-dir, /var/backups/pgmam)' },
      { flags: '--format <format>', help: 'dump: pg_dump -Fc per database + globals; basebackup: pg_basebackup -Ft -z', choices: ['dump', 'basebackup'], default: 'dump' },
      { flags: '--verify <dir>', help: "check an export's SHA256SUMS (and pg_verifybackup for a base backup)" },
    ],
    input: z
      .object({ names: namesArg(), all: flag, to: absolutePath('--to'), format: z.enum(['dump', 'basebackup']).default('dump'), verify: z.string().optional() })
      .transform((o) => {
        if (o.verify !== undefined) {
          if (o.names.length || o.all) throw new UsageError('export --verify takes only the export directory');
          return { ...o, verify: o.verify.replace(/\/+$/, '') || '/' };
        }
        if (!o.names.length && !o.all) throw new UsageError('export needs cluster names or --all');
        return o;
      }),
    keepOnError: true,
  },
  run: (ctx, o) => (o.verify !== undefined ? runVerifyExport(ctx, { dir: o.verify, json: o.json }) : runExport(ctx, o)),
};
