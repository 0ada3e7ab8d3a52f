#!/usr/bin/env node
// Benchmark (by hand, not in CI): `pgmam branch create` against the same raw steps it performs —
// WAL switch on the parent, pg_createcluster, conf.d + stanza file, empty data dir, restore from the
// parent's stanza (--pg1-path, --archive-mode=off), postgres -C checks, start, wait promoted,
// stanza-create, archiving on (restart), check, full backup — alternately, from a parent holding
// `pgbench -i -s 20` (lz4, process-max 2). Prints medians and the ratio (target <= 1.10x).
// Usage (root): node bench/branch.mjs [rounds=3]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

const rounds = Number(process.argv[2] ?? 3);
const ROOT = '/var/lib/pgmam-bench';
const REPO = `${ROOT}/repo`;
const CONF = `${ROOT}/pgmam.conf`;
const PGMAM = resolve(import.meta.dirname, '../bin/pgmam');
const PARENT = 'b_par';
const PORT = 27120;
const BPORT = 27121;
const env = { ...process.env, PGMAM_CONFIG: CONF };

const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: '/tmp', env, ...opts }).toString().trim();
const asPg = (cmd, args) => run('runuser', ['-u', 'postgres', '--', cmd, ...args]);
const sql = (port, q) => asPg('/usr/lib/postgresql/15/bin/psql', ['-X', '-At', '-h', '/var/run/postgresql', '-p', String(port), '-d', 'postgres', '-c', q]);
const pgbr = (stanza, ...args) => asPg('pgbackrest', [`--stanza=${stanza}`, ...args]);
const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

function drop(name) {
  if (existsSync(`/etc/pgbackrest/conf.d/${name}.conf`)) {
    try { pgbr(name, 'stop'); } catch {}
    try { pgbr(name, 'stanza-delete', '--force'); } catch {}
  }
  try { run('pg_dropcluster', ['--stop', '15', name]); } catch {}
  for (const p of [`/etc/postgresql/15/${name}`, `/var/lib/postgresql/15/${name}`, `/etc/pgbackrest/conf.d/${name}.conf`, `${ROOT}/state/clusters/${name}.json`, `/var/spool/pgbackrest/archive/${name}`]) rmSync(p, { recursive: true, force: true });
}

function rawBranch(name) {
  const data = `/var/lib/postgresql/15/${name}`;
  const tli = parseInt(sql(PORT, 'select pg_walfile_name(pg_current_wal_lsn())').slice(0, 8), 16);
  const set = JSON.parse(pgbr(PARENT, '--output=json', 'info').replace(/"system-id":(\d+)/g, '"system-id":"$1"'))[0].backup.at(-1).label;
  sql(PORT, 'select txid_current()');
  const seg = sql(PORT, 'select pg_walfile_name(pg_switch_wal() - 1)');
  while (!(sql(PORT, "select coalesce(last_archived_wal, '') from pg_stat_archiver") >= seg)) sleep(100);
  run('pg_createcluster', ['15', name, '--port', String(BPORT), '--', '--data-checksums']);
  mkdirSync(`/etc/postgresql/15/${name}/conf.d`, { recursive: true });
  writeFileSync(`/etc/postgresql/15/${name}/conf.d/90-pgmam-archive.conf`, `wal_level = replica\narchive_mode = on\narchive_command = 'pgbackrest --stanza=${name} archive-push %p'\narchive_timeout = 60\n`);
  writeFileSync(`/etc/pgbackrest/conf.d/${name}.conf`, `[${name}]\npg1-path=${data}\npg1-port=${BPORT}\npg1-socket-path=/var/run/postgresql\nrepo1-path=${REPO}\nrepo1-retention-full=2\ncompress-type=lz4\nprocess-max=2\nstart-fast=y\n`, { mode: 0o640 });
  run('chown', ['postgres:postgres', `/etc/pgbackrest/conf.d/${name}.conf`]);
  rmSync(data, { recursive: true, force: true });
  run('install', ['-d', '-o', 'postgres', '-g', 'postgres', '-m', '700', data]);
  pgbr(PARENT, `--set=${set}`, `--pg1-path=${data}`, `--target-timeline=${tli}`, '--archive-mode=off', 'restore');
  for (const s of ['archive_mode', 'archive_command', 'port']) asPg('/usr/lib/postgresql/15/bin/postgres', ['-D', data, '-c', `config_file=/etc/postgresql/15/${name}/postgresql.conf`, '-C', s]);
  run('pg_ctlcluster', ['15', name, 'start']);
  while (sql(BPORT, 'select pg_is_in_recovery()') !== 'f') sleep(100);
  sql(BPORT, 'select pg_walfile_name(pg_current_wal_lsn()), pg_last_xact_replay_timestamp()');
  pgbr(name, 'stanza-create');
  run('pg_ctlcluster', ['15', name, 'stop']);
  const auto = `${data}/postgresql.auto.conf`;
  writeFileSync(auto, readFileSync(auto, 'utf8').split('\n').filter((l) => !/^\s*archive_mode\s*=/.test(l)).join('\n'));
  run('pg_ctlcluster', ['15', name, 'start']);
  pgbr(name, 'check');
  pgbr(name, '--type=full', 'backup');
}

const viaPgmam = (name) => run(PGMAM, ['branch', 'create', PARENT, '--name', name.slice(PARENT.length + 1), '--port', String(BPORT), '-q']);
const time = (fn) => { const t = performance.now(); fn(); return (performance.now() - t) / 1000; };
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

function cleanup() {
  for (const d of readdirSync('/etc/postgresql/15')) if (d.startsWith(`${PARENT}_`)) drop(d);
  drop(PARENT);
  rmSync(ROOT, { recursive: true, force: true });
}

cleanup();
mkdirSync(ROOT, { recursive: true });
writeFileSync(CONF, `repo-path = ${REPO}\nstate-dir = ${ROOT}/state\nlog-file = ${ROOT}/pgmam.log\nport-min = 27130\nport-max = 27199\n`);
try {
  run(PGMAM, ['initcluster', PARENT, '--port', String(PORT), '-q']);
  console.log('pgbench -i -s 20 ...');
  asPg('/usr/lib/postgresql/15/bin/pgbench', ['-i', '-s', '20', '-q', '-h', '/var/run/postgresql', '-p', String(PORT), 'postgres']);
  pgbr(PARENT, '--type=full', 'backup');
  const rawT = [], pgmamT = [];
  for (let i = 0; i < rounds; i++) {
    const a = `${PARENT}_raw${i}`, b = `${PARENT}_pgmam${i}`;
    const tr = time(() => rawBranch(a)); drop(a);
    const tp = time(() => viaPgmam(b)); drop(b);
    rawT.push(tr); pgmamT.push(tp);
    console.log(`round ${i + 1}: raw ${tr.toFixed(2)} s, pgmam ${tp.toFixed(2)} s`);
  }
  const mr = median(rawT), mp = median(pgmamT);
  console.log(`median raw ${mr.toFixed(2)} s, pgmam ${mp.toFixed(2)} s, ratio ${(mp / mr).toFixed(3)}x (target <= 1.10x)`);
} finally {
  cleanup();
}
