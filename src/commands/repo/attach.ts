// `pgmam repo attach|detach <repo> <app>… | --all`: a repository becomes (or stops being) one of an
// app's stanza repositories. Attach: the stanza file names it at the app's next free index, the stanza
// is created there, archiving is checked (WAL goes to every repository), and a first full backup goes
// into it. A failure before that backup is complete takes the repository out of the stanza file again,
// so archiving never waits on a repository that was never ready. Detach keeps its backups in the bucket.
import { replicaIsRefused } from '../../guards/replica.js';
import { notManaged } from '../../guards/cluster.js';
import { z } from 'zod';
import { retentionOf } from '../../config/schema.js';
import type { Context } from '../../context.js';
import { UsageError } from '../../errors.js';
import { clusterIsNotLocked } from '../../guards/cluster.js';
import { runsAsRoot } from '../../guards/host.js';
import { lockFacts, managedClusters, readClusters } from '../../host/facts.js';
import { NAME_PATTERN, namesArg } from '../../names.js';
import { flag, type CliBatch } from '../../plan/cli-spec.js';
import { batchTargets, runBatch, runFlagsSchema, type CommandModule, type PlanBody, type PlanEnv, type Recovery } from '../../plan/command.js';
import { fail, pass, required, type Guard, type Step } from '../../plan/types.js';
import * as pgbr from '../../pgbackrest/commands.js';
import { stanzaScope } from '../../pgbackrest/commands.js';
import { renderArgv } from '../../runner/types.js';
import { alignStanzaFileStep } from '../../steps/stanza-file.js';
import { markDetached } from '../../steps/registration.js';
import { checkArchivingStep } from '../../steps/stanza.js';
import { backupIntoStep } from '../../steps/new-cluster.js';
import type { LockHolder } from '../../state/lock.js';
import type { Journal } from '../../state/journal.js';
import { LOCAL_REPO, MAX_REPO_INDEX, readRepos, type RepoRecord } from '../../state/repos.js';
import { attachment, updateManaged, type ManagedCluster } from '../../state/store.js';
import { repoNameArg, repoTarget } from './add.js';
import { describeStanzaIn, newestAnnotation, readStanzaInRepo, type StanzaInRepo } from '../../host/repo-stanza.js';
import * as pg from '../../pg/commands.js';
import { parseControlData } from '../../pg/controldata.js';
import { readServe, registrationPath, serverConfigPath, type Registration, type ServeRecord } from '../../state/serve.js';

export const repoAttachOptionsSchema = runFlagsSchema.extend({ repo: z.string().regex(NAME_PATTERN), name: z.string().regex(NAME_PATTERN), detach: z.boolean() });
export type RepoAttachOptions = z.infer<typeof repoAttachOptionsSchema>;

export interface RepoAttachFacts {
  uid: number;
  repo: RepoRecord | undefined;
  record: ManagedCluster | undefined;
  running: boolean;
  port: number | undefined;
  lock: { holder: LockHolder | undefined; alive: boolean };
  /** Attaching: what the repository already holds under the app's stanza name (another host's app, or this app's own from before a detach). */
  inRepo: StanzaInRepo | undefined;
  systemId: string | undefined;
  hostName: string;
  dataDir: string | undefined;
  /** This host's pgBackRest server (repo serve): how a repository host reaches the cluster to back it up. */
  serve: ServeRecord | undefined;
  now: string;
}

export async function gatherRepoAttach(ctx: Context, o: RepoAttachOptions): Promise<RepoAttachFacts> {
  const [{ repos }, managed, clusters, lock] = await Promise.all([readRepos(ctx.fs, ctx.paths.stateDir), managedClusters(ctx), readClusters(ctx.runner), lockFacts(ctx, o.name)]);
  const record = managed.records.find((r) => r.name === o.name);
  const cluster = record && clusters.find((c) => c.name === record.name && c.version === record.version);
  const repo = repos.find((r) => r.name === o.repo);
  const attaching = !o.detach && record !== undefined && !record.repos.some((a) => a.name === o.repo);
  const [inRepo, control] = await Promise.all([
    attaching && repo && ctx.host.uid === 0 ? readStanzaInRepo(ctx, ctx.runner, repo, record.stanza) : undefined,
    attaching && cluster?.dataDir ? ctx.runner.run(pg.pgControlData(cluster.version, cluster.dataDir), { check: false }) : undefined,
  ]);
  const systemId = control?.exitCode === 0 ? parseControlData(control.stdout).systemId : undefined;
  const serve = repo?.kind === 'tls' ? await readServe(ctx.fs, ctx.paths.stateDir) : undefined;
  return { uid: ctx.host.uid, repo, record, running: Boolean(cluster?.running), port: cluster?.port, lock, inRepo, systemId, hostName: ctx.host.name, dataDir: cluster?.dataDir, serve, now: ctx.clock.now().toISOString() };
}

