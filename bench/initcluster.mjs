#!/usr/bin/env node
// Benchmark (by hand, not in CI): `pgmam initcluster` against the same raw steps it performs
// (raw-workflow.md, step a), alternately in one run; prints medians and the ratio (target ≤ 1.10×).
// Usage (root): node bench/initcluster.mjs [rounds=5]
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { resolve } from 'node:path';

const rounds = Number(process.argv[2] ?? 5);
const ROOT = '/var/lib/pgmam-bench';
const REPO = `${ROOT}/repo`;
const CONF = `${ROOT}/pgmam.conf`;
const PGMAM = resolve(import.meta.dirname, '../bin/pgmam');
const PORT = 27100;

const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: '/tmp', ...opts }).toString();
const asPg = (cmd, args) => run('runuser', ['-u', 'postgres', '--', cmd, ...args]);

function cleanup(name) {
  if (existsSync(`/etc/pgbackrest/conf.d/${name}.conf`)) {
    try { asPg('pgbackrest', [`--stanza=${name}`, 'stop']); } catch {}
    try { asPg('pgbackrest', [`--stanza=${name}`, 'stanza-delete', '--force']); } catch {}
  }
  try { run('pg_dropcluster', ['--stop', '15', name]); } catch {}
  for (const p of [`/etc/postgresql/15/${name}`, `/var/lib/postgresql/15/${name}`, `/etc/pgbackrest/conf.d/${name}.conf`, `${ROOT}/state/clusters/${name}.json`, `/var/spool/pgbackrest/archive/${name}`])
    rmSync(p, { recursive: true, force: true });
}

function raw(name) {
  run('pg_createcluster', ['15', name, '--port', String(PORT), '--', '--data-checksums']);
  mkdirSync(`/etc/postgresql/15/${name}/conf.d`, { recursive: true });
  writeFileSync(`/etc/postgresql/15/${name}/conf.d/90-pgmam-archive.conf`,
    `wal_level = replica\narchive_mode = on\narchive_command = 'pgbackrest --stanza=${name} archive-push %p'\narchive_timeout = 60\n`);
  writeFileSync(`/etc/pgbackrest/conf.d/${name}.conf`,
    `[${name}]\npg1-path=/var/lib/postgresql/15/${name}\npg1-port=${PORT}\npg1-socket-path=/var/run/postgresql\nrepo1-path=${REPO}\nrepo1-retention-full=2\ncompress-type=lz4\nprocess-max=2\nstart-fast=y\n`, { mode: 0o640 });
  run('chown', ['postgres:postgres', `/etc/pgbackrest/conf.d/${name}.conf`]);
  run('pg_ctlcluster', ['15', name, 'start']);
  asPg('pgbackrest', [`--stanza=${name}`, 'stanza-create']);
  asPg('pgbackrest', [`--stanza=${name}`, 'check']);
  asPg('pgbackrest', [`--stanza=${name}`, '--type=full', 'backup']);
  asPg('pgbackrest', [`--stanza=${name}`, '--output=json', 'info']);
}

function viaPgmam(name) {
  run(PGMAM, ['initcluster', name, '--port', String(PORT), '-q'], { env: { ...process.env, PGMAM_CONFIG: CONF } });
}

const time = (fn) => { const t = performance.now(); fn(); return (performance.now() - t) / 1000; };
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

rmSync(ROOT, { recursive: true, force: true });
mkdirSync(ROOT, { recursive: true });
run('install', ['-d', '-o', 'postgres', '-g', 'postgres', '-m', '750', REPO]);
mkdirSync('/etc/pgbackrest/conf.d', { recursive: true });
writeFileSync(CONF, `repo-path = ${REPO}\nstate-dir = ${ROOT}/state\nlog-file = ${ROOT}/pgmam.log\n`);

const rawT = [], pgmamT = [];
try {
  for (let i = 0; i < rounds; i++) {
    const a = `b_raw_${i}`, b = `b_pgmam_${i}`;
    cleanup(a); cleanup(b);
    const tr = time(() => raw(a)); cleanup(a);
    const tp = time(() => viaPgmam(b)); cleanup(b);
    rawT.push(tr); pgmamT.push(tp);
    console.log(`round ${i + 1}: raw ${tr.toFixed(2)} s, pgmam ${tp.toFixed(2)} s`);
  }
} finally {
  rmSync(ROOT, { recursive: true, force: true });
}
const mr = median(rawT), mp = median(pgmamT);
console.log(`median raw ${mr.toFixed(2)} s, pgmam ${mp.toFixed(2)} s, ratio ${(mp / mr).toFixed(3)}x (target <= 1.10x)`);
