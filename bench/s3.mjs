#!/usr/bin/env node
// Benchmark (by hand, not in CI): an S3 repository (Ceph RGW from Debian, started here by
// test/integration/rgw.sh) beside the local one. Measures `pgmam initcluster` of an empty cluster
// without and with the S3 repository attached, then, on one cluster holding `pgbench -i -s 20`
// (lz4, process-max 2), `pgmam backup --type full --repo local` against `--repo s3` alternately, and
// the raw `pgbackrest --repo=N --type=full backup` calls beside them. Prints medians and ratios
// (goal: the S3 backup within 1.3x the local one). Usage (root): node bench/s3.mjs [rounds=3]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

const rounds = Number(process.argv[2] ?? 3);
const ROOT = '/var/lib/pgmam-bench-s3';
const CONF = `${ROOT}/pgmam.conf`;
const PGMAM = resolve(import.meta.dirname, '../bin/pgmam');
const RGW = resolve(import.meta.dirname, '../test/integration/rgw.sh');
const NAMES = ['b_s3loc', 'b_s3both'];
const env = { ...process.env, PGMAM_CONFIG: CONF };

const run = (cmd, args) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: '/tmp', env }).toString().trim();
const asPg = (cmd, args) => run('runuser', ['-u', 'postgres', '--', cmd, ...args]);
const time = (fn) => { const t = performance.now(); fn(); return (performance.now() - t) / 1000; };
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

function cleanup() {
  for (const n of NAMES) {
    const file = `/etc/pgbackrest/conf.d/${n}.conf`;
    if (existsSync(file)) {
      try { asPg('pgbackrest', [`--stanza=${n}`, 'stop']); } catch {}
      for (const i of [...new Set([...readFileSync(file, 'utf8').matchAll(/^repo(\d+)-/gm)].map((m) => m[1]))])
        try { asPg('pgbackrest', [`--stanza=${n}`, `--repo=${i}`, 'stanza-delete', '--force']); } catch {}
    }
    try { run('pg_dropcluster', ['--stop', '15', n]); } catch {}
    for (const p of [`/etc/postgresql/15/${n}`, `/var/lib/postgresql/15/${n}`, file, `/var/spool/pgbackrest/archive/${n}`]) rmSync(p, { recursive: true, force: true });
  }
  try { run(RGW, ['stop', `${ROOT}/rgw`]); } catch {}
  rmSync(ROOT, { recursive: true, force: true });
}

cleanup();
mkdirSync(ROOT, { recursive: true, mode: 0o755 });
writeFileSync(CONF, `repo-path = ${ROOT}/repo\nstate-dir = ${ROOT}/state\nlog-file = ${ROOT}/pgmam.log\nport-min = 27180\nport-max = 27199\nretention-full = 2\n`);
try {
  const up = time(() => run(RGW, ['start', `${ROOT}/rgw`, '27960']));
  const rgw = Object.fromEntries(readFileSync(`${ROOT}/rgw/env`, 'utf8').trim().split('\n').map((l) => l.split('=', 2)));
  console.log(`Ceph RGW up in ${up.toFixed(1)} s`);
  const initLocal = time(() => run(PGMAM, ['initcluster', NAMES[0], '-q']));
  run(PGMAM, ['repo', 'add', 's3', '--s3-endpoint', rgw.endpoint, '--s3-bucket', rgw.bucket, '--s3-key-file', rgw.key, '--ca-file', rgw.ca, '--path', '/bench', '-q']);
  const initBoth = time(() => run(PGMAM, ['initcluster', NAMES[1], '-q']));
  console.log(`initcluster (empty cluster): local only ${initLocal.toFixed(2)} s, local + S3 ${initBoth.toFixed(2)} s, ratio ${(initBoth / initLocal).toFixed(3)}x`);

  const n = NAMES[1];
  const port = JSON.parse(run(PGMAM, ['list', '--json'])).find((e) => e.name === n).port;
  asPg('/usr/lib/postgresql/15/bin/pgbench', ['-i', '-s', '20', '-q', '-h', '/var/run/postgresql', '-p', String(port), 'postgres']);
  console.log('pgbench -i -s 20 loaded');
  const t = { pgLocal: [], pgS3: [], rawLocal: [], rawS3: [] };
  for (let i = 0; i < rounds; i++) {
    t.pgLocal.push(time(() => run(PGMAM, ['backup', n, '--repo', 'local', '--type', 'full', '-q'])));
    t.pgS3.push(time(() => run(PGMAM, ['backup', n, '--repo', 's3', '--type', 'full', '-q'])));
    t.rawLocal.push(time(() => asPg('pgbackrest', [`--stanza=${n}`, '--repo=1', '--type=full', 'backup'])));
    t.rawS3.push(time(() => asPg('pgbackrest', [`--stanza=${n}`, '--repo=2', '--type=full', 'backup'])));
    console.log(`round ${i + 1}: pgmam local ${t.pgLocal[i].toFixed(2)} s, pgmam S3 ${t.pgS3[i].toFixed(2)} s, raw local ${t.rawLocal[i].toFixed(2)} s, raw S3 ${t.rawS3[i].toFixed(2)} s`);
  }
  const m = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, median(v)]));
  console.log(`median full backup of pgbench -s 20: pgmam local ${m.pgLocal.toFixed(2)} s, pgmam S3 ${m.pgS3.toFixed(2)} s → S3/local ${(m.pgS3 / m.pgLocal).toFixed(3)}x (goal <= 1.3x)`);
  console.log(`raw pgbackrest: local ${m.rawLocal.toFixed(2)} s, S3 ${m.rawS3.toFixed(2)} s → S3/local ${(m.rawS3 / m.rawLocal).toFixed(3)}x; pgmam/raw: local ${(m.pgLocal / m.rawLocal).toFixed(3)}x, S3 ${(m.pgS3 / m.rawS3).toFixed(3)}x`);
} finally {
  cleanup();
}