/**
 * Hosts sharing a repository share its stanza names: attaching is refused when the repository holds the
 * stanza of another cluster (another system identifier) or of another host (its newest backup says so).
 * This app's own copy from before a detach is no collision.
 */
export const nameIsFreeInRepo = (f: Pick<RepoAttachFacts, 'inRepo' | 'systemId' | 'hostName'>, stanza: string): Guard => ({
  id: 'name-is-free-in-repo',
  check() {
    const x = f.inRepo;
    if (!x) return pass;
    if (x.exists === undefined) return fail(`cannot tell whether repository ${x.repo} holds a stanza ${stanza}: ${x.problem}`);
    if (!x.exists) return pass;
    const theirs = x.stanza?.db.at(-1)?.['system-id'];
    const host = newestAnnotation(x.stanza).host;
    const own = theirs !== undefined && theirs === f.systemId && (host === undefined || host === f.hostName);
    return own ? pass : fail(describeStanzaIn(stanza, x), `its stanza there is not this cluster's (system identifier ${theirs ?? '?'}, this cluster's ${f.systemId ?? '?'}); see pgmam repo list --apps ${x.repo}`);
  },
});

const attachedAt = (f: RepoAttachFacts, o: RepoAttachOptions) => f.record?.repos.find((a) => a.name === o.repo)?.index;
/** The app's lowest free index (repo1 is the local repository). */
export const nextIndex = (r: ManagedCluster) => [2, 3, 4].find((i) => !r.repos.some((a) => a.index === i));

export function repoAttachGuards(f: RepoAttachFacts, o: RepoAttachOptions): Guard[] {
  const attaching = !o.detach && attachedAt(f, o) === undefined;
  return [
    runsAsRoot(f.uid, `${o.detach ? 'detach' : 'attach'} a repository`),
    replicaIsRefused(f.record, 'attached on its own: it shares its app\'s stanza'),
    { id: 'repo-exists', check: () => (f.repo ? pass : fail(`pgmam has no repository ${o.repo}`, 'see pgmam repo list')) },
    { id: 'cluster-is-managed', check: () => (f.record ? pass : notManaged(o.name)) },
    { id: 'stanza-has-room', check: () => (!attaching || !f.record || nextIndex(f.record) ? pass : fail(`${o.name}'s stanza already has ${MAX_REPO_INDEX} repositories (pgBackRest's most)`, `pgmam repo detach one of ${f.record.repos.map((a) => a.name).join(', ')} first`)) },
    // stanza-create and check need the cluster: attaching to a stopped one would leave it half done.
    { id: 'cluster-is-running', check: () => (!attaching || !f.record || f.running ? pass : fail(`${f.record.cluster} is down: the stanza cannot be created in ${o.repo}`, `pg_ctlcluster ${f.record.version} ${f.record.name} start`)) },
    clusterIsNotLocked(o.name, f.lock.holder, f.lock.alive),
    nameIsFreeInRepo(f, f.record?.stanza ?? o.name),
    {
      id: 'host-serves',
      check: () =>
        !attaching || f.repo?.kind !== 'tls' || f.serve
          ? pass
          : fail(`repository ${o.repo} is another host's: that host takes ${o.name}'s backups through this host's pgBackRest server, which pgmam does not run`, `pgmam repo serve --ca-file … --cert-file … --key-file … --allow <the repository host's certificate CN>`),
    },
  ];
}

export const repoAttachJournalSchema = z.object({ repo: z.string(), index: z.number(), detach: z.boolean() });
export type RepoAttachJournal = z.infer<typeof repoAttachJournalSchema>;

