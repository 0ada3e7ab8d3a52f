// `pgmam recover <app> --from-repo <repo> [--to T | --latest] [--as NEW] [--port P]`, on a host that
// has never seen the app: its backups and archive in a shared repository restored into a new cluster
// here. `--as NEW`: a copy with its own new stanza; the origin may still run and its stanza gains
// nothing of the copy's timeline (a branch's isolation). Without --as: a takeover — the origin host is
// lost, and the app continues here under its own name and stanza, on a new timeline, archiving into
// the same stanza; refused while that archive still receives WAL (takeover-min-idle) unless --force.
// Both end managed here: archiving on, attached to the repository, a full backup, check passed.
import { z } from 'zod';
import type { Context } from '../../context.js';
import { UsageError } from '../../errors.js';
import { runsAsRoot } from '../../guards/host.js';
import { findTools, installedPgVersions, managedClusters, postgresOwner, readClusters, readMainConfig } from '../../host/facts.js';
import { nameSchema, optionalNameArg, nameArg, portArg } from '../../names.js';
import { archiveCommandFor } from '../../pg/archive-conf.js';
import * as pg from '../../pg/commands.js';
import { flag } from '../../plan/cli-spec.js';
import { runFlagsSchema, type CommandModule, type PlanBody, type PlanEnv, type Recovery } from '../../plan/command.js';
import { fail, pass, required, type Guard, type Step } from '../../plan/types.js';
import * as pgbr from '../../pgbackrest/commands.js';
import { repoLines, repoOptions } from '../../pgbackrest/repo-options.js';
import { expectOf, restoreEnv, restoreSequence } from '../../restore/sequence.js';
import { backupWalArchived, emptySource, hasBackupGuard, selectSet, targetGuards, timelineHistoryAvailable } from '../../restore/source.js';
import { archiveNewHistoryStep, enableArchivingStep, recordTimelineStep, type LiveCluster } from '../../restore/steps.js';
import { parseTarget, targetTimeSchema } from '../../restore/target.js';
import { renderArgv } from '../../runner/types.js';
import type { Journal } from '../../state/journal.js';
import { LOCAL_REPO, readRepos, repoTarget, secretsOf, type RepoRecord } from '../../state/repos.js';
import { autostartStep } from '../../steps/autostart.js';
import { handedOver } from '../../steps/hand-over.js';
import { finishHandOver, gatherNewCluster, newClusterGuards, newClusterJournalSchema, newClusterSteps, rollbackNewClusterSteps, type NewClusterFacts } from '../../steps/new-cluster.js';
import { gatherRemoteSource, listRepoDir, type RemoteSource } from './source.js';

export const recoverOptionsSchema = runFlagsSchema.extend({
  app: nameSchema,
  fromRepo: nameSchema,
  to: targetTimeSchema.optional(),
  as: nameSchema.optional(),
  port: z.number().int().min(1024).max(65535).optional(),
  force: z.boolean(),
  autostart: z.boolean().optional(),
});
export type RecoverOptions = z.infer<typeof recoverOptionsSchema>;

const nameOf = (o: Pick<RecoverOptions, 'app' | 'as'>) => o.as ?? o.app;
const isTakeover = (o: Pick<RecoverOptions, 'as'>) => o.as === undefined;

export interface RecoverFacts extends NewClusterFacts {
  uid: number;
  now: Date;
  name: string;
  repoRecord: RepoRecord | undefined;
  source: RemoteSource;
  installedPg: string[];
  postgres: { uid: number; gid: number } | undefined;
  /** The main pgBackRest configuration has a section of the source stanza's name (it would merge into the restore's). */
  mainHasSection: boolean;
}

