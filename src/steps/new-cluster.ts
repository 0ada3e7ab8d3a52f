// What every new managed cluster needs, whether made empty (initcluster) or restored (branch):
// the name, port, repository and disk facts and guards, and the steps that give it its own
// archiving, stanza file, stanza, first full backup and pgmam record.
import { retentionOf } from '../config/schema.js';
import { HOLD_NOTE, retentionNow } from './retention.js';
import { effectiveArgv, renderArgv } from '../runner/types.js';
import { parseControlData } from '../pg/controldata.js';
import { type Recovery } from '../plan/command.js';
import { z } from 'zod';
import type { Context, Paths } from '../context.js';
import type { Config } from '../config/schema.js';
import { clusterIsNotLocked, nameIsFree, portIsFree, repoIsWritable } from '../guards/cluster.js';
import { enoughDisk } from '../guards/host.js';
import { ARCHIVE_CONF_NAME, renderArchiveConf } from '../pg/archive-conf.js';
import type { HostCluster } from '../pg/clusters.js';
import * as pg from '../pg/commands.js';
import * as pgbr from '../pgbackrest/commands.js';
import { localRepoLines, renderStanzaFile, SPOOL_PATH, type MainConfig } from '../pgbackrest/config.js';
import { archiveMax, lastBackup, parseInfo } from '../pgbackrest/info.js';
import { fail, pass, type Guard, type Step } from '../plan/types.js';
import type { Runner } from '../runner/types.js';
import type { LockHolder } from '../state/lock.js';
import type { Journal } from '../state/journal.js';
import { attachment, readRecord, recordPath, updateManaged, writeManaged, type ManagedCluster } from '../state/store.js';
import { choosePort, dataRootTemplate, hostFqdn, listeningPorts, lockFacts, repoPathFrom } from '../host/facts.js';
import { clusterTlsDir, issueCertificateStep, tlsRulesStep, type TlsSpec } from './tls.js';
import { expandDataRoot } from '../pg/data-root.js';
import { stanzaScope } from '../pgbackrest/commands.js';
import { autostartStep } from './autostart.js';
import { closeToUsersStep, handOverStep, savedHbaPath } from './hand-over.js';
import { backupAndMark, checkArchivingStep, readNextXid, stanzaInRepo } from './stanza.js';
import { backupShare } from './measures.js';
import { shownRepoLines, stanzaRepoLines } from './stanza-file.js';
import { MAX_REPO_INDEX, readRepos, type RepoRecord } from '../state/repos.js';
import { describeStanzaIn, readStanzaInRepo } from '../host/repo-stanza.js';

export interface NewClusterFacts {
  /** Where the new cluster's data goes (pg_createcluster -d), or an adopted cluster's own. */
  dataDir: string;
  /** Places where the name is already taken (cluster, config leftovers, stanza, records). */
  nameTakenBy: string[];
  /** What takes the name is a dropped app's leftovers (kept stanza, its record): pgmam purge frees it. */
  nameFreedByPurge?: boolean;
  port: number | undefined;
  portConfiguredBy: string[];
  /** What else holds the port (host/facts portHolder). */
  portHeldBy: string | undefined;
  repo: { path: string; exists: boolean; writableByPostgres: boolean | undefined };
  disk: Array<{ path: string; freeBytes: number | undefined }>;
  lock: { holder: LockHolder | undefined; alive: boolean };
  /** The repositories a new cluster is attached to besides the local one (attach-new), at their indexes. */
  attach: Array<{ index: number; repo: RepoRecord }>;
  /** Repositories pgmam cannot read (a new cluster would miss them), or cannot ask whether they hold the name. */
  unreadableRepos: string[];
  /** The host's FQDN, one of the names its server certificate carries. */
  fqdn: string | undefined;
}

export interface NewClusterQuery {
  name: string;
  version: string;
  port: number | undefined;
  installedPg: string[];
  clusters: HostCluster[];
  managed: ManagedCluster[];
  main: MainConfig;
  /** pgBackRest can be run (root, tool present): the repository can be probed as postgres. */
  canProbeRepo: boolean;
  /** An adopted cluster's own, or a branch's beside its parent; default: the data-root template. */
  dataDir?: string;
  /** Repositories (by name) the new cluster is attached to besides the attach-new ones (recover's --from-repo). */
  attachAlso?: string[];
  /** The repository whose stanza of this name the new cluster continues (a takeover): not a collision there. */
  continues?: string;
}