/** The record names (or no longer names) the repository at `index`, and the stanza file follows it. */
function setAttachment(name: string, stanzaFile: string, d: RepoAttachJournal, attach: boolean, env: Pick<PlanEnv, 'config'>): Step {
  const align = alignStanzaFileStep(stanzaFile, name, retentionOf(env.config));
  const set = async (c: Context, on: boolean) => {
    await updateManaged(c.fs, c.paths.clustersDir, name, (r) => ({ ...r, repos: [...r.repos.filter((a) => a.name !== d.repo), ...(on ? [attachment(d.repo, d.index)] : [])].sort((a, b) => a.index - b.index) }));
    await (align.run as (c: Context) => Promise<void>)(c);
  };
  return {
    id: attach ? 'attach-in-stanza-file' : 'detach-from-stanza-file',
    title: attach ? `name repository ${d.repo} as repo${d.index} of stanza ${name} (record and ${stanzaFile})` : `take repository ${d.repo} (repo${d.index}) out of stanza ${name} (record and ${stanzaFile}); its backups stay there`,
    effect: 'write',
    run: (c) => set(c, attach),
    show: [`pgmam record of ${name}: repos ${attach ? '+' : '-'}= ${d.repo} (repo${d.index})`, `rewrite the repoN lines of ${stanzaFile} (secrets not shown)`],
    ...(attach ? { undo: { title: `take repository ${d.repo} out of ${stanzaFile} again`, run: (c: Context) => set(c, false) } } : {}),
  };
}

/** What the repository host needs to back the app up through this host's server (pgmam/clients/<stanza>.json there). */
export function registrationOf(r: ManagedCluster, f: Pick<RepoAttachFacts, 'hostName' | 'dataDir' | 'serve'>, port: number, hostConfig: string, now: string): Registration {
  const serve = required(f.serve, "this host's server");
  return { format: 1, stanza: r.stanza, app: r.name, role: r.role, host: f.hostName, address: serve.address, port: serve.port, hostConfig, pgPath: required(f.dataDir, 'the data directory'), pgPort: port, socketPath: pg.SOCKET_DIR, registeredAt: now };
}

function attachSteps(r: ManagedCluster, repo: RepoRecord, d: RepoAttachJournal, port: number, env: Pick<PlanEnv, 'config' | 'paths'>, registration?: Registration): Step[] {
  const scope = stanzaScope(r.stanza, env.paths.stanzaDir);
  const file = registrationPath(r.stanza);
  if (d.detach) {
    const unregister: Step[] =
      repo.kind === 'tls'
        ? [
            {
              id: 'unregister',
              title: `mark ${file} in repository ${repo.name} detached (its host stops backing up ${r.name}; a host that does not answer keeps it registered)`,
              effect: 'write',
              run: async (c) => void (await markDetached(c, scope, r.stanza, d.index)),
            },
          ]
        : [];
    return [...unregister, setAttachment(r.name, r.stanzaFile, d, false, env)];
  }
  const last: Step =
    repo.kind === 'tls'
      ? // pgBackRest backs up only where the repository is local: the repository host takes them, through this host's server.
        { id: 'register-with-repo-host', title: `register ${r.name} in repository ${repo.name} (${file}): its host backs it up (pgmam repo backup-clients there)`, effect: 'write', run: pgbr.repoPut(scope, d.index, file, `${JSON.stringify(required(registration, 'the registration'), null, 2)}\n`) }
      : backupIntoStep(scope, r.name, 'a first full backup', { index: d.index, repo }, { version: r.version, port });
  return [
    setAttachment(r.name, r.stanzaFile, d, true, env),
    { id: 'create-stanza', title: `create stanza ${r.stanza} in repository ${repo.name} (where it is missing)`, effect: 'write', run: pgbr.stanzaCreate(scope) },
    checkArchivingStep(scope, r.name),
    last,
  ];
}

export function planRepoAttach(f: RepoAttachFacts, o: RepoAttachOptions, env: PlanEnv): PlanBody {
  const r = required(f.record, 'the app record');
  const repo = required(f.repo, 'the repository record');
  const at = attachedAt(f, o);
  // Already as asked: nothing to do (a batch over --all converges).
  if (o.detach ? at === undefined : at !== undefined) return { target: r.cluster, steps: [], journal: false };
  const d: RepoAttachJournal = { repo: o.repo, index: at ?? required(nextIndex(r), 'a free repository index'), detach: o.detach };
  const port = o.detach ? 0 : required(f.port, 'the cluster port');
  const registration = !o.detach && repo.kind === 'tls' ? registrationOf(r, f, port, serverConfigPath(env.paths.stateDir), f.now) : undefined;
  return { target: r.cluster, steps: attachSteps(r, repo, d, port, env, registration), journal: { rerun: renderArgv(['pgmam', 'repo', o.detach ? 'detach' : 'attach', o.repo, o.name, '--yes']), data: d } };
}

