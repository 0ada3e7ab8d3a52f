#!/usr/bin/env node
// Benchmark (by hand, not in CI): `pgmam replica create --source repo` (pgbackrest restore --type=standby
// from the app's stanza) against `--source primary` (pg_basebackup over TLS), alternately, from a primary
// holding `pgbench -i -s 20` (lz4, process-max 2). Per run: seconds until the replica streams, and what
// the primary's processes (postmaster and every child, sampled every 50 ms so short-lived walsenders
// count) used meanwhile: CPU seconds and bytes read and written (/proc/<pid>/stat and io).
// Usage (root): node bench/replica.mjs [rounds=3]
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

const rounds = Number(process.argv[2] ?? 3);
const ROOT = '/var/lib/pgmam-bench-replica';
const CONF = `${ROOT}/pgmam.conf`;
const PGMAM = resolve(import.meta.dirname, '../bin/pgmam');
const APP = 'b_rep';
const PORT = 27140;
const env = { ...process.env, PGMAM_CONFIG: CONF };
const TICK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());

const run = (cmd, args) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: '/tmp', env }).toString().trim();
const asPg = (cmd, args) => run('runuser', ['-u', 'postgres', '--', cmd, ...args]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

/** The primary's postmaster and its children: pid → { cpu seconds, bytes read + written }. */
function sample() {
  const pm = Number(readFileSync(`/var/lib/postgresql/15/${APP}/postmaster.pid`, 'utf8').split('\n')[0]);
  const out = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(d) !== pm && Number(f[1]) !== pm) continue; // f[1]: ppid
      const io = Object.fromEntries(readFileSync(`/proc/${d}/io`, 'utf8').trim().split('\n').map((l) => l.split(': ')));
      out.set(d, { cpu: (Number(f[11]) + Number(f[12])) / TICK, read: Number(io.read_bytes), write: Number(io.write_bytes) });
    } catch {}
  }
  return out;
}

/** Runs pgmam, sampling the primary meanwhile; each pid counted from its first sample (0 for a pid born during the run). */
async function measured(args) {
  const before = sample();
  const last = new Map();
  const t0 = performance.now();
  const child = spawn(PGMAM, args, { env, cwd: '/tmp', stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (b) => (err += b));
  const done = new Promise((ok) => child.on('exit', ok));
  let code;
  while ((code = await Promise.race([done, sleep(50).then(() => undefined)])) === undefined) for (const [pid, v] of sample()) last.set(pid, v);
  for (const [pid, v] of sample()) last.set(pid, v);
  const seconds = (performance.now() - t0) / 1000;
  if (code !== 0) throw new Error(`pgmam ${args.join(' ')} failed: ${err}`);
  const zero = { cpu: 0, read: 0, write: 0 };
  const sum = { cpu: 0, read: 0, write: 0 };
  for (const [pid, v] of last) {
    const b = before.get(pid) ?? zero;
    for (const k of Object.keys(sum)) sum[k] += v[k] - b[k];
  }
  return { seconds, ...sum };
}

function cleanup() {
  for (const d of existsSync('/etc/postgresql/15') ? readdirSync('/etc/postgresql/15') : []) if (d === APP || d.startsWith(`${APP}_`)) try { run('pg_dropcluster', ['--stop', '15', d]); } catch {}
  if (existsSync(`/etc/pgbackrest/conf.d/${APP}.conf`)) {
    try { asPg('pgbackrest', [`--stanza=${APP}`, 'stop']); } catch {}
    try { asPg('pgbackrest', [`--stanza=${APP}`, 'stanza-delete', '--force']); } catch {}
  }
  for (const d of existsSync('/etc/postgresql/15') ? readdirSync('/etc/postgresql/15') : []) if (d === APP || d.startsWith(`${APP}_`)) rmSync(`/etc/postgresql/15/${d}`, { recursive: true, force: true });
  for (const d of existsSync('/var/lib/postgresql/15') ? readdirSync('/var/lib/postgresql/15') : []) if (d === APP || d.startsWith(`${APP}_`)) rmSync(`/var/lib/postgresql/15/${d}`, { recursive: true, force: true });
  for (const p of [`/etc/pgbackrest/conf.d/${APP}.conf`, `/var/spool/pgbackrest/archive/${APP}`, ROOT]) rmSync(p, { recursive: true, force: true });
}

cleanup();
mkdirSync(ROOT, { recursive: true });
writeFileSync(CONF, `repo-path = ${ROOT}/repo\nstate-dir = ${ROOT}/state\nlog-file = ${ROOT}/pgmam.log\ntls-dir = ${ROOT}/tls\nport-min = 27141\nport-max = 27149\n`);
const fmt = (r) => `${r.seconds.toFixed(2)} s, primary CPU ${r.cpu.toFixed(2)} s, read ${(r.read / 2 ** 20).toFixed(1)} MB, written ${(r.write / 2 ** 20).toFixed(1)} MB`;
try {
  run(PGMAM, ['initcluster', APP, '--port', String(PORT), '-q']);
  console.log('pgbench -i -s 20 ...');
  asPg('/usr/lib/postgresql/15/bin/pgbench', ['-i', '-s', '20', '-q', '-h', '/var/run/postgresql', '-p', String(PORT), 'postgres']);
  run(PGMAM, ['backup', APP, '--type', 'full', '-q']);
  // Flushed and idle, so both sources start from the same primary.
  asPg('/usr/lib/postgresql/15/bin/psql', ['-X', '-h', '/var/run/postgresql', '-p', String(PORT), '-c', 'checkpoint']);
  const res = { repo: [], primary: [] };
  for (let i = 0; i < rounds; i++)
    for (const source of i % 2 ? ['primary', 'repo'] : ['repo', 'primary']) {
      const label = `${source.slice(0, 4)}${i}`;
      const r = await measured(['replica', 'create', APP, '--name', label, '--source', source, '-q']);
      run(PGMAM, ['replica', 'drop', `${APP}_${label}`, '--yes', '-q']);
      res[source].push(r);
      console.log(`round ${i + 1}, --source ${source}: ${fmt(r)}`);
    }
  const med = (xs) => ({ seconds: median(xs.map((x) => x.seconds)), cpu: median(xs.map((x) => x.cpu)), read: median(xs.map((x) => x.read)), write: median(xs.map((x) => x.write)) });
  const a = med(res.repo), b = med(res.primary);
  console.log(`median --source repo:    ${fmt(a)}`);
  console.log(`median --source primary: ${fmt(b)}`);
  console.log(`ratio repo/primary: time ${(a.seconds / b.seconds).toFixed(2)}x, primary CPU ${(a.cpu / b.cpu).toFixed(2)}x, primary read ${(a.read / Math.max(1, b.read)).toFixed(2)}x`);
} finally {
  cleanup();
}