export async function gatherRecover(ctx: Context, o: RecoverOptions): Promise<RecoverFacts> {
  const runner = ctx.runner;
  const name = nameOf(o);
  const [tools, installedPg, main, managed, postgres, clusters, repos] = await Promise.all([
    findTools(ctx),
    installedPgVersions(ctx.fs),
    readMainConfig(ctx.fs),
    managedClusters(ctx),
    postgresOwner(ctx.fs),
    readClusters(runner),
    readRepos(ctx.fs, ctx.paths.stateDir),
  ]);
  const repoRecord = repos.repos.find((r) => r.name === o.fromRepo);
  const source: RemoteSource =
    repoRecord && ctx.host.uid === 0
      ? await gatherRemoteSource(ctx, runner, repoRecord, o.app)
      : { facts: emptySource(), archivePath: undefined, archiveEntries: [], host: null, version: undefined, problem: repoRecord ? undefined : `pgmam has no repository ${o.fromRepo}` };
  const fresh = await gatherNewCluster(ctx, runner, {
    name,
    version: source.version ?? installedPg[0] ?? '?',
    port: o.port,
    installedPg,
    clusters,
    managed: [...managed.records, ...managed.dropped],
    main,
    canProbeRepo: ctx.host.uid === 0 && Boolean(tools.pgbackrest),
    attachAlso: [o.fromRepo],
    continues: isTakeover(o) ? o.fromRepo : undefined,
  });
  return { ...fresh, uid: ctx.host.uid, now: ctx.clock.now(), name, repoRecord, source, installedPg, postgres, mainHasSection: main.sections.includes(o.app) };
}

/** The archive received nothing for takeover-min-idle: its origin is gone, not just slow. */
export function archiveIsIdle(f: Pick<RecoverFacts, 'source' | 'now'>, o: Pick<RecoverOptions, 'app' | 'fromRepo' | 'force'>, minIdleSeconds: number): Guard {
  return {
    id: 'origin-archive-is-idle',
    check() {
      if (o.force) return pass;
      const at = f.source.facts.archivedAt;
      if (!at) return fail(`cannot tell when stanza ${o.app} last received WAL in repository ${o.fromRepo}`, 'make sure the origin host is down, then add --force');
      const idle = (f.now.getTime() - at.getTime()) / 1000;
      return idle >= minIdleSeconds
        ? pass
        : fail(
            `stanza ${o.app} in repository ${o.fromRepo} received WAL ${Math.round(idle)} s ago (at ${at.toISOString()}${f.source.host ? `, from host ${f.source.host}` : ''}): its origin may still run, and two hosts would archive into one stanza`,
            `a takeover waits until the archive has been idle for takeover-min-idle (${minIdleSeconds} s); to copy the app while it runs, use --as NEW; if the origin is surely gone, --force`,
          );
    },
  };
}

export function recoverGuards(f: RecoverFacts, o: RecoverOptions, env: Pick<PlanEnv, 'config'>): Guard[] {
  const label = `stanza ${o.app} in repository ${o.fromRepo}`;
  const s = f.source;
  const guards: Guard[] = [
    runsAsRoot(f.uid),
    { id: 'repo-exists', check: () => (f.repoRecord ? pass : fail(`pgmam has no repository ${o.fromRepo}`, `add it here first, as on the origin host: pgmam repo add ${o.fromRepo} …`)) },
    { id: 'source-stanza-is-readable', check: () => (s.problem ? fail(s.problem, `see pgmam repo list --apps ${o.fromRepo}`) : s.facts.stanzaProblem ? fail(s.facts.stanzaProblem) : pass) },
    {
      id: 'pg-version-is-installed',
      check: () => (!s.version || f.installedPg.includes(s.version) ? pass : fail(`${label} is of PostgreSQL ${s.version}, which is not installed here (installed: ${f.installedPg.join(', ') || 'none'})`, `apt-get install postgresql-${s.version}`)),
    },
    { id: 'main-config-has-no-such-section', check: () => (f.mainHasSection ? fail(`pgBackRest's main configuration has a section [${o.app}]: it would mix into the restore of ${label}`, 'remove that section') : pass) },
  ];
  if (s.problem || !f.repoRecord) return guards;
  guards.push(timelineHistoryAvailable(s.facts, label));
  if (o.to) guards.push(...targetGuards(s.facts, o.to, { label, name: o.app, now: f.now, online: false, timelines: [] }));
  else guards.push(hasBackupGuard(s.facts, label));
  guards.push(backupWalArchived(s.facts, selectSet(s.facts, o.to).set));
  guards.push(...newClusterGuards(f, f.name, o.port !== undefined, env.config, selectSet(s.facts, o.to).set?.info?.size ?? 0));
  if (isTakeover(o)) guards.push(archiveIsIdle(f, o, env.config['takeover-min-idle']));
  return guards;
}

