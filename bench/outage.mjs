#!/usr/bin/env node
// Benchmark (by hand, not in CI): a long S3 outage under a steady client. One app on the local
// repository and an S3 one (a radosgw of its own on Ceph from Debian, test/integration/rgw.sh), `pgbench
// -R 20` writing throughout, archive-timeout 10 s. The gateway is killed for MINUTES; `pgmam backup`
// runs every 60 s as cron would (repo-suspend-mb SUSPEND_MB), then the gateway comes back. Prints, every
// 10 s: pg_wal size, WAL waiting (.ready), the newest segment in the local repository against the one
// being written; then pg_wal's peak, when the repository was suspended, how long until pg_wal drained,
// how long the re-attaching backup (a full) took, and what each repository holds.
// Usage (root): node bench/outage.mjs [minutes=10] [suspend-mb=256]
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

const minutes = Number(process.argv[2] ?? 10);
const suspendMb = Number(process.argv[3] ?? 256);
const ROOT = '/var/lib/pgmam-bench-outage';
const CONF = `${ROOT}/pgmam.conf`;
const PGMAM = resolve(import.meta.dirname, '../bin/pgmam');
const RGW = resolve(import.meta.dirname, '../test/integration/rgw.sh');
const NAME = 'b_outage';
const GW_PORT = 27985;
const env = { ...process.env, PGMAM_CONFIG: CONF };

const run = (cmd, args, ok = false) => {
  try {
    return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: '/tmp', env }).toString().trim();
  } catch (e) {
    if (ok) return `${e.stdout ?? ''}${e.stderr ?? ''}`.trim();
    throw e;
  }
};
const asPg = (cmd, args) => run('runuser', ['-u', 'postgres', '--', cmd, ...args]);
const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const dataDir = `/var/lib/postgresql/15/${NAME}`;
const mb = (bytes) => Math.round(bytes / 1024 / 1024);

function cleanup() {
  try { run(PGMAM, ['drop', NAME, '--purge-backups', '--yes', '-q']); } catch {}
  const file = `/etc/pgbackrest/conf.d/${NAME}.conf`;
  try { run('pg_dropcluster', ['--stop', '15', NAME]); } catch {}
  for (const p of [`/etc/postgresql/15/${NAME}`, dataDir, file, `/var/spool/pgbackrest/archive/${NAME}`]) rmSync(p, { recursive: true, force: true });
  try { run(RGW, ['stop', `${ROOT}/rgw`]); } catch {}
  rmSync(ROOT, { recursive: true, force: true });
}

const pgWalBytes = () => Number(run('du', ['-sb', `${dataDir}/pg_wal`]).split(/\s/)[0]);
const ready = () => readdirSync(`${dataDir}/pg_wal/archive_status`).filter((f) => /^[0-9A-F]{24}\.ready$/.test(f)).length;
const localNewest = () => {
  const base = `${ROOT}/repo/archive/${NAME}/15-1`;
  const dirs = existsSync(base) ? readdirSync(base).filter((d) => /^[0-9A-F]{16}$/.test(d)).sort() : [];
  const files = dirs.length ? readdirSync(`${base}/${dirs.at(-1)}`).filter((f) => /^[0-9A-F]{24}-/.test(f)).sort() : [];
  return files.at(-1)?.slice(0, 24) ?? '-';
};
const segNo = (s) => (s === '-' ? NaN : parseInt(s.slice(8), 16));

