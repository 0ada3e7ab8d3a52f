// Shared fixtures for planner tests: the planning environment, a host cluster, a pgmam record.
import { defaultConfig } from '../../src/config/schema.js';
import { pathsFrom } from '../../src/context.js';
import type { PlanEnv } from '../../src/plan/command.js';
import type { HostCluster } from '../../src/pg/clusters.js';
import type { ManagedCluster } from '../../src/state/store.js';
import type { StanzaInfo } from '../../src/pgbackrest/info.js';
import type { NewClusterFacts } from '../../src/steps/new-cluster.js';

/** Default configuration and paths, no systemd (the planners read nothing else from the host). */
export const planEnv = (over: { systemd?: boolean } = {}): PlanEnv => ({
  config: defaultConfig,
  paths: pathsFrom(defaultConfig),
  host: { uid: 0, name: 'hosta', systemd: over.systemd ?? false, path: '', pid: 1, isProcessAlive: () => false, isGroupAlive: () => false, interrupted: () => undefined, pauseBefore: undefined },
});

/** A running cluster as pg_lsclusters shows it. */
export const aCluster = (name = 'app1', over: Partial<HostCluster> = {}): HostCluster => ({
  version: '15', name, port: 5433, running: true, dataDir: `/var/lib/postgresql/15/${name}`, configDir: `/etc/postgresql/15/${name}`,
  logFile: `/var/log/postgresql/postgresql-15-${name}.log`, socketDir: '/var/run/postgresql', startConf: 'auto', inRecovery: undefined, archiveCommand: undefined,
  ...over,
});

/** pgmam's record of a managed app (or branch). */
export const aRecord = (name = 'app1', over: Partial<ManagedCluster> = {}): ManagedCluster => ({
  format: 1, cluster: `15/${name}`, name, version: '15', role: 'app', parent: null, stanza: name, stanzaFile: `/etc/pgbackrest/conf.d/${name}.conf`,
  repoPath: '/var/lib/pgbackrest', createdAt: '2026-11-22T05:00:00.000Z', syncedAt: null, preserved: [], timelines: [], backupMark: null, repoMarks: {}, dropped: null, repos: [], origin: null, fenced: null, replication: null, successor: null, drill: null,
  ...over,
});

/** What gatherNewCluster finds on a host where the name and port are free. */
export const aNewCluster = (name = 'app1', over: Partial<NewClusterFacts> = {}): NewClusterFacts => ({
  dataDir: `/var/lib/postgresql/15/${name}`, nameTakenBy: [], port: 5433, portConfiguredBy: [], portHeldBy: undefined,
  repo: { path: '/var/lib/pgbackrest', exists: true, writableByPostgres: true }, disk: [{ path: '/var/lib/postgresql/15', freeBytes: 10 * 1024 ** 3 }],
  lock: { holder: undefined, alive: false }, attach: [], unreadableRepos: [], fqdn: undefined,
  ...over,
});

/** A stanza as `pgbackrest info --output=json` shows it: status ok, one archive on timeline 1, no backups unless given. */
export const aStanza = (name = 'app1', over: Partial<StanzaInfo> = {}): StanzaInfo => ({
  name, status: { code: 0, message: 'ok' }, archive: [{ id: '15-1', min: '000000010000000000000001', max: '000000010000000000000009' }], backup: [],
  db: [{ id: 1, 'system-id': '7710859106177468397', version: '15' }],
  ...over,
});