/** Read-only (runner must be the read-only one). */
export async function gatherNewCluster(ctx: Context, runner: Runner, q: NewClusterQuery): Promise<NewClusterFacts> {
  const { config, paths } = ctx;
  const [listening, lock, dataRoot] = await Promise.all([listeningPorts(ctx.fs), lockFacts(ctx, q.name), dataRootTemplate(ctx)]);
  const dataDir = q.dataDir ?? expandDataRoot(dataRoot, q);
  const repoPath = repoPathFrom(config['repo-path'], q.main);
  const stanzaFile = `${paths.stanzaDir}/${q.name}.conf`;

  const taken: string[] = [];
  for (const c of q.clusters) if (c.name === q.name) taken.push(`cluster ${c.version}/${c.name} exists`);
  // Leftovers of a dropped cluster: pg_dropcluster leaves a config dir holding files it did not create,
  // and a later pg_createcluster would silently reuse a stale archive_command from it.
  for (const v of q.installedPg) {
    if (q.clusters.some((c) => c.version === v && c.name === q.name)) continue;
    for (const p of [pg.confDirOf({ version: v, name: q.name }), expandDataRoot(dataRoot, { version: v, name: q.name })]) if (await ctx.fs.exists(p)) taken.push(`${p} exists`);
  }
  // An adopted cluster's data directory is its own; a new one must not land on anything already there.
  if (q.dataDir === undefined || !q.clusters.some((c) => c.name === q.name)) if (await ctx.fs.exists(dataDir)) taken.push(`${dataDir} exists`);
  if (await ctx.fs.exists(stanzaFile)) taken.push(`stanza file ${stanzaFile} exists`);
  if (q.main.sections.includes(q.name)) taken.push(`stanza [${q.name}] is configured in ${q.main.file}`);
  // The repository is readable by root and postgres only; a non-root run is refused by runs-as-root anyway.
  if (ctx.host.uid === 0)
    if (await stanzaInRepo(ctx.fs, repoPath, q.name)) taken.push(`stanza ${q.name} exists in repository ${repoPath}`);
  const rec = q.managed.find((r) => r.name === q.name);
  if (rec) taken.push(`pgmam record ${recordPath(paths.clustersDir, q.name)} exists${rec.dropped ? ' (of a dropped app)' : ''}`);
  // Only what a drop keeps (no cluster, no live record): purge is the command that frees the name.
  const nameFreedByPurge = taken.length > 0 && !q.clusters.some((c) => c.name === q.name) && (rec ? rec.dropped !== null : true) && taken.every((t) => /^(stanza |pgmam record )/.test(t));

  const chosen = await choosePort(ctx, q.clusters, listening, q.port);

  const repoExists = await ctx.fs.exists(repoPath).catch(() => true);
  const writableByPostgres =
    repoExists && q.canProbeRepo ? (await runner.run({ argv: ['test', '-w', repoPath], asUser: 'postgres', effect: 'read' }, { check: false })).exitCode === 0 : undefined;
  const repos = await readRepos(ctx.fs, paths.stateDir);
  const unreadable = [...repos.unreadable];
  for (const n of q.attachAlso ?? []) if (!repos.repos.some((r) => r.name === n)) unreadable.push(`repository ${n} (pgmam has no such repository)`);
  const attach = repos.repos.filter((r) => r.attachNew || (q.attachAlso ?? []).includes(r.name)).map((repo, i) => ({ index: i + 2, repo }));
  // Hosts sharing a repository share its stanza names: the name must be free in every repository the cluster gets.
  if (ctx.host.uid === 0)
    for (const x of await Promise.all(attach.map((a) => readStanzaInRepo(ctx, runner, a.repo, q.name)))) {
      if (x.exists === undefined) unreadable.push(`cannot tell whether repository ${x.repo} holds a stanza ${q.name}: ${x.problem}`);
      else if (x.exists && x.repo !== q.continues) taken.push(describeStanzaIn(q.name, x));
    }
  const diskPaths = [...new Set([dataDir.replace(/\/[^/]+$/, '') || '/', repoPath])];
  const disk = await Promise.all(diskPaths.map(async (p) => ({ path: p, freeBytes: await ctx.fs.freeBytes(p).catch(() => undefined) })));

  return {
    dataDir,
    nameTakenBy: [...new Set(taken)],
    nameFreedByPurge,
    ...chosen,
    repo: { path: repoPath, exists: repoExists, writableByPostgres },
    disk,
    lock,
    attach,
    unreadableRepos: unreadable,
    fqdn: await hostFqdn(runner, ctx.host.name),
  };
}

