// Integration suite setup and the final leftovers check: the tools must be there (a missing binary
// is a failure, never a skip), and nothing a test made may remain when the suite ends.
import { execaSync } from 'execa';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { PGMAM, TEST_BASE, testNamesOnHost, removeTestCluster } from './helpers.js';

export function setup(): void {
  if (process.getuid?.() !== 0) throw new Error('integration tests run as root (they create real clusters)');
  // Ceph's daemons and tools: the real S3 server of the off-host tests (rgw.sh); xfsprogs and
  // util-linux/e2fsprogs for the copy-on-write branches on a loop-mounted XFS (branch-cow).
  for (const tool of ['pg_createcluster', 'pgbackrest', 'runuser', 'ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'ceph-authtool', 'monmaptool', 'uuidgen', 'openssl', 'curl', 'mkfs.xfs', 'xfs_info', 'findmnt', 'filefrag', 'logrotate'])
    if (execaSync('sh', ['-c', `command -v ${tool}`], { reject: false }).exitCode !== 0) throw new Error(`${tool} is not installed: the integration tests need it`);
  if (PGMAM.endsWith('/bin/pgmam') && !existsSync(PGMAM.replace(/bin\/pgmam$/, 'dist/pgmam.mjs'))) throw new Error('dist/pgmam.mjs is missing: run npm run build first');
  if (!existsSync(PGMAM)) throw new Error(`${PGMAM} (PGMAM_BIN) is missing: run npm run build first`);
  const stale = testNamesOnHost();
  if (stale.length) throw new Error(`test clusters left by an earlier run: ${stale.join(', ')} (remove them first)`);
  rmSync(TEST_BASE, { recursive: true, force: true });
}

export async function teardown(): Promise<void> {
  const left = testNamesOnHost();
  for (const n of left) await removeTestCluster(n);
  rmSync(TEST_BASE, { recursive: true, force: true });
  // Async archive-push status files of test stanzas (t_ names are the tests' own); drop removes its own, raw removals may not.
  const spool = '/var/spool/pgbackrest/archive';
  for (const d of existsSync(spool) ? readdirSync(spool) : []) if (d.startsWith('t_')) rmSync(`${spool}/${d}`, { recursive: true, force: true });
  removeStaleTestSockets();
  if (left.length) throw new Error(`leftovers after the suite (now removed): ${left.join(', ')}`);
}

/**
 * A test cluster's postmaster killed outright (a machine stopped mid-run) leaves its socket and lock
 * file: pgmam takes such a port again (host/facts portHolder), but their lock may name a PID reused
 * since. Only those whose lock names a t_ data directory and a process that is gone.
 */
function removeStaleTestSockets(): void {
  const dir = '/var/run/postgresql';
  for (const f of existsSync(dir) ? readdirSync(dir) : []) {
    const m = /^\.s\.PGSQL\.(\d+)\.lock$/.exec(f);
    if (!m) continue;
    const [pid, dataDir] = readFileSync(`${dir}/${f}`, 'utf8').split('\n');
    if (!/^\/var\/lib\/postgresql\/\d+\/t_[0-9a-f]{8}/.test(dataDir ?? '') || existsSync(`/proc/${Math.abs(Number(pid))}`)) continue;
    rmSync(`${dir}/.s.PGSQL.${m[1]}`, { force: true });
    rmSync(`${dir}/${f}`, { force: true });
  }
}
