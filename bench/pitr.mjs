#!/usr/bin/env node
// Benchmark (by hand, not in CI): `pgmam pitr --to T` against the same raw steps it performs — WAL
// switch + wait, stop, move aside, restore --set --type=time, start, wait promoted, verify, full
// backup, check — alternately on one cluster holding `pgbench -i -s 20` (lz4, process-max 2).
// Prints medians and the ratio (target <= 1.10x). Usage (root): node bench/pitr.mjs [rounds=3]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

const rounds = Number(process.argv[2] ?? 3);
const ROOT = '/var/lib/pgmam-bench';
const CONF = `${ROOT}/pgmam.conf`;
const PGMAM = resolve(import.meta.dirname, '../bin/pgmam');
const NAME = 'b_pitr';
const PORT = 27110;
const DATA = `/var/lib/postgresql/15/${NAME}`;
const env = { ...process.env, PGMAM_CONFIG: CONF };

const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: '/tmp', env, ...opts }).toString().trim();
const asPg = (cmd, args) => run('runuser', ['-u', 'postgres', '--', cmd, ...args]);
const sql = (q) => asPg('/usr/lib/postgresql/15/bin/psql', ['-X', '-At', '-h', '/var/run/postgresql', '-p', String(PORT), '-d', 'postgres', '-c', q]);
const pgbr = (...args) => asPg('pgbackrest', [`--stanza=${NAME}`, ...args]);
const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

function cleanup() {
  if (existsSync(`/etc/pgbackrest/conf.d/${NAME}.conf`)) {
    try { pgbr('stop'); } catch {}
    try { pgbr('stanza-delete', '--force'); } catch {}
  }
  try { run('pg_dropcluster', ['--stop', '15', NAME]); } catch {}
  rmSync(`/etc/postgresql/15/${NAME}`, { recursive: true, force: true });
  rmSync(`/etc/pgbackrest/conf.d/${NAME}.conf`, { force: true });
  dropPreserved();
  rmSync(ROOT, { recursive: true, force: true });
}
function dropPreserved() {
  for (const d of readdirSync('/var/lib/postgresql/15')) if (d.startsWith(`${NAME}.`)) rmSync(`/var/lib/postgresql/15/${d}`, { recursive: true, force: true });
}

function rawPitr(target) {
  const tli = parseInt(sql('select pg_walfile_name(pg_current_wal_lsn())').slice(0, 8), 16);
  const backups = JSON.parse(pgbr('--output=json', 'info').replace(/"system-id":(\d+)/g, '"system-id":"$1"'))[0].backup;
  const targetSec = Math.floor(Date.parse(target.replace(' ', 'T').replace(/\+00$/, 'Z')) / 1000);
  const set = [...backups].reverse().find((b) => b.timestamp.stop < targetSec).label;
  sql('select txid_current()');
  const seg = sql('select pg_walfile_name(pg_switch_wal() - 1)');
  while (!(sql('select coalesce(last_archived_wal, \'\') from pg_stat_archiver') >= seg)) sleep(100);
  run('pg_ctlcluster', ['15', NAME, 'stop']);
  run('mv', [DATA, `${DATA}.raw-${Date.now()}`]);
  run('install', ['-d', '-o', 'postgres', '-g', 'postgres', '-m', '700', DATA]);
  pgbr(`--set=${set}`, '--type=time', '--target-action=promote', `--target=${target}`, `--target-timeline=${tli}`, 'restore');
  run('pg_ctlcluster', ['15', NAME, 'start']);
  while (sql('select pg_is_in_recovery()') !== 'f') sleep(100);
  sql("select pg_walfile_name(pg_current_wal_lsn()), pg_last_xact_replay_timestamp()");
  pgbr('--type=full', 'backup');
  pgbr('check');
}

function pgmamPitr(target) {
  const out = execFileSync(PGMAM, ['pitr', NAME, '--to', target, '--yes'], { stdio: ['ignore', 'pipe', 'pipe'], cwd: '/tmp', env });
  if (process.env.BENCH_VERBOSE) console.log(out.toString());
}

function nextTarget() {
  sleep(1100); // one whole second after the last backup's end
  sql('insert into bench_marks values (1)');
  const t = sql('select now()');
  sql('insert into bench_marks values (2)');
  return t;
}

const time = (fn) => { const t = performance.now(); fn(); return (performance.now() - t) / 1000; };
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

cleanup();
mkdirSync(ROOT, { recursive: true });
writeFileSync(CONF, `repo-path = ${ROOT}/repo\nstate-dir = ${ROOT}/state\nlog-file = ${ROOT}/pgmam.log\n`);
try {
  run(PGMAM, ['initcluster', NAME, '--port', String(PORT), '-q']);
  console.log('pgbench -i -s 20 ...');
  asPg('/usr/lib/postgresql/15/bin/pgbench', ['-i', '-s', '20', '-q', '-h', '/var/run/postgresql', '-p', String(PORT), 'postgres']);
  sql('create table bench_marks (v int)');
  pgbr('--type=full', 'backup');
  console.log(`data directory: ${run('du', ['-sh', DATA]).split('\t')[0]}`);
  const rawT = [], pgmamT = [];
  for (let i = 0; i < rounds; i++) {
    const tr = time(() => rawPitr(nextTarget()));
    dropPreserved();
    const tp = time(() => pgmamPitr(nextTarget()));
    dropPreserved();
    rawT.push(tr); pgmamT.push(tp);
    console.log(`round ${i + 1}: raw ${tr.toFixed(2)} s, pgmam ${tp.toFixed(2)} s`);
  }
  const mr = median(rawT), mp = median(pgmamT);
  console.log(`median raw ${mr.toFixed(2)} s, pgmam ${mp.toFixed(2)} s, ratio ${(mp / mr).toFixed(3)}x (target <= 1.10x)`);
} finally {
  cleanup();
}
