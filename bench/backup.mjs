#!/usr/bin/env node
// Benchmark (by hand, not in CI): `pgmam backup --all --type full` of 6 clusters holding
// `pgbench -i -s 5` (lz4, process-max 2, backup-parallel 2) against the serial sum of the same raw
// `pgbackrest --type=full backup` calls, alternately. Prints medians and the ratio (target <= 0.65x).
// Usage (root): node bench/backup.mjs [rounds=3]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { median, removeBenchClusters, time } from './lib.mjs';

const rounds = Number(process.argv[2] ?? 3);
const ROOT = '/var/lib/pgmam-bench';
const CONF = `${ROOT}/pgmam.conf`;
const PGMAM = resolve(import.meta.dirname, '../bin/pgmam');
const NAMES = Array.from({ length: 6 }, (_, i) => `b_bk${i}`);
const env = { ...process.env, PGMAM_CONFIG: CONF };

const run = (cmd, args) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: '/tmp', env }).toString().trim();
const asPg = (cmd, args) => run('runuser', ['-u', 'postgres', '--', cmd, ...args]);

function cleanup() {
  removeBenchClusters(NAMES);
  rmSync(ROOT, { recursive: true, force: true });
}

cleanup();
mkdirSync(ROOT, { recursive: true });
writeFileSync(CONF, `repo-path = ${ROOT}/repo\nstate-dir = ${ROOT}/state\nlog-file = ${ROOT}/pgmam.log\nport-min = 27140\nport-max = 27199\nretention-full = 2\n`);
try {
  for (const n of NAMES) {
    run(PGMAM, ['initcluster', n, '-q']);
    const port = JSON.parse(run(PGMAM, ['list', '--json'])).find((e) => e.name === n).port;
    asPg('/usr/lib/postgresql/15/bin/pgbench', ['-i', '-s', '5', '-q', '-h', '/var/run/postgresql', '-p', String(port), 'postgres']);
  }
  console.log(`6 clusters with pgbench -s 5 ready`);
  const rawT = [], pgmamT = [];
  for (let i = 0; i < rounds; i++) {
    const tr = time(() => { for (const n of NAMES) asPg('pgbackrest', ['--repo1-retention-full=2', `--stanza=${n}`, '--type=full', 'backup']); });
    const tp = time(() => run(PGMAM, ['backup', '--all', '--type', 'full', '-q']));
    rawT.push(tr); pgmamT.push(tp);
    console.log(`round ${i + 1}: raw serial ${tr.toFixed(2)} s, pgmam --all ${tp.toFixed(2)} s`);
  }
  const mr = median(rawT), mp = median(pgmamT);
  console.log(`median raw serial ${mr.toFixed(2)} s, pgmam ${mp.toFixed(2)} s, ratio ${(mp / mr).toFixed(3)}x (target <= 0.65x)`);
} finally {
  cleanup();
}