cleanup();
mkdirSync(ROOT, { recursive: true, mode: 0o755 });
writeFileSync(CONF, `repo-path = ${ROOT}/repo\nstate-dir = ${ROOT}/state\nlog-file = ${ROOT}/pgmam.log\nport-min = 27140\nport-max = 27149\narchive-timeout = 10\nrepo-suspend-mb = ${suspendMb}\n`);
let client;
try {
  run(RGW, ['start', `${ROOT}/rgw`, '27980']);
  run(RGW, ['gateway', `${ROOT}/rgw`, 'flaky', String(GW_PORT)]);
  const rgw = Object.fromEntries(readFileSync(`${ROOT}/rgw/env`, 'utf8').trim().split('\n').map((l) => l.split('=', 2)));
  run(PGMAM, ['repo', 'add', 's3', '--s3-endpoint', `localhost:${GW_PORT}`, '--s3-bucket', rgw.bucket, '--s3-key-file', rgw.key, '--ca-file', rgw.ca, '--path', '/bench', '-q']);
  run(PGMAM, ['initcluster', NAME, '-q']);
  const port = JSON.parse(run(PGMAM, ['list', '--json'])).find((e) => e.name === NAME).port;
  const sql = (q) => asPg('/usr/lib/postgresql/15/bin/psql', ['-X', '-At', '-h', '/var/run/postgresql', '-p', String(port), '-d', 'postgres', '-c', q]);
  asPg('/usr/lib/postgresql/15/bin/pgbench', ['-i', '-s', '5', '-q', '-h', '/var/run/postgresql', '-p', String(port), 'postgres']);
  run(PGMAM, ['backup', NAME, '--type', 'full', '--force', '-q']);
  const seconds = minutes * 60 + 240;
  client = spawn('runuser', ['-u', 'postgres', '--', '/usr/lib/postgresql/15/bin/pgbench', '-n', '-R', '20', '-T', String(seconds), '-h', '/var/run/postgresql', '-p', String(port), 'postgres'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let clientOut = '';
  client.stdout.on('data', (d) => (clientOut += d));
  client.stderr.on('data', (d) => (clientOut += d));
  const clientDone = new Promise((ok) => client.on('exit', (code) => ok(code)));
  sleep(20_000);
  console.log(`pg_wal before the outage: ${mb(pgWalBytes())} MB; pgbench -R 20 writing; archive-timeout 10 s; repo-suspend-mb ${suspendMb}`);
  run(RGW, ['gateway-stop', `${ROOT}/rgw`, 'flaky']);
  const t0 = Date.now();
  const at = () => ((Date.now() - t0) / 1000).toFixed(0).padStart(4);
  let peak = 0;
  let suspendedAt;
  let drainedAt;
  let lastBackup = Date.now();
  let maxLag = 0;
  console.log('   t  pg_wal MB  waiting  newest local   current   behind');
  while (Date.now() - t0 < minutes * 60_000) {
    const bytes = pgWalBytes();
    peak = Math.max(peak, bytes);
    const current = sql('select pg_walfile_name(pg_current_wal_lsn())');
    const local = localNewest();
    const behind = segNo(current) - segNo(local);
    maxLag = Math.max(maxLag, behind);
    console.log(`${at()}  ${String(mb(bytes)).padStart(9)}  ${String(ready()).padStart(7)}  ${local.slice(16)}  ${current.slice(16)}  ${String(behind).padStart(6)}`);
    if (suspendedAt && !drainedAt && ready() === 0) drainedAt = Date.now();
    if (Date.now() - lastBackup >= 60_000) {
      lastBackup = Date.now();
      const out = run(PGMAM, ['backup', NAME, '--json'], true);
      const suspended = /"result": "suspended"/.test(out);
      if (suspended && !suspendedAt) {
        suspendedAt = Date.now();
        console.log(`${at()}  backup suspended repository s3`);
      }
    }
    sleep(10_000);
  }
  run(RGW, ['gateway', `${ROOT}/rgw`, 'flaky', String(GW_PORT)]);
  const back = Date.now();
  console.log(`${at()}  gateway back`);
  const tb = Date.now();
  const out = run(PGMAM, ['backup', NAME, '--json'], true);
  const reattachS = (Date.now() - tb) / 1000;
  let caughtUp;
  for (let i = 0; i < 120; i++) {
    if (ready() === 0) { caughtUp = (Date.now() - back) / 1000; break; }
    sleep(1000);
  }
  const code = await clientDone;
  const info = (repo) => JSON.parse(asPg('pgbackrest', [`--stanza=${NAME}`, `--repo=${repo}`, '--output=json', 'info']).replace(/"system-id":(\d+)/g, '"system-id":"$1"'))[0];
  const holds = (repo) => {
    const i = info(repo);
    return `archive ${i.archive.map((a) => `${a.min}..${a.max}`).join(', ')}; backups ${i.backup.map((b) => `${b.type} ${b.label}`).join(', ')}`;
  };
  const rec = JSON.parse(readFileSync(`${ROOT}/state/clusters/${NAME}.json`, 'utf8'));
  console.log('');
  console.log(`outage: ${minutes} min; pgbench exit code ${code}; client errors: ${/error|abort/i.test(clientOut) ? 'yes' : 'none'}`);
  console.log(`pg_wal peak: ${mb(peak)} MB (repo-suspend-mb ${suspendMb}); local repository at most ${maxLag} segment(s) behind the one being written`);
  console.log(suspendedAt ? `suspended ${((suspendedAt - t0) / 1000).toFixed(0)} s into the outage; pg_wal drained ${drainedAt ? `${((drainedAt - suspendedAt) / 1000).toFixed(0)} s after` : 'not within the outage'}` : 'never suspended');
  console.log(`gateway back: the next backup took ${reattachS.toFixed(1)} s (${/"reattached": true/.test(out) ? 'put s3 back, a full into it' : 'no re-attach'}); WAL waiting 0 ${caughtUp === undefined ? 'not within 120 s' : `${caughtUp.toFixed(0)} s after the gateway came back`}`);
  console.log(`local holds: ${holds(1)}`);
  console.log(`s3 holds:    ${holds(2)}`);
  console.log(`s3's recorded gap: ${JSON.stringify(rec.repos[0].gaps)}`);
} finally {
  client?.kill();
  cleanup();
}
