#!/usr/bin/env node
// Benchmark (by hand, not in CI): a copy-on-write branch against the restore path, for a 750 MB and a
// 3 GB parent, on XFS made with reflink=1 (an image file, loop-mounted), side by side in one run.
//   - "writable": from the start of `pgmam branch create` until pgmam saw the branch promoted (the end
//     of its wait-promoted step in pgmam's log), and until the branch's server said "database system is
//     ready to accept connections" (its log; pg_ctlcluster's start then waits about 2 s more before
//     it returns, on either way);
//   - its first full backup (the backup-full step), reported separately, and the whole command.
// Each parent is pgbench -i -s 50 (about 750 MB) or -s 200 (about 3 GB) with a fresh full backup, so
// the restore path restores a backup rather than replaying WAL; a CHECKPOINT before each branch.
// The two ways alternate, R rounds each (default 3), medians printed with the goals' ratios.
// Ports 27300-27319, names c_small and c_big, everything under /var/lib/pgmam-bench-cow.
// Usage (root): node bench/branch-cow.mjs [rounds=3] [pgmam executable, default bin/pgmam]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { median, removeBenchClusters } from './lib.mjs';

const rounds = Number(process.argv[2] ?? 3);
const PGMAM = resolve(process.argv[3] ?? resolve(import.meta.dirname, '../bin/pgmam'));
const ROOT = '/var/lib/pgmam-bench-cow';
const MOUNT = `${ROOT}/xfs`;
const CONF = `${ROOT}/pgmam.conf`;
const LOG = `${ROOT}/pgmam.log`;
const PARENTS = [
  { name: 'c_small', scale: 50, size: '750 MB' },
  { name: 'c_big', scale: 200, size: '3 GB' },
];
const env = { ...process.env, PGMAM_CONFIG: CONF };

const run = (cmd, args) => {
  try {
    return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: '/tmp', env, maxBuffer: 64 << 20 }).toString().trim();
  } catch (e) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${e.status}: ${e.stderr}`);
  }
};
const asPg = (cmd, args) => run('runuser', ['-u', 'postgres', '--', cmd, ...args]);
const psql = (port, sql) => asPg('psql', ['-X', '-At', '-h', '/var/run/postgresql', '-p', String(port), '-c', sql]);
const portOf = (name) => JSON.parse(run(PGMAM, ['list', '--json'])).find((e) => e.name === name).port;

function cleanup() {
  removeBenchClusters(PARENTS.flatMap((p) => [`${p.name}_b`, p.name]));
  try { execFileSync('umount', [MOUNT], { stdio: 'ignore' }); } catch {}
  rmSync(ROOT, { recursive: true, force: true });
}

/** One branch create; its timings from pgmam's log (step-end events of this run's pid). */
function branchOnce(parent, way) {
  const from = existsSync(LOG) ? readFileSync(LOG, 'utf8').length : 0;
  const t0 = Date.now();
  run(PGMAM, ['branch', 'create', parent, '--name', 'b', way, '--yes', '-q']);
  const total = (Date.now() - t0) / 1000;
  const events = readFileSync(LOG, 'utf8').slice(from).split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((e) => e.command === 'branch create');
  const end = (step) => events.find((e) => e.event === 'step-end' && e.step === step);
  const promoted = end('wait-promoted');
  const backup = end('backup-full');
  if (!promoted || !backup) throw new Error(`no wait-promoted or backup-full step in the log of branch create ${parent} ${way}`);
  const copy = end(way === '--cow' ? 'cow-copy' : 'restore-backup');
  // The server log outlives the branch (pg_dropcluster keeps it): its first start after t0.
  const ready = readFileSync(`/var/log/postgresql/postgresql-15-${parent}_b.log`, 'utf8').split('\n')
    .filter((l) => l.includes('database system is ready to accept connections'))
    .map((l) => Date.parse(l.slice(0, 23).replace(' ', 'T') + 'Z'))
    .find((t) => t >= t0);
  run(PGMAM, ['branch', 'drop', `${parent}_b`, '--purge-backups', '--yes', '-q']);
  return { writable: (Date.parse(promoted.time) - t0) / 1000, ready: (ready - t0) / 1000, copy: copy.durationMs / 1000, backup: backup.durationMs / 1000, total };
}

cleanup();
mkdirSync(MOUNT, { recursive: true });
try {
  run('truncate', ['-s', '24G', `${ROOT}/xfs.img`]);
  run('mkfs.xfs', ['-q', '-m', 'reflink=1', `${ROOT}/xfs.img`]);
  run('mount', ['-o', 'loop', `${ROOT}/xfs.img`, MOUNT]);
  writeFileSync(CONF, `repo-path = ${ROOT}/repo\nstate-dir = ${ROOT}/state\nlog-file = ${LOG}\nport-min = 27300\nport-max = 27319\ntls-dir = ${ROOT}/tls\ndata-root = ${MOUNT}/%v/%c\n`);
  for (const p of PARENTS) {
    const t = Date.now();
    run(PGMAM, ['initcluster', p.name, '-q']);
    p.port = portOf(p.name);
    asPg('pgbench', ['-i', '-q', '-s', String(p.scale), '-h', '/var/run/postgresql', '-p', String(p.port), 'postgres']);
    run(PGMAM, ['backup', p.name, '--type', 'full', '-q']);
    p.bytes = Number(psql(p.port, "select sum(pg_database_size(datname)) from pg_database"));
    console.log(`${p.name}: pgbench -s ${p.scale}, ${(p.bytes / 2 ** 20).toFixed(0)} MB of databases, ready in ${((Date.now() - t) / 1000).toFixed(0)} s`);
  }
  const results = {};
  for (let i = 0; i < rounds; i++)
    for (const p of PARENTS)
      for (const way of i % 2 ? ['--no-cow', '--cow'] : ['--cow', '--no-cow']) {
        psql(p.port, 'checkpoint');
        (results[`${p.name} ${way}`] ??= []).push(branchOnce(p.name, way));
      }
  const med = (k, f) => median(results[k].map((r) => r[f]));
  console.log(`pgmam: ${PGMAM}`);
  console.log(`| parent | way | writable: pgmam saw it promoted (s) | server ready, its log (s) | copy or restore step (s) | first full backup (s) | whole command (s) |`);
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const p of PARENTS)
    for (const way of ['--cow', '--no-cow']) {
      const k = `${p.name} ${way}`;
      console.log(`| ${p.size} (${(p.bytes / 2 ** 20).toFixed(0)} MB) | ${way === '--cow' ? 'copy-on-write' : 'restore'} | ${med(k, 'writable').toFixed(2)} | ${med(k, 'ready').toFixed(2)} | ${med(k, 'copy').toFixed(2)} | ${med(k, 'backup').toFixed(2)} | ${med(k, 'total').toFixed(2)} |`);
    }
  const cowSmall = med('c_small --cow', 'writable');
  const cowBig = med('c_big --cow', 'writable');
  const restoreBig = med('c_big --no-cow', 'writable');
  console.log(`copy-on-write, 3 GB against 750 MB: ${(cowBig / cowSmall).toFixed(2)}x (goal <= 1.10x); server ready: ${(med('c_big --cow', 'ready') / med('c_small --cow', 'ready')).toFixed(2)}x`);
  console.log(`3 GB, restore path against copy-on-write: ${(restoreBig / cowBig).toFixed(2)}x faster (goal >= 3x); server ready: ${(med('c_big --no-cow', 'ready') / med('c_big --cow', 'ready')).toFixed(2)}x`);
} finally {
  if (process.env.KEEP !== '1') cleanup();
}
