// `pgmam export <app>… | --all`: logical (pg_dump) or physical (pg_basebackup) copies outside the
// pgBackRest repository — never instead of it — with SHA256SUMS, meta.json, tiers and retention;
// `pgmam export --verify DIR` checks one.
import type { Context } from '../context.js';
import { ExitCode, PgmamError, RefusedError } from '../errors.js';
import * as pg from '../pg/commands.js';
import { ReadOnlyRunner } from '../runner/wrappers.js';
import { renderArgv, effectiveArgv } from '../runner/types.js';
import { managedClusters, postgresOwner, readClusters } from '../host/facts.js';
import { verifyExport, type ExportFormat } from '../export/manifest.js';

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

export async function runExport(ctx: Context, o: ExportOptions): Promise<void> {
  if (ctx.host.uid !== 0) throw new RefusedError('export', [{ id: 'runs-as-root', reason: `pgmam must run as root to export clusters (running as uid ${ctx.host.uid})`, hint: 'run it with sudo' }]);
  const runner = new ReadOnlyRunner(ctx.runner);
  const [managed, clusters, owner] = await Promise.all([managedClusters(ctx), readClusters(runner), postgresOwner(ctx.fs)]);
  const unknown = o.names.filter((n) => !managed.records.some((r) => r.name === n));
  if (unknown.length) throw new RefusedError('export', unknown.map((n) => ({ id: 'cluster-is-managed', reason: `${n} is not managed by pgmam`, hint: 'see pgmam list' })));
  const records = o.all ? managed.records : managed.records.filter((r) => o.names.includes(r.name));
  const to = o.to ?? ctx.config['export-dir'];
  const now = ctx.clock.now();
  const tier = tierOf(now);
  const keep = { daily: ctx.config['export-keep-daily'], weekly: ctx.config['export-keep-weekly'], monthly: ctx.config['export-keep-monthly'] };
  const results: ExportResult[] = [];

  for (const rec of records) {
    const cluster = clusters.find((c) => c.name === rec.name && c.version === rec.version);
    const t = { version: rec.version, port: cluster?.port ?? 0 };
    // Never reuse a directory: a failure must only ever remove what this run wrote.
    let name = `${exportStamp(now)}-${tier}`;
    for (let n = 2; await ctx.fs.exists(`${to}/${rec.name}/${name}`); n++) name = `${exportStamp(now)}-${tier}-${n}`;
    const dir = `${to}/${rec.name}/${name}`;
    if (!cluster?.running) {
      results.push({ cluster: rec.cluster, result: 'failed', reason: `${rec.cluster} is ${cluster ? 'down' : 'missing'}` });
      continue;
    }
    const dbs = (await runner.run(pg.psqlValue(t, "select string_agg(datname || ':' || pg_database_size(datname), ',' order by datname) from pg_database where datallowconn and not datistemplate"))).stdout
      .trim()
      .split(',')
      .filter(Boolean)
      .map((x) => {
        const i = x.lastIndexOf(':');
        return { name: x.slice(0, i), size: Number(x.slice(i + 1)) };
      });
    const total = dbs.reduce((s, d) => s + d.size, 0);
    if (o.dryRun) {
      const cmds = o.format === 'dump' ? [pg.dumpGlobals(t, `${dir}/globals.sql`), ...dbs.map((d) => pg.dumpDatabase(t, d.name, `${dir}/${d.name}.dump`))] : [pg.baseBackup(t, dir)];
      ctx.io.out(`${rec.cluster} → ${dir}\n${cmds.map((c) => `     $ ${renderArgv(effectiveArgv(c, ctx.host.uid))}`).join('\n')}\n     then SHA256SUMS, meta.json; remove ${tier} exports older than their keep time\n`);
      continue;
    }
    const free = await ctx.fs.freeBytes(to).catch(() => undefined);
    // A compressed dump is smaller than the data; the whole size is the safe estimate.
    if (free !== undefined && free - total < ctx.config['min-free-mb'] * 1048576) {
      results.push({ cluster: rec.cluster, result: 'failed', reason: `not enough free disk in ${to}: ${Math.floor(free / 1048576)} MB free, about ${Math.ceil(total / 1048576)} MB needed` });
      continue;
    }
    const t0 = performance.now();
    try {
      await ctx.fs.mkdirp(`${to}/${rec.name}`, { mode: 0o755 });
      await ctx.fs.mkdirp(dir, { mode: 0o750, owner });
      const files: string[] = [];
      if (o.format === 'dump') {
        await ctx.runner.run(pg.dumpGlobals(t, `${dir}/globals.sql`));
        files.push('globals.sql');
        for (const d of dbs) {
          await ctx.runner.run(pg.dumpDatabase(t, d.name, `${dir}/${d.name}.dump`));
          files.push(`${d.name}.dump`);
        }
      } else {
        await ctx.runner.run(pg.baseBackup(t, dir));
        files.push(...(await ctx.fs.readdir(dir)));
      }
      const meta = {
        format: o.format,
        cluster: rec.cluster,
        pgVersion: rec.version,
        tier,
        createdAt: now.toISOString(),
        databases: dbs.map((d) => ({ name: d.name, size: d.size, ...(o.format === 'dump' ? { file: `${d.name}.dump` } : {}) })),
        durationMs: Math.round(performance.now() - t0),
        pgmamVersion: ctx.version,
      };
      await ctx.fs.writeFileAtomic(`${dir}/meta.json`, `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o640, owner });
      files.push('meta.json');
      const sums = await Promise.all(files.sort().map(async (f) => `${await ctx.fs.sha256(`${dir}/${f}`)}  ${f}`));
      await ctx.fs.writeFileAtomic(`${dir}/SHA256SUMS`, `${sums.join('\n')}\n`, { mode: 0o640, owner });
      const removed = expiredExports(await ctx.fs.readdir(`${to}/${rec.name}`), now, keep, name);
      for (const r of removed) await ctx.fs.rm(`${to}/${rec.name}/${r}`, { recursive: true });
      results.push({ cluster: rec.cluster, result: 'exported', dir, removed, durationMs: Math.round(performance.now() - t0) });
    } catch (e) {
      // Only this run's partial directory goes; older good exports are never touched on failure.
      if (!o.keepOnError) await ctx.fs.rm(dir, { recursive: true });
      results.push({ cluster: rec.cluster, result: 'failed', reason: String(e instanceof Error ? e.message : e).split('\n').slice(0, 3).join(' '), dir: o.keepOnError ? dir : undefined });
    }
  }
  if (o.dryRun) return;
  const bad = results.filter((r) => r.result === 'failed').length;
  ctx.io.out(
    o.json
      ? `${JSON.stringify(results, null, 2)}\n`
      : `${results.map((r) => (r.result === 'exported' ? `${r.cluster}: exported to ${r.dir}${r.removed?.length ? `; removed ${r.removed.join(', ')}` : ''}` : `${r.cluster}: failed: ${r.reason}`)).join('\n')}\n`,
  );
  if (bad && bad === results.length) throw new PgmamError('no cluster could be exported', ExitCode.refused, ['pgmam: export: no cluster could be exported']);
  if (bad) throw new PgmamError('some exports failed', ExitCode.partial, [`pgmam: export: ${bad} of ${results.length} cluster(s) failed`]);
}

export async function runVerifyExport(ctx: Context, o: { dir: string; json: boolean }): Promise<void> {
  const problems = await verifyExport(ctx, o.dir);
  ctx.io.out(o.json ? `${JSON.stringify({ dir: o.dir, ok: !problems.length, problems })}\n` : problems.length ? '' : `${o.dir}: every file verified\n`);
  if (problems.length) throw new PgmamError(`export ${o.dir} is damaged`, ExitCode.refused, problems.map((p) => `pgmam: export --verify refused: ${p}`));
}