/** An interrupted attach is taken back out of the stanza file, then runs afresh; an interrupted detach is finished. */
export async function recoverRepoAttach(ctx: Context, j: Journal, d: RepoAttachJournal): Promise<Recovery> {
  const r = (await managedClusters(ctx)).records.find((x) => x.name === j.name);
  if (!r) return { way: 'rolled-back', steps: [] };
  if (d.detach) return { way: 'finished', steps: [setAttachment(r.name, r.stanzaFile, d, false, ctx)], finished: `repository ${d.repo} was detached from ${r.name}\n` };
  return { way: 'rolled-back', steps: [setAttachment(r.name, r.stanzaFile, { ...d, detach: true }, false, ctx)] };
}

export const repoAttachTargetCommand: CommandModule<RepoAttachOptions, RepoAttachFacts, RepoAttachJournal> = {
  spec: {
    name: 'repo attach',
    summary: "make a repository one of an app's stanza repositories",
    options: repoAttachOptionsSchema,
    examples: [],
    target: (o) => o.name,
    // The repository stays while an app is attached to it: repo remove takes the same lock.
    locks: (o) => [o.name, repoTarget(o.repo)],
    destructive: false,
    journalCommand: (o) => (o.detach ? 'repo detach' : 'repo attach'),
    settlesAlso: (o) => [o.detach ? 'repo attach' : 'repo detach'],
    journal: repoAttachJournalSchema,
  },
  gather: gatherRepoAttach,
  guards: repoAttachGuards,
  plan: planRepoAttach,
  recover: recoverRepoAttach,
  report: async () => undefined,
};

interface RepoAttachBatchOptions {
  repo: string;
  names: string[];
  all: boolean;
  dryRun: boolean;
  json: boolean;
}

const attachBatch = (detach: boolean): CliBatch<RepoAttachBatchOptions> => ({
  name: detach ? 'repo detach' : 'repo attach',
  summary: detach ? "take a repository out of apps' stanzas (its backups stay in it)" : "attach a repository to apps: stanza there, WAL to it, a first full backup into it",
  examples: detach ? ['pgmam repo detach offsite app1', 'pgmam repo detach offsite --all'] : ['pgmam repo attach offsite app1 app2', 'pgmam repo attach offsite --all'],
  cli: {
    args: [
      { syntax: '<repo>', help: 'the repository' },
      { syntax: '[apps...]', key: 'names', help: 'managed apps (or --all)' },
    ],
    flags: [{ flags: '--all', help: 'every app pgmam manages' }],
    input: z.object({ repo: repoNameArg, names: namesArg('app name'), all: flag }).transform((o) => {
      if (o.repo === LOCAL_REPO) throw new UsageError('the local repository is every stanza’s repo1');
      if (!o.names.length && !o.all) throw new UsageError(`repo ${detach ? 'detach' : 'attach'} needs app names or --all`);
      if (o.names.length && o.all) throw new UsageError(`repo ${detach ? 'detach' : 'attach'} takes app names or --all, not both`);
      return o;
    }),
  },
  run: async (ctx, o) => {
    const { names } = await batchTargets(ctx, detach ? 'repo detach' : 'repo attach', o, `${detach ? 'detach' : 'attach'} a repository`);
    const runs = names.map((name) => ({ repo: o.repo, name, detach, dryRun: o.dryRun, json: o.json, yes: true, keepOnError: false }));
    await runBatch(ctx, repoAttachTargetCommand, runs, {
      report: async (batch) => {
        if (o.dryRun) return;
        const lines = batch.map((b) => {
          const steps = b.run?.plan.steps.length ?? 0;
          const state = b.result !== 'done' ? `failed: ${b.lines.filter((l) => l.startsWith('pgmam: ')).map((l) => l.replace(/^pgmam: /, '')).join('; ')}` : !steps ? `already ${detach ? 'detached' : 'attached'}` : detach ? 'detached' : b.run?.plan.steps.some((x) => x.id === 'register-with-repo-host') ? 'attached (stanza created, archiving checked, registered: its host takes the backups)' : 'attached (stanza created, archiving checked, first full backup taken)';
          return { app: b.options.name, repo: o.repo, result: b.result, state };
        });
        ctx.io.out(o.json ? `${JSON.stringify(lines, null, 2)}\n` : lines.map((l) => `${l.app}: ${l.state}\n`).join(''));
      },
    });
  },
});

export const repoAttachBatch = attachBatch(false);
export const repoDetachBatch = attachBatch(true);
