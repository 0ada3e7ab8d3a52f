#!/usr/bin/env node
// Benchmark (by hand, not in CI): a host with many apps. Creates N managed clusters (default 30) with
// pgmam initcluster, each then set to shared_buffers = 16MB and max_connections = 20 (pg_conftool +
// restart: a small app), and measures, medians of R rounds:
//   - pgmam list --json against the raw pair it replaces (pg_lsclusters --json + one pgbackrest info
//     --output=json of the apps' repository), alternately;
//   - pgmam check (and per app) of a third, two thirds and all of the apps: linear or not;
//   - pgmam backup --all with nothing changed (every cluster skipped), and with one cluster changed;
//   - the memory of an idle cluster: the PSS of its postmaster and children (smaps_rollup).
// Ports 27200-27299, names s_app<i>, everything else under /var/lib/pgmam-bench-scale.
// Usage (root): node bench/scale.mjs [apps=30] [rounds=5] [pgmam executable, default dist/pgmam if built, else bin/pgmam]
// KEEP=1 leaves the clusters behind; a later run with KEEP=1 measures them again without creating them.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { median, removeBenchClusters, time } from './lib.mjs';

const N = Number(process.argv[2] ?? 30);
const rounds = Number(process.argv[3] ?? 5);
const STANDALONE = resolve(import.meta.dirname, '../dist/pgmam');
const PGMAM = resolve(process.argv[4] ?? (existsSync(STANDALONE) ? STANDALONE : resolve(import.meta.dirname, '../bin/pgmam')));
const ROOT = '/var/lib/pgmam-bench-scale';
const CONF = `${ROOT}/pgmam.conf`;
const NAMES = Array.from({ length: N }, (_, i) => `s_app${i}`);
const env = { ...process.env, PGMAM_CONFIG: CONF };

const run = (cmd, args, ok = [0]) => {
  try {
    return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: '/tmp', env, maxBuffer: 64 << 20 }).toString().trim();
  } catch (e) {
    if (ok.includes(e.status)) return e.stdout.toString().trim();
    throw new Error(`${cmd} ${args.join(' ')} exited ${e.status}: ${e.stderr}`);
  }
};
const asPg = (cmd, args) => run('runuser', ['-u', 'postgres', '--', cmd, ...args]);

function cleanup() {
  removeBenchClusters(NAMES);
  rmSync(ROOT, { recursive: true, force: true });
}

/** PSS (kB) of a cluster's postmaster and its children. */
function clusterPss(dataDir) {
  const pm = Number(readFileSync(`${dataDir}/postmaster.pid`, 'utf8').split('\n')[0]);
  let kb = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const ppid = Number(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')[1]);
      if (Number(pid) !== pm && ppid !== pm) continue;
      kb += Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))[1]);
    } catch {} // a process that ended meanwhile
  }
  return kb;
}

const keep = process.env.KEEP === '1';
const reuse = keep && existsSync(CONF);
if (!reuse) {
  cleanup();
  mkdirSync(ROOT, { recursive: true });
  writeFileSync(CONF, `repo-path = ${ROOT}/repo\nstate-dir = ${ROOT}/state\nlog-file = ${ROOT}/pgmam.log\nport-min = 27200\nport-max = 27299\ntls-dir = ${ROOT}/tls\n`);
}
try {
  const tCreate = time(() => {
    for (const n of NAMES) {
      if (existsSync(`/etc/postgresql/15/${n}`)) continue;
      run(PGMAM, ['initcluster', n, '-q']);
      run('pg_conftool', ['15', n, 'set', 'shared_buffers', '16MB']);
      run('pg_conftool', ['15', n, 'set', 'max_connections', '20']);
      run('pg_ctlcluster', ['15', n, 'restart']);
    }
  });
  const entries = JSON.parse(run(PGMAM, ['list', '--json'])).filter((e) => NAMES.includes(e.name));
  console.log(`${entries.length} clusters ready in ${tCreate.toFixed(0)} s (shared_buffers 16MB, max_connections 20)`);

  const rawT = [], listT = [], checkT = [], idleT = [], oneT = [];
  const thirds = [Math.round(N / 3), Math.round((2 * N) / 3)];
  const checkPart = thirds.map(() => []);
  // list and the raw pair first, alternately, on a host at rest: the rounds below back up and archive.
  for (let i = 0; i < rounds; i++) {
    rawT.push(time(() => { run('pg_lsclusters', ['--json']); asPg('pgbackrest', [`--repo1-path=${ROOT}/repo`, '--output=json', 'info']); }));
    listT.push(time(() => run(PGMAM, ['list', '--json'])));
  }
  for (let i = 0; i < rounds; i++) {
    thirds.forEach((k, j) => checkPart[j].push(time(() => run(PGMAM, ['check', '-q', ...NAMES.slice(0, k)], [0, 7]))));
    checkT.push(time(() => run(PGMAM, ['check', '-q'], [0, 7])));
    idleT.push(time(() => run(PGMAM, ['backup', '--all', '-q'], [0, 7])));
    const e = entries[i % entries.length];
    asPg('psql', ['-X', '-q', '-h', '/var/run/postgresql', '-p', String(e.port), '-c', `create table if not exists bench_t (i int); insert into bench_t values (${i})`]);
    oneT.push(time(() => run(PGMAM, ['backup', '--all', '-q'], [0, 7])));
  }
  const mem = entries.map((e) => clusterPss(e.dataDir)).sort((a, b) => a - b);
  const mr = median(rawT), ml = median(listT), mc = median(checkT), mi = median(idleT), mo = median(oneT);
  console.log(`pgmam: ${PGMAM}`);
  console.log(`| measure (${N} apps, median of ${rounds}) | seconds | per app |`);
  console.log('| --- | --- | --- |');
  console.log(`| raw pg_lsclusters --json + pgbackrest info | ${mr.toFixed(3)} | ${(mr / N).toFixed(4)} |`);
  console.log(`| pgmam list --json | ${ml.toFixed(3)} | ${(ml / N).toFixed(4)} | ratio ${(ml / mr).toFixed(2)}x (goal <= 1.5x)`);
  thirds.forEach((k, j) => { const x = median(checkPart[j]); console.log(`| pgmam check, ${k} apps | ${x.toFixed(3)} | ${(x / k).toFixed(4)} |`); });
  console.log(`| pgmam check, ${N} apps | ${mc.toFixed(3)} | ${(mc / N).toFixed(4)} |`);
  console.log(`| pgmam backup --all, nothing changed | ${mi.toFixed(3)} | ${(mi / N).toFixed(4)} | (goal <= 0.2 s per app)`);
  console.log(`| pgmam backup --all, one app changed | ${mo.toFixed(3)} | ${(mo / N).toFixed(4)} |`);
  console.log(`idle cluster PSS: median ${(median(mem) / 1024).toFixed(1)} MB, min ${(mem[0] / 1024).toFixed(1)}, max ${(mem.at(-1) / 1024).toFixed(1)}`);
} finally {
  if (!keep) cleanup();
}