export function newClusterGuards(f: NewClusterFacts, name: string, explicitPort: boolean, config: Config, extraBytes = 0): Guard[] {
  return [
    nameIsFree(name, f.nameTakenBy, f.nameFreedByPurge),
    portIsFree({ port: f.port, configuredBy: f.portConfiguredBy, heldBy: f.portHeldBy, range: [config['port-min'], config['port-max']], explicit: explicitPort }),
    repoIsWritable(f.repo),
    enoughDisk(
      f.disk.map((d) => ({ ...d, freeBytes: d.freeBytes === undefined ? undefined : d.freeBytes - extraBytes })),
      config['min-free-mb'],
    ),
    clusterIsNotLocked(name, f.lock.holder, f.lock.alive),
    reposAreUsable(f),
  ];
}

/** A new (or adopted) cluster is attached to every attach-new repository: pgmam must read them all, and a stanza take them. */
export const reposAreUsable = (f: Pick<NewClusterFacts, 'unreadableRepos' | 'attach'>): Guard => ({
  id: 'repos-are-usable',
  check: () =>
    f.unreadableRepos.length
      ? fail(`cannot read ${f.unreadableRepos.join('; ')}`, 'a new cluster is attached to every repository added with attach-new: each must answer, and its record be readable')
      : f.attach.some((a) => a.index > MAX_REPO_INDEX)
        ? fail(`${f.attach.length} repositories are added with attach-new, but a stanza takes ${MAX_REPO_INDEX - 1} besides the local one`, 'pgmam repo add … --attach-new no, or pgmam repo remove one')
        : pass,
});

const indent = (text: string) => text.trimEnd().split('\n').map((l) => `  | ${l}`);

export interface NewClusterSpec {
  id: pg.ClusterId;
  /** From the facts (gatherNewCluster): never derived from the name. */
  dataDir: string;
  /** An adopted cluster keeps its own wal_level. */
  adopted?: boolean;
  port: number;
  repo: NewClusterFacts['repo'];
  /** Repositories besides the local one (default none). */
  attach?: NewClusterFacts['attach'];
  owner: { uid: number; gid: number };
  config: Config;
  paths: Paths;
  systemd: boolean;
  /** This host's name and the cluster's role: the annotations of its backups (a shared repository names who they are of). */
  hostName: string;
  role: ManagedCluster['role'];
  /** The host's FQDN (gathered), for the server certificate. */
  fqdn?: string | undefined;
  /**
   * Repositories whose copy of the stanza this run did not create (a takeover continues a stanza another
   * host made): stanza-create's undo and the rollback never delete it there.
   */
  sharedRepos?: string[];
}

