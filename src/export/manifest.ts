// An export's own files: meta.json and SHA256SUMS, read and checked (pg_verifybackup for a base backup).
import { randomBytes } from 'node:crypto';
import type { Context } from '../context.js';
import * as pg from '../pg/commands.js';
import { postgresOwner } from '../host/facts.js';

export type ExportFormat = 'dump' | 'basebackup';

export interface ExportMeta {
  format?: ExportFormat;
  cluster?: string;
  pgVersion?: string;
  databases?: Array<{ name: string; size: number; file?: string }>;
}

export async function readExportMeta(ctx: Context, dir: string): Promise<ExportMeta | undefined> {
  const text = await ctx.fs.readText(`${dir}/meta.json`).catch(() => undefined);
  try {
    return text === undefined ? undefined : (JSON.parse(text) as ExportMeta);
  } catch {
    return undefined;
  }
}

/** Every file of SHA256SUMS present with its checksum (read-only). */
export async function checkSums(ctx: Context, dir: string): Promise<string[]> {
  const problems: string[] = [];
  const sums = await ctx.fs.readText(`${dir}/SHA256SUMS`);
  if (sums === undefined) return [`${dir}/SHA256SUMS is missing`];
  for (const line of sums.split('\n').filter(Boolean)) {
    const m = /^([0-9a-f]{64})\s+\*?(.+)$/.exec(line);
    if (!m) {
      problems.push(`SHA256SUMS: unreadable line "${line}"`);
      continue;
    }
    const file = `${dir}/${m[2]}`;
    if (!(await ctx.fs.exists(file))) problems.push(`${file}: missing`);
    else if ((await ctx.fs.sha256(file)) !== m[1]) problems.push(`${file}: checksum mismatch`);
  }
  return problems;
}

/** Check an export's SHA256SUMS (and, for a base backup, pg_verifybackup on an extracted copy). */
export async function verifyExport(ctx: Context, dir: string): Promise<string[]> {
  const problems = await checkSums(ctx, dir);
  const meta = JSON.parse((await ctx.fs.readText(`${dir}/meta.json`)) ?? '{}') as { format?: string; pgVersion?: string };
  if (!problems.length && meta.format === 'basebackup' && !meta.pgVersion) problems.push(`${dir}/meta.json names no PostgreSQL version: pg_verifybackup of that major cannot be chosen`);
  else if (!problems.length && meta.format === 'basebackup' && meta.pgVersion) {
    // pg_verifybackup reads only the plain format in PostgreSQL 15: extract into a scratch directory.
    // A fresh name, removed only if this run made it: never someone's directory that happened to be there.
    const scratch = `${dir}.verify-${randomBytes(6).toString('hex')}`;
    const owner = await postgresOwner(ctx.fs);
    if (await ctx.fs.exists(scratch)) throw new Error(`${scratch} exists: not verifying into it`);
    let made = false;
    try {
      await ctx.fs.mkdirp(scratch, { mode: 0o700, owner });
      made = true;
      await ctx.fs.mkdirp(`${scratch}/pg_wal`, { mode: 0o700, owner });
      await ctx.runner.run({ argv: ['tar', '-xzf', `${dir}/base.tar.gz`, '-C', scratch], asUser: 'postgres', effect: 'write' });
      await ctx.runner.run({ argv: ['tar', '-xzf', `${dir}/pg_wal.tar.gz`, '-C', `${scratch}/pg_wal`], asUser: 'postgres', effect: 'write' });
      await ctx.fs.copyFile(`${dir}/backup_manifest`, `${scratch}/backup_manifest`, owner);
      const r = await ctx.runner.run(pg.verifyBackup(meta.pgVersion, scratch), { check: false });
      if (r.exitCode !== 0) problems.push(`pg_verifybackup: ${r.stderr.trim().split('\n').slice(0, 5).join('; ')}`);
    } finally {
      if (made) await ctx.fs.rm(scratch, { recursive: true });
    }
  }
  return problems;
}
