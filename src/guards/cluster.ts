// Guards about one cluster's name, port, repository and lock.
import { fail, pass, type Guard } from '../plan/types.js';
import { holderText, type LockHolder } from '../state/lock.js';

/** Everything that would make a new cluster's name collide; each entry says where it was found. */
/** `freedByPurge`: only a dropped app's kept stanza and record take it, and the hint names the command that frees it. */
export const nameIsFree = (name: string, takenBy: string[], freedByPurge = false): Guard => ({
  id: 'name-is-free',
  check: () =>
    takenBy.length
      ? fail(
          `the name ${name} is already in use: ${takenBy.join('; ')}`,
          freedByPurge ? `a dropped app left them (pgmam list --all): pgmam purge ${name} deletes its kept backups and frees the name` : 'choose another name, or remove the leftovers if they are stale',
        )
      : pass,
});

export interface PortFacts {
  port: number | undefined;
  /** Clusters (15/app1) whose configuration names this port. */
  configuredBy: string[];
  /** What else holds it (host/facts portHolder), if anything. */
  heldBy: string | undefined;
  range: [number, number];
  explicit: boolean;
}

export const portIsFree = (f: PortFacts): Guard => ({
  id: 'port-is-free',
  check() {
    if (f.port === undefined) return fail(`no free port in the range ${f.range[0]}-${f.range[1]}`, 'pass --port, or widen port-min/port-max in the configuration');
    const why = [...(f.configuredBy.length ? [`configured by cluster ${f.configuredBy.join(', ')}`] : []), ...(f.heldBy ? [f.heldBy] : [])];
    return why.length ? fail(`port ${f.port} is not free: ${why.join(' and ')}`, 'choose another --port, or leave it out to get a free one') : pass;
  },
});

export interface RepoFacts {
  path: string;
  exists: boolean;
  /** Tested as postgres; undefined when it cannot be tested (not root). */
  writableByPostgres: boolean | undefined;
}

export const repoIsWritable = (f: RepoFacts): Guard => ({
  id: 'repo-is-writable',
  check() {
    if (!f.exists || f.writableByPostgres !== false) return pass;
    return fail(`the pgBackRest repository ${f.path} is not writable by postgres`, `chown postgres:postgres ${f.path}`);
  },
});

export const clusterIsNotLocked = (name: string, holder: LockHolder | undefined, alive: boolean): Guard => ({
  id: 'cluster-is-not-locked',
  check: () =>
    holder && alive
      ? fail(`${name} is locked by ${holderText(holder)}`, 'wait for it to finish')
      : pass,
});

/** The one wording of "not pgmam's" (every command): a dropped app's name is told what deletes what it left. */
export const notManaged = (name: string, dropped = false) =>
  fail(`${name} is not managed by pgmam`, dropped ? `${name} was dropped; pgmam purge ${name} deletes its kept backups and preserved directories, and frees the name` : 'see pgmam list');

/** The app names a managed cluster the host has. */
export const clusterIsManaged = (name: string, record: { cluster: string } | undefined, cluster: object | undefined): Guard => ({
  id: 'cluster-is-managed',
  check: () => (!record ? notManaged(name) : !cluster ? fail(`${record.cluster} is managed by pgmam but the host has no such cluster`, 'see pgmam list') : pass),
});
