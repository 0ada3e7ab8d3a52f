#!/usr/bin/env node
// Benchmark (by hand, not in CI): an app brought back on another host from a shared S3 repository.
// Host A (this machine) holds `pgbench -i -s 20` with its backups in a Ceph RGW (test/integration/rgw.sh);
// host B is a second host in namespaces (test/integration/hostb.sh) reaching the gateway by address.
//  1. On B, alternately: the raw restore (pg_createcluster, pgbackrest restore from the shared stanza
//     with archiving off, start, wait for promotion: writable) and `pgmam recover --as` (the same, then
//     its own stanza, archiving, check and a full backup into the local repository and S3, hand-over):
//     time to a writable app, medians and ratio.
//  2. RPO after a host loss: with archive-timeout 60 (the default), a client commits a row every 100 ms
//     on A; A's cluster then stops dead (immediate); B takes the app over (`recover --force`). RPO is
//     the newest commit on A minus the newest restored on B.
// Usage (root): node bench/recover.mjs [rounds=3]
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

const rounds = Number(process.argv[2] ?? 3);
const ROOT = '/var/lib/pgmam-bench-recover';
const CONF = `${ROOT}/pgmam.conf`;
const PGMAM = resolve(import.meta.dirname, '../bin/pgmam');
const RGW = resolve(import.meta.dirname, '../test/integration/rgw.sh');
const HOSTB = resolve(import.meta.dirname, '../test/integration/hostb.sh');
const NET = '10.214.98';
const GW_PORT = 27985;
const NAME = 'b_rec';
const env = { ...process.env, PGMAM_CONFIG: CONF };

const run = (cmd, args, e = env) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: '/tmp', env: e }).toString().trim();
const asPg = (cmd, args) => run('runuser', ['-u', 'postgres', '--', cmd, ...args]);
const onB = (args) => run(HOSTB, ['run', `${ROOT}/hostb`, ...args], { ...process.env, PGMAM_CONFIG: '/etc/pgmam/pgmam.conf' });
const pgmamB = (args) => onB([PGMAM, ...args]);
const sqlB = (port, q) => onB(['runuser', '-u', 'postgres', '--', 'psql', '-X', '-At', '-h', '/var/run/postgresql', '-p', String(port), '-d', 'postgres', '-c', q]);
const time = (fn) => { const t = performance.now(); fn(); return (performance.now() - t) / 1000; };
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

function cleanup() {
  try { run(HOSTB, ['stop', `${ROOT}/hostb`]); } catch {}
  const file = `/etc/pgbackrest/conf.d/${NAME}.conf`;
  if (existsSync(file)) {
    for (const i of [...new Set([...readFileSync(file, 'utf8').matchAll(/^repo(\d+)-/gm)].map((m) => m[1]))]) {
      try { asPg('pgbackrest', [`--stanza=${NAME}`, 'stop']); } catch {}
      try { asPg('pgbackrest', [`--stanza=${NAME}`, `--repo=${i}`, 'stanza-delete', '--force']); } catch {}
    }
  }
  try { run('pg_dropcluster', ['--stop', '15', NAME]); } catch {}
  for (const p of [`/etc/postgresql/15/${NAME}`, `/var/lib/postgresql/15/${NAME}`, file, `/var/spool/pgbackrest/archive/${NAME}`]) rmSync(p, { recursive: true, force: true });
  try { run(RGW, ['stop', `${ROOT}/rgw`]); } catch {}
  rmSync(ROOT, { recursive: true, force: true });
}