/** The steps, by name, so each command orders them as it needs. Undo steps are idempotent. */
export function newClusterSteps(s: NewClusterSpec) {
  const { id, port, owner, paths } = s;
  const name = id.name;
  const label = pg.clusterLabel(id);
  const dataDir = s.dataDir;
  const confDir = pg.confDirOf(id);
  const stanzaFile = `${paths.stanzaDir}/${name}.conf`;
  const scope = stanzaScope(name, paths.stanzaDir);
  const archiveConf = renderArchiveConf({ stanza: name, archiveTimeout: s.config['archive-timeout'], configIncludePath: scope.configIncludePath, keepWalLevel: s.adopted === true });
  const attach = s.attach ?? [];
  const attached = attach.map((a) => ({ name: a.repo.name, index: a.index }));
  const base = { stanza: name, dataDir, port, socketDir: pg.SOCKET_DIR, compressType: s.config['compress-type'], processMax: s.config['process-max'], archiveIoTimeout: s.config['archive-io-timeout'], annotations: { host: s.hostName, app: name, role: s.role } };
  const shared = new Set(s.sharedRepos ?? []);
  /** The attached repositories whose stanza this run creates, and may delete again. */
  const ownCopies = attached.filter((a) => !shared.has(a.name));
  const local = { path: s.repo.path, retention: retentionOf(s.config) };
  // Shown with its secrets redacted; the file gets them when the step runs.
  const stanzaText = renderStanzaFile(base, [...localRepoLines(local.path, local.retention), ...shownRepoLines(attach)]);
  const record = recordPath(paths.clustersDir, name);
  const certDir = clusterTlsDir(s.config['tls-dir'], id);
  const tls: TlsSpec = { id, config: s.config, hostName: s.hostName, fqdn: s.fqdn, owner };

  const createRepo: Step[] = s.repo.exists
    ? []
    : [
        {
          id: 'create-repo',
          title: `create the pgBackRest repository ${s.repo.path}`,
          effect: 'write',
          run: (ctx) => ctx.fs.mkdirp(s.repo.path, { mode: 0o750, owner }),
          show: [`mkdir -p -m 0750 ${s.repo.path} (owner postgres)`],
        },
      ];
  const verifyPitrReady: Step = {
    id: 'verify-pitr-ready',
    title: 'verify the backup is listed and its WAL archived',
    effect: 'read',
    run: async (ctx) => {
      const stanza = parseInfo((await ctx.runner.run(pgbr.info(scope))).stdout)[0];
      const b = stanza && lastBackup(stanza);
      if (!stanza || !b || b.type !== 'full') throw new Error(`pgbackrest info lists no full backup for stanza ${name}`);
      const max = archiveMax(stanza);
      if (!max || !b.archive?.stop || max.wal < b.archive.stop) throw new Error(`WAL ${b.archive?.stop ?? '?'} of backup ${b.label} is not archived yet`);
    },
    show: [`$ runuser -u postgres -- pgbackrest --stanza=${name} --output=json info  (a full backup, its stop WAL archived)`],
  };
  /** The record that makes it managed: written last, so a half-made cluster is never listed as managed. */
  const recordManaged = (r: { role: ManagedCluster['role']; parent: string | null; createdAt: string; origin?: ManagedCluster['origin'] }): Step => {
    const rec: ManagedCluster = {
      format: 1,
      cluster: label,
      name,
      version: id.version,
      role: r.role,
      parent: r.parent,
      stanza: name,
      stanzaFile,
      repoPath: s.repo.path,
      createdAt: r.createdAt,
      syncedAt: null,
      preserved: [],
      timelines: [],
      backupMark: null,
      dropped: null,
      repoMarks: {},
      repos: attached.map((a) => attachment(a.name, a.index)),
      origin: r.origin ?? null,
      fenced: null,
      replication: null,
      successor: null,
      drill: null,
    };
    return {
      id: 'record-managed',
      title: `record ${label} as managed by pgmam`,
      effect: 'write',
      run: (ctx) => writeManaged(ctx.fs, paths.clustersDir, rec),
      show: [`write ${record}`],
      undo: { title: `remove ${record}`, run: (ctx) => ctx.fs.rm(record) },
    };
  };

  return {
    scope,
    dataDir,
    confDir,
    stanzaFile,
    /** For the journal: what a re-run after an interruption removes before it creates again. */
    journal: { version: id.version, dataDir, confDir, stanzaFile, repoPath: s.repo.path, repos: ownCopies, certDir } satisfies NewClusterJournal,
    createRepo,
    createCluster: {
      id: 'create-cluster',
      title: `create cluster ${label} on port ${port}`,
      effect: 'write',
      // The new cluster's system identifier goes into the journal: a recovery acts only on this cluster.
      run: async (ctx) => {
        await ctx.runner.run(pg.createCluster(id, port, dataDir));
        const r = await ctx.runner.run(pg.pgControlData(id.version, dataDir), { check: false });
        return { journal: { systemId: parseControlData(r.stdout).systemId } };
      },
      show: [`$ ${renderArgv(pg.createCluster(id, port, dataDir).argv)}`, `$ ${renderArgv(pg.pgControlData(id.version, dataDir).argv)}  (its system identifier, for the journal)`],
      undo: {
        title: `drop cluster ${label} and remove ${confDir}`,
        run: async (ctx) => {
          await ctx.runner.run(pg.dropCluster(id), { check: false });
          // pg_dropcluster leaves the config directory when it holds files it did not create (our conf.d).
          await ctx.fs.rm(confDir, { recursive: true });
          await ctx.fs.rm(dataDir, { recursive: true });
        },
        show: [`$ pg_dropcluster --stop ${id.version} ${name}`, `rm -rf ${confDir} ${dataDir}`],
      },
    } satisfies Step,
    configureArchiving: {
      id: 'configure-archiving',
      title: `archive WAL to stanza ${name} (${confDir}/conf.d/${ARCHIVE_CONF_NAME})`,
      effect: 'write',
      run: async (ctx) => {
        await ctx.fs.mkdirp(`${confDir}/conf.d`, { mode: 0o755, owner });
        await ctx.fs.writeFileAtomic(`${confDir}/conf.d/${ARCHIVE_CONF_NAME}`, archiveConf, { mode: 0o644, owner });
      },
      show: [`write ${confDir}/conf.d/${ARCHIVE_CONF_NAME} (0644 postgres):`, ...indent(archiveConf)],
    } satisfies Step,
    writeStanzaFile: {
      id: 'write-stanza-file',
      title: `write the stanza file ${stanzaFile}`,
      effect: 'write',
      run: async (ctx) => {
        await ctx.fs.mkdirp(paths.stanzaDir, { mode: 0o755 });
        // root:postgres 0640: pgBackRest (as postgres) reads it; only root changes it.
        const text = renderStanzaFile(base, await stanzaRepoLines(ctx, local, attached));
        // Status files a dropped cluster of the same name left would answer "pushed" for segments never pushed.
        await ctx.runner.run(pgbr.clearSpool(name));
        await ctx.fs.writeFileAtomic(stanzaFile, text, { mode: 0o640, owner: { uid: 0, gid: owner.gid } });
      },
      show: [`write ${stanzaFile} (0640 root:postgres):`, ...indent(stanzaText)],
      undo: {
        title: `remove ${stanzaFile} and the stanza's archive-push status files`,
        run: async (ctx) => {
          await ctx.fs.rm(stanzaFile);
          await ctx.runner.run(pgbr.clearSpool(name));
        },
        show: [`rm -f ${stanzaFile}`, `$ runuser -u postgres -- rm -rf -- ${SPOOL_PATH}/archive/${name}`],
      },
    } satisfies Step,
    /** Before the first start (ssl = on needs its files): its own certificate, and the TLS rules into the rules hand-over puts back. */
    enableTls: [
      { ...issueCertificateStep(tls), undo: { title: `remove ${certDir}`, run: (ctx: Context) => ctx.fs.rm(certDir, { recursive: true }) } },
      tlsRulesStep(id, paths.stateDir, s.config['tls-required'] === 'yes', s.systemd),
    ] satisfies Step[],
    startCluster: { id: 'start-cluster', title: `start ${label}`, effect: 'write', run: pg.controlCluster(id, 'start', s.systemd) } satisfies Step,
    createStanza: {
      id: 'create-stanza',
      title: `create stanza ${name} in ${[s.repo.path, ...attach.map((a) => `repository ${a.repo.name}`)].join(' and ')}`,
      effect: 'write',
      run: pgbr.stanzaCreate(scope),
      undo: {
        title: `delete stanza ${name} from ${s.repo.path}`,
        run: async (ctx) => {
          await ctx.runner.run(pgbr.stop(scope), { check: false });
          await deleteFromAttached(ctx, scope, ownCopies);
          const del = await ctx.runner.run(pgbr.stanzaDelete(scope, true, 1), { check: false });
          // stanza-delete removes the stop file; if it failed, start again so the stanza is not left stopped.
          if (del.exitCode !== 0) await ctx.runner.run(pgbr.start(scope), { check: false });
          for (const sub of ['backup', 'archive'])
            if (await ctx.fs.exists(`${s.repo.path}/${sub}/${name}`)) throw new Error(`${s.repo.path}/${sub}/${name} is still there: ${del.stderr.trim()}`);
        },
        show: [`$ runuser -u postgres -- pgbackrest --stanza=${name} stop`, `$ runuser -u postgres -- pgbackrest --stanza=${name} stanza-delete --force`],
      },
    } satisfies Step,
    /** Right after create-cluster: closed to users until handOver, the last step. */
    closeToUsers: closeToUsersStep(id, paths.stateDir, s.systemd),
    handOver: handOverStep(id, paths.stateDir, s.systemd),
    checkArchiving: checkArchivingStep(scope, name),
    backupAndMark: (why: string) => backupAndMark(scope, name, why, retentionOf(s.config), { version: id.version, port }),
    /** A first full backup into each attached repository (the local one has its own, with the mark). */
    backupsIntoAttached: (why: string): Step[] => attach.map((a) => backupIntoStep(scope, name, why, a, { version: id.version, port })),
    verifyPitrReady,
    /** How a new or adopted app ends: archiving checked, first full backup verified, record, backup mark, autostart. */
    firstBackupAndRecord: (r: { role: ManagedCluster['role']; parent: string | null; createdAt: string }): Step[] => {
      const first = backupAndMark(scope, name, 'the first full backup', retentionOf(s.config), { version: id.version, port });
      // Into the attached repositories once the record exists: each backup's mark goes into it.
      const attached = attach.map((a) => backupIntoStep(scope, name, 'the first full backup', a, { version: id.version, port }));
      return [checkArchivingStep(scope, name), first.backup, verifyPitrReady, recordManaged(r), first.mark, ...attached, autostartStep(id, true, s.systemd)];
    },
    recordManaged,
  };
}

