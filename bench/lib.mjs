// What the benchmarks share: timing, medians, and removing the clusters a benchmark made (by its names).
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';

export const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
export const time = (fn) => { const t = performance.now(); fn(); return (performance.now() - t) / 1000; };

const quiet = (cmd, args) => { try { execFileSync(cmd, args, { stdio: 'ignore', cwd: '/tmp' }); } catch {} };

/** Each named cluster gone: its stanza (stopped, deleted), the cluster, its files and pgBackRest leftovers. */
export function removeBenchClusters(names) {
  for (const n of names) {
    if (existsSync(`/etc/pgbackrest/conf.d/${n}.conf`)) {
      quiet('runuser', ['-u', 'postgres', '--', 'pgbackrest', `--stanza=${n}`, 'stop']);
      quiet('runuser', ['-u', 'postgres', '--', 'pgbackrest', `--stanza=${n}`, 'stanza-delete', '--force']);
    }
    quiet('pg_dropcluster', ['--stop', '15', n]);
    for (const p of [`/etc/postgresql/15/${n}`, `/var/lib/postgresql/15/${n}`, `/etc/pgbackrest/conf.d/${n}.conf`, `/var/spool/pgbackrest/archive/${n}`, `/tmp/pgbackrest/${n}.stop`]) rmSync(p, { recursive: true, force: true });
  }
}
