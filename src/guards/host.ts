// Guards over the host as a whole: who runs pgmam, which tools and versions are there, free disk.
import { fail, pass, type Guard } from '../plan/types.js';
import { newestSupportedPg } from '../pgbackrest/commands.js';

export const runsAsRoot = (uid: number, what = 'change clusters'): Guard => ({
  id: 'runs-as-root',
  check: () => (uid === 0 ? pass : fail(`pgmam must run as root to ${what} (running as uid ${uid})`, 'run it with sudo')),
});

export const toolsAreInstalled = (tools: Record<string, string | undefined>): Guard => ({
  id: 'tools-are-installed',
  check() {
    const missing = Object.entries(tools).filter(([, p]) => !p).map(([t]) => t);
    return missing.length
      ? fail(`required tool${missing.length > 1 ? 's' : ''} not found in PATH: ${missing.join(', ')}`, 'apt-get install postgresql pgbackrest')
      : pass;
  },
});

export interface VersionFacts {
  /** The major pgmam would use (configured or chosen). */
  pgVersion: string | undefined;
  configured: boolean;
  installed: string[];
  pgbackrestVersion: string | undefined;
}

export const pgVersionIsSupported = (f: VersionFacts): Guard => ({
  id: 'pg-version-is-supported',
  check() {
    if (!f.pgbackrestVersion) return pass; // reported by tools-are-installed, or unreadable as non-root
    const max = newestSupportedPg(f.pgbackrestVersion);
    if (!f.installed.length) return fail('no PostgreSQL server is installed', 'apt-get install postgresql');
    if (!f.pgVersion)
      return fail(
        `pgBackRest ${f.pgbackrestVersion} supports PostgreSQL up to ${max}; installed: ${f.installed.join(', ')}`,
        `install a newer pgBackRest or PostgreSQL ${max} or older`,
      );
    if (!f.installed.includes(f.pgVersion))
      return fail(`PostgreSQL ${f.pgVersion} is not installed (installed: ${f.installed.join(', ')})`, `apt-get install postgresql-${f.pgVersion}`);
    if (Number(f.pgVersion) > max)
      return fail(`pgBackRest ${f.pgbackrestVersion} cannot back up PostgreSQL ${f.pgVersion} (it supports up to ${max})`, 'upgrade pgBackRest or choose an older pg-version');
    return pass;
  },
});

export interface DiskFacts {
  path: string;
  freeBytes: number | undefined;
}

export const enoughDisk = (places: DiskFacts[], minFreeMb: number): Guard => ({
  id: 'enough-disk',
  check() {
    const short = places.filter((p) => p.freeBytes !== undefined && p.freeBytes < minFreeMb * 1024 * 1024);
    return short.length
      ? fail(
          `not enough free disk: ${short.map((p) => `${p.path} has ${Math.floor(p.freeBytes! / 1048576)} MB free`).join(', ')} (need ${minFreeMb} MB)`,
          'free some space, or lower min-free-mb in the configuration',
        )
      : pass;
  },
});