/** What a new cluster's plan records, so a re-run can remove what an interrupted run made. */
export const newClusterJournalSchema = z.object({
  version: z.string(),
  dataDir: z.string(),
  confDir: z.string(),
  stanzaFile: z.string(),
  repoPath: z.string(),
  /** Repositories besides the local one whose copy of the stanza the run created (a rollback deletes it there). */
  repos: z.array(z.object({ name: z.string(), index: z.number() })).default([]),
  /** Recorded by create-cluster; a branch's restore brings its parent's (sourceSystemId). */
  systemId: z.string().optional(),
  sourceSystemId: z.string().optional(),
  /** The cluster's own certificate directory under tls-dir (pgmam's, root-owned). */
  certDir: z.string().optional(),
  /** A password initcluster generated for the owner (secrets-dir): removed with the cluster by a rollback. */
  secretFile: z.string().optional(),
});
export type NewClusterJournal = z.infer<typeof newClusterJournalSchema>;

/** Remove the cluster, stanza, stanza file and record an interrupted initcluster or branch create made: only before hand-over (handedOver). */
export function rollbackNewClusterSteps(ctx: Pick<Context, 'paths'>, j: Journal, d: NewClusterJournal, exists: boolean): Step[] {
  const id = { version: d.version, name: j.name };
  const scope = stanzaScope(j.name, ctx.paths.stanzaDir);
  const record = recordPath(ctx.paths.clustersDir, j.name);
  return [
    ...(exists ? [{ id: 'drop-cluster', title: `drop the half-made cluster ${j.target}`, effect: 'destroy' as const, run: pg.dropCluster(id) }] : []),
    {
      id: 'remove-cluster-files',
      title: `remove ${d.confDir} and ${d.dataDir}${d.certDir ? ` and ${d.certDir}` : ''}`,
      effect: 'destroy',
      run: async (c) => {
        await c.fs.rm(d.confDir, { recursive: true });
        await c.fs.rm(d.dataDir, { recursive: true });
        if (d.certDir) await c.fs.rm(d.certDir, { recursive: true });
      },
      show: [`rm -rf ${d.confDir} ${d.dataDir}${d.certDir ? ` ${d.certDir}` : ''}`],
    },
    {
      // The stanza carries the new cluster's own name: the guards refused the run if it existed before.
      id: 'delete-stanza',
      title: `delete stanza ${j.name} from ${d.repoPath}, if the interrupted run created it`,
      effect: 'destroy',
      run: async (c) => {
        const made = (await c.fs.exists(`${d.repoPath}/backup/${j.name}`)) || (await c.fs.exists(`${d.repoPath}/archive/${j.name}`));
        if (!made) return;
        if (!(await c.fs.exists(d.stanzaFile))) throw new Error(`stanza ${j.name} is in ${d.repoPath} but ${d.stanzaFile} is gone: delete it by hand`);
        await c.runner.run(pgbr.stop(scope), { check: false });
        await deleteFromAttached(c, scope, d.repos);
        await c.runner.run(pgbr.stanzaDelete(scope, true, 1));
        await c.runner.run(pgbr.start(scope), { check: false });
      },
      show: ['stop', 'stanza-delete --force', 'start'].map((a) => `$ runuser -u postgres -- pgbackrest --stanza=${j.name} ${a}  (only if ${d.repoPath} holds it)`),
    },
    {
      id: 'remove-stanza-file',
      title: `remove ${d.stanzaFile} and ${record}`,
      effect: 'destroy',
      run: async (c) => {
        await c.fs.rm(d.stanzaFile);
        await c.fs.rm(record);
        await c.fs.rm(savedHbaPath(c.paths.stateDir, j.name));
      },
    },
  ];
}