cleanup();
mkdirSync(ROOT, { recursive: true, mode: 0o755 });
writeFileSync(CONF, `repo-path = ${ROOT}/repo\nstate-dir = ${ROOT}/state\nlog-file = ${ROOT}/pgmam.log\nport-min = 27180\nport-max = 27199\narchive-timeout = 60\n`);
try {
  run(RGW, ['start', `${ROOT}/rgw`, '27980']);
  const rgw = Object.fromEntries(readFileSync(`${ROOT}/rgw/env`, 'utf8').trim().split('\n').map((l) => l.split('=', 2)));
  run(HOSTB, ['start', `${ROOT}/hostb`, 'bench-hostb', NET, 'bench']);
  run(RGW, ['gateway', `${ROOT}/rgw`, 'fleet', String(GW_PORT), `${NET}.1`]);
  const bEtc = `${ROOT}/hostb/root/etc-pgmam`;
  copyFileSync(rgw.key, `${bEtc}/s3.key`);
  copyFileSync(rgw.ca, `${bEtc}/ca.crt`);
  writeFileSync(`${bEtc}/pgmam.conf`, 'port-min = 27180\nport-max = 27199\narchive-timeout = 60\n');
  const endpoint = `${NET}.1:${GW_PORT}`;
  run(PGMAM, ['repo', 'add', 'fleet', '--s3-endpoint', endpoint, '--s3-bucket', rgw.bucket, '--s3-key-file', rgw.key, '--ca-file', rgw.ca, '--path', '/bench', '-q']);
  pgmamB(['repo', 'add', 'fleet', '--s3-endpoint', endpoint, '--s3-bucket', rgw.bucket, '--s3-key-file', '/etc/pgmam/s3.key', '--ca-file', '/etc/pgmam/ca.crt', '--path', '/bench', '--attach-new', 'no', '-q']);
  run(PGMAM, ['initcluster', NAME, '-q']);
  const port = JSON.parse(run(PGMAM, ['list', '--json'])).find((e) => e.name === NAME).port;
  const sqlA = (q) => asPg('/usr/lib/postgresql/15/bin/psql', ['-X', '-At', '-h', '/var/run/postgresql', '-p', String(port), '-d', 'postgres', '-c', q]);
  asPg('/usr/lib/postgresql/15/bin/pgbench', ['-i', '-s', '20', '-q', '-h', '/var/run/postgresql', '-p', String(port), 'postgres']);
  run(PGMAM, ['backup', NAME, '--type', 'full', '--force', '-q']);
  sqlA('create table beat (t timestamptz)');
  console.log(`host A: pgbench -i -s 20 (${sqlA("select pg_size_pretty(pg_database_size('postgres'))")}), a full backup in the local repository and in S3; host B up`);

  // 1. Time to a writable app on host B: the raw restore against pgmam recover --as.
  writeFileSync(`${ROOT}/hostb/root/var-lib-pgmam/raw.conf`, [`[${NAME}]`, 'pg1-path=/var/lib/postgresql/15/raw', 'pg1-port=27199', 'repo1-type=s3', 'repo1-path=/bench', `repo1-s3-bucket=${rgw.bucket}`, `repo1-s3-endpoint=${NET}.1`, `repo1-storage-port=${GW_PORT}`, 'repo1-s3-region=us-east-1', 'repo1-s3-uri-style=path', 'repo1-storage-ca-file=/etc/pgmam/ca.crt', `repo1-s3-key=${rgw.access}`, `repo1-s3-key-secret=${rgw.secret}`, ''].join('\n'));
  const rawRestore = () => {
    onB(['mkdir', '-p', '/var/lib/pgmam/rawcfg']);
    onB(['mv', '/var/lib/pgmam/raw.conf', `/var/lib/pgmam/rawcfg/${NAME}.conf`]);
    onB(['chmod', '-R', 'go+rX', '/var/lib/pgmam/rawcfg']);
    onB(['pg_createcluster', '15', 'raw', '--port', '27199']);
    onB(['rm', '-rf', '/var/lib/postgresql/15/raw']);
    onB(['install', '-d', '-o', 'postgres', '-g', 'postgres', '-m', '0700', '/var/lib/postgresql/15/raw']);
    onB(['runuser', '-u', 'postgres', '--', 'pgbackrest', '--config-include-path=/var/lib/pgmam/rawcfg', `--stanza=${NAME}`, '--archive-mode=off', 'restore']);
    onB(['pg_ctlcluster', '15', 'raw', 'start']);
    while (sqlB(27199, 'select pg_is_in_recovery()') !== 'f') sleep(100);
  };
  const t = { raw: [], pgmam: [] };
  for (let i = 0; i < rounds; i++) {
    t.raw.push(time(rawRestore));
    onB(['pg_dropcluster', '--stop', '15', 'raw']);
    onB(['mv', `/var/lib/pgmam/rawcfg/${NAME}.conf`, '/var/lib/pgmam/raw.conf']);
    t.pgmam.push(time(() => pgmamB(['recover', NAME, '--from-repo', 'fleet', '--as', 'b_copy', '--yes', '-q'])));
    const copyPort = JSON.parse(pgmamB(['list', '--json'])).find((e) => e.name === 'b_copy').port;
    if (sqlB(copyPort, 'select count(*) from pgbench_accounts') !== '2000000') throw new Error('the copy lacks rows');
    pgmamB(['drop', 'b_copy', '--purge-backups', '--yes', '-q']);
    console.log(`round ${i + 1}: raw restore to writable ${t.raw[i].toFixed(2)} s, pgmam recover --as ${t.pgmam[i].toFixed(2)} s`);
  }
  const m = { raw: median(t.raw), pgmam: median(t.pgmam) };
  console.log(`median time to a writable app on host B: raw ${m.raw.toFixed(2)} s, pgmam recover --as ${m.pgmam.toFixed(2)} s → ${(m.pgmam / m.raw).toFixed(2)}x (pgmam adds its own stanza, check and a full into the local repository and S3 before hand-over)`);

  // 2. RPO after a host loss, archive-timeout 60.
  const script = `${ROOT}/beat.sql`;
  writeFileSync(script, 'insert into beat values (clock_timestamp());\n');
  run('chmod', ['644', script]);
  asPg('/usr/lib/postgresql/15/bin/pgbench', ['-n', '-f', script, '-R', '10', '-T', '150', '-h', '/var/run/postgresql', '-p', String(port), 'postgres']);
  const newestA = sqlA("select max(t) from beat");
  run('pg_ctlcluster', ['15', NAME, 'stop', '-m', 'immediate']);
  const lossAt = Date.now();
  const takeover = time(() => pgmamB(['recover', NAME, '--from-repo', 'fleet', '--force', '--yes', '-q']));
  const bPort = JSON.parse(pgmamB(['list', '--json'])).find((e) => e.name === NAME).port;
  const newestB = sqlB(bPort, 'select max(t) from beat');
  const rpo = (Date.parse(newestA) - Date.parse(newestB)) / 1000;
  sqlB(bPort, 'insert into beat values (now())');
  console.log(`host loss: newest commit on A ${newestA}, newest restored on B ${newestB} → RPO ${rpo.toFixed(1)} s (archive-timeout 60); takeover (recover --force) to a writable app ${takeover.toFixed(2)} s, ${((Date.now() - lossAt) / 1000).toFixed(1)} s after the loss`);
} finally {
  cleanup();
}