/** Where the restore's own pgBackRest configuration for the source stanza lives while it is needed (root-owned, read by postgres). */
export const sourceConfigDir = (stateDir: string, name: string) => `${stateDir}/recover/${name}`;

/** A configuration naming only the source stanza, its repository as repo1: the restore and the recovery's archive-get read it. */
function writeSourceConfigStep(dir: string, stanza: string, repo: RepoRecord, cluster: { dataDir: string; port: number }, owner: { uid: number; gid: number }): Step {
  const file = `${dir}/${stanza}.conf`;
  return {
    id: 'write-source-config',
    title: `write ${file}: stanza ${stanza} of repository ${repo.name}, for the restore and its recovery only`,
    effect: 'write',
    run: async (ctx) => {
      const secrets = await secretsOf(ctx.fs, ctx.paths.stateDir, repo);
      const text = ['# Written by pgmam recover: the source stanza, read-only, until the restored cluster has its own archiving.', `[${stanza}]`, `pg1-path=${cluster.dataDir}`, `pg1-port=${cluster.port}`, `pg1-socket-path=${pg.SOCKET_DIR}`, ...repoLines(1, repoOptions(repo, secrets)), ''].join('\n');
      await ctx.fs.mkdirp(`${ctx.paths.stateDir}/recover`, { mode: 0o755 });
      await ctx.fs.mkdirp(dir, { mode: 0o750, owner: { uid: 0, gid: owner.gid } });
      await ctx.fs.writeFileAtomic(file, text, { mode: 0o640, owner: { uid: 0, gid: owner.gid } });
    },
    show: [`write ${file} (0640 root:postgres; repository ${repo.name} as repo1, secrets not shown)`],
    undo: { title: `remove ${dir}`, run: (ctx) => ctx.fs.rm(dir, { recursive: true }) },
  };
}

const removeSourceConfigStep = (dir: string): Step => ({
  id: 'remove-source-config',
  title: `remove ${dir} (the restore's view of the source stanza)`,
  effect: 'write',
  run: (ctx) => ctx.fs.rm(dir, { recursive: true }),
});

/** A copy: the source stanza's archive gained no history file and no segment of the copy's timeline. */
function verifySourceUntouchedStep(repo: RepoRecord, archivePath: string, before: string[], recovered: { timeline: number }): Step {
  return {
    id: 'verify-source-archive',
    title: `verify ${archivePath} in repository ${repo.name} received nothing of the copy's timeline`,
    effect: 'read',
    run: async (ctx) => {
      const hex = recovered.timeline.toString(16).toUpperCase().padStart(8, '0');
      const added = (await listRepoDir(ctx, ctx.runner, repo, archivePath)).map((e) => e.name).filter((e) => !before.includes(e) && e.startsWith(hex));
      if (added.length) throw new Error(`the source stanza's archive gained ${added.join(', ')} of the copy's timeline ${recovered.timeline}`);
    },
    show: [`  $ pgbackrest repo-ls ${archivePath}  (no new entry of the copy's timeline)`],
  };
}