/** An interrupted run that had begun the hand-over (the last step): hand over again, and it is complete. */
export async function finishHandOver(ctx: Context, j: Journal, d: NewClusterJournal): Promise<Recovery> {
  const id = { version: d.version, name: j.name };
  return { way: 'finished', steps: [handOverStep(id, ctx.paths.stateDir, ctx.host.systemd)], finished: `${j.target} was handed over; ${j.command} is complete\n` };
}

/**
 * A full backup into one attached repository, with that repository's own retention; then its mark in
 * the record (when there is one), so backup's change detection skips that repository until a write.
 */
export const backupIntoStep = (scope: pgbr.PgbrScope, name: string, why: string, a: { index: number; repo: RepoRecord }, at: { version: string; port: number }): Step => {
  const cmd = pgbr.backup(scope, 'full', a.repo.retention, a.index);
  return {
    id: `backup-full-repo${a.index}`,
    title: `take ${why} of ${name} into repository ${a.repo.name} (repo${a.index})`,
    effect: 'write',
    progress: backupShare(`full backup of ${name} into repository ${a.repo.name}`, scope.stanza ?? name),
    run: async (ctx) => {
      const nextXid = await readNextXid(ctx.runner, at.version, at.port);
      const held = pgbr.backup(scope, 'full', await retentionNow(ctx, name, scope, a.repo.retention, a.index, 'full'), a.index);
      const out = await ctx.runner.run({ ...held, argv: [held.argv[0]!, '--log-level-console=info', ...held.argv.slice(1)] });
      const label = /new backup label = (\S+)/.exec(out.stdout)?.[1];
      if (label && nextXid && (await readRecord(ctx.fs, ctx.paths.clustersDir, name)))
        await updateManaged(ctx.fs, ctx.paths.clustersDir, name, (r) => ({ ...r, repoMarks: { ...r.repoMarks, [a.repo.name]: { label, nextXid } } }));
    },
    show: [`$ ${renderArgv(effectiveArgv(cmd, 0))}`, HOLD_NOTE, `  then remember its label and the transaction position read before it (change detection)`],
  };
};

/**
 * The stanza's copies in the attached repositories a run made, deleted one repository at a time. An
 * unreachable repository keeps its copy (logged): it holds only what this run made.
 */
async function deleteFromAttached(ctx: Pick<Context, 'runner' | 'log'>, scope: pgbr.PgbrScope, repos: ReadonlyArray<{ name: string; index: number }>): Promise<void> {
  // Each stanza-delete removes the stanza's stop file, and the next one requires it: stopped again after each.
  for (const r of repos) {
    const del = await ctx.runner.run(pgbr.stanzaDelete(scope, true, r.index), { check: false });
    if (del.exitCode !== 0) ctx.log.warn({ event: 'stanza-delete-failed', repo: r.name }, `could not delete stanza ${scope.stanza} from repository ${r.name}; delete it there by hand`);
    await ctx.runner.run(pgbr.stop(scope), { check: false });
  }
}
