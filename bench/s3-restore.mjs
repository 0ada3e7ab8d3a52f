#!/usr/bin/env node
// Benchmark (by hand, not in CI): restores from an S3 repository (Ceph RGW from Debian, started here by
// test/integration/rgw.sh) against the same restores from the local one, on one cluster holding
// `pgbench -i -s 20` (lz4, process-max 2) with a full backup in both: `pgmam pitr --to T --repo local`
// vs `--repo s3`, and `pgmam branch create --at T --repo local` vs `--repo s3` (then dropped), alternately.
// retention-full 50: each pitr ends with a full backup, and the full before the target must survive them all.
// Prints medians and ratios (goal: S3 within 1.5x local). Usage (root): node bench/s3-restore.mjs [rounds=3]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

const rounds = Number(process.argv[2] ?? 3);
const ROOT = '/var/lib/pgmam-bench-s3r';
const CONF = `${ROOT}/pgmam.conf`;
const PGMAM = resolve(import.meta.dirname, '../bin/pgmam');
const RGW = resolve(import.meta.dirname, '../test/integration/rgw.sh');
const NAME = 'b_s3r';
const env = { ...process.env, PGMAM_CONFIG: CONF };

const run = (cmd, args) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: '/tmp', env }).toString().trim();
const asPg = (cmd, args) => run('runuser', ['-u', 'postgres', '--', cmd, ...args]);
const time = (fn) => { const t = performance.now(); fn(); return (performance.now() - t) / 1000; };
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

function cleanup() {
  for (const n of [NAME, `${NAME}_loc`, `${NAME}_s3`]) {
    const file = `/etc/pgbackrest/conf.d/${n}.conf`;
    if (existsSync(file)) {
      try { asPg('pgbackrest', [`--stanza=${n}`, 'stop']); } catch {}
      for (const i of [...new Set([...readFileSync(file, 'utf8').matchAll(/^repo(\d+)-/gm)].map((m) => m[1]))]) {
        try { asPg('pgbackrest', [`--stanza=${n}`, 'stop']); } catch {}
        try { asPg('pgbackrest', [`--stanza=${n}`, `--repo=${i}`, 'stanza-delete', '--force']); } catch {}
      }
    }
    try { run('pg_dropcluster', ['--stop', '15', n]); } catch {}
    for (const p of [`/etc/postgresql/15/${n}`, `/var/lib/postgresql/15/${n}`, file, `/var/spool/pgbackrest/archive/${n}`]) rmSync(p, { recursive: true, force: true });
  }
  for (const d of existsSync('/var/lib/postgresql/15') ? readdirSync('/var/lib/postgresql/15') : []) if (d.startsWith(`${NAME}.`)) rmSync(`/var/lib/postgresql/15/${d}`, { recursive: true, force: true });
  try { run(RGW, ['stop', `${ROOT}/rgw`]); } catch {}
  rmSync(ROOT, { recursive: true, force: true });
}

cleanup();
mkdirSync(ROOT, { recursive: true, mode: 0o755 });
writeFileSync(CONF, `repo-path = ${ROOT}/repo\nstate-dir = ${ROOT}/state\nlog-file = ${ROOT}/pgmam.log\nport-min = 27160\nport-max = 27179\nretention-full = 50\n`);
try {
  run(RGW, ['start', `${ROOT}/rgw`, '27970']);
  const rgw = Object.fromEntries(readFileSync(`${ROOT}/rgw/env`, 'utf8').trim().split('\n').map((l) => l.split('=', 2)));
  run(PGMAM, ['repo', 'add', 's3', '--s3-endpoint', rgw.endpoint, '--s3-bucket', rgw.bucket, '--s3-key-file', rgw.key, '--ca-file', rgw.ca, '--path', '/bench', '-q']);
  run(PGMAM, ['initcluster', NAME, '-q']);
  const port = JSON.parse(run(PGMAM, ['list', '--json'])).find((e) => e.name === NAME).port;
  const sql = (q) => asPg('/usr/lib/postgresql/15/bin/psql', ['-X', '-At', '-h', '/var/run/postgresql', '-p', String(port), '-d', 'postgres', '-c', q]);
  asPg('/usr/lib/postgresql/15/bin/pgbench', ['-i', '-s', '20', '-q', '-h', '/var/run/postgresql', '-p', String(port), 'postgres']);
  run(PGMAM, ['backup', NAME, '--type', 'full', '--force', '-q']);
  sleep(1100);
  const target = sql("select to_char(now() at time zone 'utc', 'YYYY-MM-DD HH24:MI:SS') || '+00'");
  sleep(1100);
  sql('create table after_target as select 1');
  console.log(`pgbench -i -s 20 loaded, a full in both repositories; target ${target}`);
  const t = { pitrLocal: [], pitrS3: [], branchLocal: [], branchS3: [] };
  for (let i = 0; i < rounds; i++) {
    // Each pitr leaves a new timeline; --undo puts the state of before back, so every round restores the same.
    t.pitrLocal.push(time(() => run(PGMAM, ['pitr', NAME, '--to', target, '--repo', 'local', '--yes', '-q'])));
    run(PGMAM, ['pitr', NAME, '--undo', '--yes', '-q']);
    t.pitrS3.push(time(() => run(PGMAM, ['pitr', NAME, '--to', target, '--repo', 's3', '--yes', '-q'])));
    run(PGMAM, ['pitr', NAME, '--undo', '--yes', '-q']);
    t.branchLocal.push(time(() => run(PGMAM, ['branch', 'create', NAME, '--name', 'loc', '--at', target, '--repo', 'local', '--yes', '-q'])));
    run(PGMAM, ['branch', 'drop', `${NAME}_loc`, '--purge-backups', '--yes', '-q']);
    t.branchS3.push(time(() => run(PGMAM, ['branch', 'create', NAME, '--name', 's3', '--at', target, '--repo', 's3', '--yes', '-q'])));
    run(PGMAM, ['branch', 'drop', `${NAME}_s3`, '--purge-backups', '--yes', '-q']);
    for (const d of readdirSync('/var/lib/postgresql/15')) if (d.startsWith(`${NAME}.pre-`)) rmSync(`/var/lib/postgresql/15/${d}`, { recursive: true, force: true });
    console.log(`round ${i + 1}: pitr local ${t.pitrLocal[i].toFixed(2)} s, pitr S3 ${t.pitrS3[i].toFixed(2)} s, branch local ${t.branchLocal[i].toFixed(2)} s, branch S3 ${t.branchS3[i].toFixed(2)} s`);
  }
  const m = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, median(v)]));
  console.log(`median pitr: local ${m.pitrLocal.toFixed(2)} s, S3 ${m.pitrS3.toFixed(2)} s → ${(m.pitrS3 / m.pitrLocal).toFixed(3)}x; branch create: local ${m.branchLocal.toFixed(2)} s, S3 ${m.branchS3.toFixed(2)} s → ${(m.branchS3 / m.branchLocal).toFixed(3)}x (goal <= 1.5x)`);
} finally {
  cleanup();
}