export function planRecover(f: RecoverFacts, o: RecoverOptions, env: PlanEnv): PlanBody {
  const s = f.source;
  const repo = required(f.repoRecord, 'the repository record');
  const version = required(s.version, "the source stanza's PostgreSQL major");
  const takeover = isTakeover(o);
  const id = { version, name: f.name };
  const port = f.port ?? 0;
  const owner = f.postgres ?? { uid: 0, gid: 0 };
  const n = newClusterSteps({ id, port, dataDir: f.dataDir, repo: f.repo, attach: f.attach, owner, config: env.config, paths: env.paths, systemd: env.host.systemd, hostName: env.host.name, fqdn: f.fqdn, role: 'app', sharedRepos: takeover ? [repo.name] : [] });
  const live: LiveCluster = { id, port, dataDir: n.dataDir, logFile: `/var/log/postgresql/postgresql-${version}-${f.name}.log` };
  const dir = sourceConfigDir(env.paths.stateDir, f.name);
  const set = required(selectSet(s.facts, o.to).set, 'a backup to restore');
  const tli = s.facts.currentTimeline ?? 1;
  const restore = pgbr.restore(
    { stanza: o.app, configIncludePath: dir },
    { set: set.label, type: o.to ? 'time' : 'default', target: o.to?.text, targetTimeline: tli, pg1Path: n.dataDir, archiveModeOff: true, repo: 1 },
  );
  const seq = restoreSequence({
    source: {
      kind: 'stanza',
      facts: s.facts,
      dataDir: '',
      scope: { stanza: o.app, configIncludePath: dir },
      live: undefined,
      restore,
      expect: expectOf(set, s.facts.stanza),
      what: `restore backup ${set.label} of stanza ${o.app} from repository ${repo.name} into ${n.dataDir}${o.to ? ` and replay to ${o.to.text}` : ' and replay its whole archive'} (timeline ${tli}), archiving off`,
    },
    into: { kind: 'new', make: [...n.createRepo, n.createCluster, n.closeToUsers, n.configureArchiving, ...n.enableTls, n.writeStanzaFile, writeSourceConfigStep(dir, o.app, repo, { dataDir: n.dataDir, port }, owner)] },
    live,
    target: { previousTimeline: tli, targetUs: o.to?.epochUs, targetText: o.to?.text },
    isolation: { archiveCommand: archiveCommandFor(f.name, n.scope.configIncludePath) },
    ...restoreEnv(env, owner),
  });
  const first = n.backupAndMark('the first full backup');
  const origin = { stanza: o.app, repo: repo.name, host: s.host, mode: takeover ? ('takeover' as const) : ('copy' as const), timeline: tli, at: f.now.toISOString() };
  const steps: Step[] = [
    ...seq.steps,
    n.recordManaged({ role: 'app', parent: null, createdAt: f.now.toISOString(), origin }),
    recordTimelineStep(f.name, env.paths.clustersDir, seq.recovered, tli, o.to?.text ?? null),
    n.createStanza,
    enableArchivingStep(live, env.host.systemd, owner),
    archiveNewHistoryStep((file) => pgbr.archivePush(n.scope, file), n.dataDir, seq.recovered),
    n.checkArchiving,
    first.backup,
    ...n.backupsIntoAttached('the first full backup'),
    first.mark,
    ...(takeover || !s.archivePath ? [] : [verifySourceUntouchedStep(repo, s.archivePath, s.archiveEntries, seq.recovered)]),
    removeSourceConfigStep(dir),
    autostartStep(id, o.autostart !== false, env.host.systemd),
    n.handOver,
  ];
  const flags = [...(o.as ? ['--as', o.as] : []), ...(o.port !== undefined ? ['--port', String(o.port)] : []), ...(o.to ? ['--to', o.to.text] : []), ...(o.autostart === false ? ['--no-autostart'] : [])];
  return {
    target: pg.clusterLabel(id),
    steps,
    journal: {
      // An interrupted takeover already archived into the stanza: its re-run finds the archive busy with its own WAL.
      rerun: renderArgv(['pgmam', 'recover', o.app, '--from-repo', o.fromRepo, ...flags, ...(takeover ? ['--force'] : []), '--yes']),
      data: { ...n.journal, sourceSystemId: s.facts.stanza?.db.at(-1)?.['system-id'], sourceConfigDir: dir },
    },
    notes: takeover
      ? [
          `takeover: ${o.app} continues here under its own name and stanza, on timeline ${tli + 1}, archiving into repository ${repo.name} as its origin${s.host ? ` (host ${s.host})` : ''} did; its newest WAL there arrived at ${s.facts.archivedAt?.toISOString() ?? '?'}`,
          `the origin, should it come back, must not run: pgmam check there fences it (fence-on-takeover)`,
        ]
      : [`a copy: ${f.name} gets its own stanza; stanza ${o.app} in repository ${repo.name} is only read${s.host ? ` (its origin, host ${s.host}, may keep running)` : ''}`],
  };
}

export const recoverJournalSchema = newClusterJournalSchema.extend({ sourceConfigDir: z.string() });
export type RecoverJournal = z.infer<typeof recoverJournalSchema>;

/** Before hand-over, an interrupted recover made only a cluster no user could reach: removed (never the shared stanza of a takeover), then made again. */
export async function recoverRecover(ctx: Context, j: Journal, d: RecoverJournal): Promise<Recovery> {
  if (handedOver(j)) return finishHandOver(ctx, j, d);
  const exists = (await readClusters(ctx.runner)).some((c) => c.name === j.name && c.version === d.version);
  return {
    way: 'rolled-back',
    steps: [...rollbackNewClusterSteps(ctx, j, d, exists), { id: 'remove-source-config', title: `remove ${d.sourceConfigDir}`, effect: 'destroy', run: (c) => c.fs.rm(d.sourceConfigDir, { recursive: true }) }],
  };
}

async function reportRecover(ctx: Context, o: RecoverOptions, f: RecoverFacts, plan: { target: string }): Promise<void> {
  const result = { cluster: plan.target, name: f.name, port: f.port, stanza: f.name, mode: isTakeover(o) ? 'takeover' : 'copy', from: { stanza: o.app, repo: o.fromRepo, host: f.source.host }, to: o.to?.text ?? null };
  ctx.io.out(
    o.json
      ? `${JSON.stringify(result)}\n`
      : isTakeover(o)
        ? `${o.app} continues on this host as ${plan.target}, port ${f.port}: a new timeline in stanza ${o.app}, archiving into the local repository and ${o.fromRepo}, with a full backup\n`
        : `${plan.target} is a copy of ${o.app} (repository ${o.fromRepo}${o.to ? `, its state at ${o.to.text}` : ''}) on port ${f.port}, with its own stanza ${f.name} and a full backup\n`,
  );
}

export const recoverCommand: CommandModule<RecoverOptions, RecoverFacts, RecoverJournal> = {
  spec: {
    name: 'recover',
    summary: "bring an app back on this host from a shared repository: a copy (--as NEW), or a takeover of its own name and stanza when its host is lost",
    cli: {
      args: [{ syntax: '<app>', key: 'app', help: "the app's stanza in the repository (see pgmam repo list --apps REPO)" }],
      flags: [
        { flags: '--from-repo <repo>', help: 'the shared repository (added here with pgmam repo add)' },
        { flags: '--to <timestamp>', help: 'its state at this time (with UTC offset)' },
        { flags: '--latest', help: 'its state at the end of its archive (the default)' },
        { flags: '--as <name>', help: 'a copy under this name with its own stanza; without it, a takeover' },
        { flags: '-p, --port <port>', help: 'port (default: the first free one in port-min..port-max)' },
        { flags: '--force', help: 'take over although the archive received WAL within takeover-min-idle' },
        { flags: '--no-autostart', help: 'do not start it at boot (start.conf manual)' },
      ],
      input: z
        .object({ app: nameArg('app name'), fromRepo: optionalNameArg('repository name'), to: z.string().optional(), latest: flag, as: optionalNameArg('copy name'), port: portArg, force: flag, autostart: z.boolean().default(true) })
        .transform(({ latest, to, fromRepo, ...r }) => {
          if (!fromRepo) throw new UsageError('recover needs --from-repo <repo>: the shared repository the app is in');
          if (fromRepo === LOCAL_REPO) throw new UsageError("recover reads a repository hosts share; an app of this host's local repository is restored with pgmam pitr or branch create");
          if (latest && to !== undefined) throw new UsageError('recover takes --to or --latest, not both');
          if (r.as === r.app) throw new UsageError('--as names a copy: a name other than the app’s (without --as, recover takes the app over under its own name)');
          return { ...r, fromRepo, to: to === undefined ? undefined : parseTarget(to) };
        }),
      keepOnError: true,
    },
    options: recoverOptionsSchema,
    examples: ['pgmam recover app1 --from-repo offsite --as app1_copy', 'pgmam recover app1 --from-repo offsite --to "2026-12-01 10:40:00+00" --as app1_before', 'pgmam recover app1 --from-repo offsite --yes   # takeover: the origin host is lost'],
    target: nameOf,
    locks: (o) => [nameOf(o), repoTarget(o.fromRepo)],
    // A takeover continues another host's stanza: typed, like a drop.
    destructive: (o) => isTakeover(o),
    typeToConfirm: (o) => (isTakeover(o) ? o.app : undefined),
    journal: recoverJournalSchema,
  },
  gather: gatherRecover,
  guards: recoverGuards,
  plan: planRecover,
  recover: recoverRecover,
  report: reportRecover,
};
