// `pgmam backup <app>… | --all`: pgBackRest backups of every managed cluster, from cron or by hand —
// full/diff/incr tiers, skipping when nothing was written, retention, locks, parallel, export.
import { retentionOf, type Config, type Retention } from '../../config/schema.js';
import { notManaged } from '../../guards/cluster.js';
import { LOCAL_REPO, readRepos, type RepoRecord } from '../../state/repos.js';
import { UsageError, StepFailedError } from '../../errors.js';
import { absolutePath, flag, type CliBatch } from '../../plan/cli-spec.js';
import { z } from 'zod';
import { heldRetention } from '../../steps/retention.js';
import { nameSchema, namesArg, optionalNameArg } from '../../names.js';
import { sharedRead, type Context } from '../../context.js';
import { replicaIsRefused } from '../../guards/replica.js';
import { runsAsRoot } from '../../guards/host.js';
import { batchTargets, runBatch, runFlagsSchema, type BatchOutcome, type CommandModule, type PlanBody, type PlanEnv } from '../../plan/command.js';
import { fail, pass, type Guard, type Step } from '../../plan/types.js';
import type { HostCluster } from '../../pg/clusters.js';
import * as pgbr from '../../pgbackrest/commands.js';
import { backupsIn, parseInfo, type BackupInfo, type StanzaInfo } from '../../pgbackrest/info.js';
import { renderArgv, effectiveArgv } from '../../runner/types.js';
import { describeJournal, ownerAlive, readJournal } from '../../state/journal.js';
import { updateManaged, type ManagedCluster } from '../../state/store.js';
import { managedClusters, readClusters } from '../../host/facts.js';
import { mirrorRepos, type ExportSummary } from './export-repos.js';
import { repoScope, stanzaScope } from '../../pgbackrest/commands.js';
import { markBackup, readNextXid } from '../../steps/stanza.js';
import { alignStanzaFileStep } from '../../steps/stanza-file.js';
import { backupShare } from '../../steps/measures.js';
import { gatherOutage, hasOpenGap, noOutage, outageSteps, type OutageFacts } from '../../steps/repo-outage.js';
import { foreignTimeline, type Takeover } from '../../host/takeover.js';

export type BackupType = 'full' | 'diff' | 'incr';

export interface BackupOptions {
  names: string[];
  all: boolean;
  type: BackupType | 'auto';
  exportTo: string | undefined;
  force: boolean;
  /** Only this repository ('local' or an attached one). */
  repo?: string | undefined;
  dryRun: boolean;
  json: boolean;
}

export interface Target {
  record: ManagedCluster;
  cluster: HostCluster | undefined;
  stanza: StanzaInfo | undefined;
  /** Next transaction ID now (online clusters only). */
  nextXid: string | undefined;
  /** An interrupted pgmam operation on the cluster (its journal, described), to be settled first. */
  interrupted?: string;
}

export type Decision =
  | { action: 'backup'; type: BackupType; why: string }
  | { action: 'skip'; why: string }
  | { action: 'fail'; why: string };

const age = (b: BackupInfo, now: Date) => now.getTime() / 1000 - b.timestamp.stop;

type Mark = { label: string; nextXid: string };

/** One repository a backup goes into: the local one (repo1) or an attached one, with its own tiers and mark. */
export interface RepoTier {
  name: string;
  index: number;
  retention: Retention;
  fullInterval: number;
  diffInterval: number;
  mark: Mark | null;
  /** A full whatever the tiers say: the repository is back after a suspension and its archive has a hole only a full bridges. */
  forceFull?: string;
}

/**
 * The app's repositories as backup sees them: the local one, then each attached one pgmam knows — not a
 * suspended one, unless this run puts it back (`reattach`).
 */
export function tiersOf(record: ManagedCluster, repos: RepoRecord[], config: Config, reattach: readonly string[] = []): RepoTier[] {
  const local: RepoTier = { name: LOCAL_REPO, index: 1, retention: retentionOf(config), fullInterval: config['full-interval'], diffInterval: config['diff-interval'], mark: record.backupMark };
  return [
    local,
    ...record.repos.flatMap((a) => {
      const r = repos.find((x) => x.name === a.name);
      // Another host's repository: that host takes the backups (pgBackRest backs up only where the repository is local).
      if (!r || r.kind === 'tls' || (a.suspended && !reattach.includes(a.name))) return [];
      const forceFull = a.suspended ? `back after a suspension since ${a.suspended.at}: a full bridges the WAL it missed` : hasOpenGap(a) ? 'a full bridges the WAL it missed while suspended' : undefined;
      return [{ name: r.name, index: a.index, retention: r.retention, fullInterval: r.fullInterval ?? local.fullInterval, diffInterval: r.diffInterval ?? local.diffInterval, mark: record.repoMarks[r.name] ?? null, ...(forceFull ? { forceFull } : {}) }];
    }),
  ];
}

/** What to do with one cluster in one repository (default the local one); pure, so every rule is tested without a cluster. */
export function decide(t: Target, o: Pick<BackupOptions, 'type' | 'force'>, cfg: { fullInterval: number; diffInterval: number }, now: Date, into: { index: number; mark: Mark | null; forceFull?: string } = { index: 1, mark: t.record.backupMark }): Decision {
  if (t.interrupted) return { action: 'fail', why: `${t.record.cluster}: ${t.interrupted}` };
  if (!t.cluster) return { action: 'fail', why: `the host has no cluster ${t.record.cluster}` };
  if (!t.cluster.running) return { action: 'fail', why: `${t.record.cluster} is down` };
  if (into.forceFull) return { action: 'backup', type: 'full', why: into.forceFull };
  const backups = backupsIn(t.stanza, into.index).filter((b) => !b.error);
  const lastFull = backups.filter((b) => b.type === 'full').at(-1);
  const lastDiffOrFull = backups.filter((b) => b.type !== 'incr').at(-1);
  let type: BackupType;
  let why: string;
  if (o.type !== 'auto') {
    type = o.type;
    why = `--type ${o.type}`;
  } else if (!lastFull || age(lastFull, now) > cfg.fullInterval) {
    type = 'full';
    why = lastFull ? `the last full (${lastFull.label}) is older than full-interval` : 'no full backup yet';
  } else if (!lastDiffOrFull || age(lastDiffOrFull, now) > cfg.diffInterval) {
    type = 'diff';
    why = `the last full or diff is older than diff-interval`;
  } else {
    type = 'incr';
    why = 'full and diff are recent';
  }
  if (type === 'full' && o.type === 'auto') return { action: 'backup', type, why }; // a due full is never skipped
  const mark = into.mark;
  const last = backups.at(-1);
  if (!o.force && type !== 'full' && mark && last && mark.label === last.label && t.nextXid !== undefined && mark.nextXid === t.nextXid)
    return { action: 'skip', why: `no changes since ${last.label}` };
  return { action: 'backup', type, why };
}

export interface Outcome {
  cluster: string;
  /** The repository it went into ('local' or an attached one); null: the cluster as a whole (down, locked). */
  repo: string | null;
  /** suspended: this run took the repository out of the app's stanza (it failed while WAL piled up for it). */
  result: 'backed-up' | 'skipped' | 'failed' | 'locked' | 'suspended';
  type?: BackupType;
  label?: string;
  expired?: string[];
  reason: string;
  /** This run put the repository back after a suspension (and took a full into it). */
  reattached?: boolean;
  durationMs?: number;
}

export const backupTargetOptionsSchema = runFlagsSchema.extend({
  name: nameSchema,
  type: z.enum(['full', 'diff', 'incr', 'auto']),
  force: z.boolean(),
  /** Only this repository ('local' or an attached one); default every repository the app has. */
  repo: z.string().optional(),
});
export type BackupTargetOptions = z.infer<typeof backupTargetOptionsSchema>;

export interface BackupFacts {
  uid: number;
  now: Date;
  /** undefined: not managed by pgmam. */
  target: Target | undefined;
  /** The cluster's: a failure (down, interrupted) that stops every repository's backup, else the first repository's. */
  decision: Decision | undefined;
  /** Per repository (only --repo's when given). */
  tiers: Array<{ tier: RepoTier; decision: Decision }>;
  /** --repo names a repository the app does not have. */
  unknownRepo?: string;
  /** --repo names a repository suspended for the app (and still failing). */
  suspendedRepo?: string;
  /** Filled in by each backup step, by repository: the new label, and the labels before it (for what expired). */
  done: Record<string, { label: string | undefined; before: string[]; durationMs: number }>;
  /** WAL piling up for a failing repository, and suspended repositories that answer again. */
  outage: OutageFacts;
  /** Another host continues the app (a newer foreign timeline in its stanza of a shared repository). */
  takenOver?: Takeover;
  /** Attached repositories on another host (kind tls), whose host takes their backups: name → host. */
  hostTaken: Array<{ name: string; host: string }>;
}

export async function gatherBackup(ctx: Context, o: BackupTargetOptions): Promise<BackupFacts> {
  const runner = ctx.runner;
  const [managed, clusters] = await Promise.all([sharedRead(ctx, 'managed', () => managedClusters(ctx)), sharedRead(ctx, 'clusters', () => readClusters(runner))]);
  const record = managed.records.find((r) => r.name === o.name);
  const f: BackupFacts = { uid: ctx.host.uid, now: ctx.clock.now(), target: undefined, decision: undefined, tiers: [], done: {}, outage: noOutage(), hostTaken: [] };
  if (!record || ctx.host.uid !== 0) return f;
  const cluster = clusters.find((c) => c.name === record.name && c.version === record.version);
  f.outage = await gatherOutage(ctx, record, cluster);
  // Not tried: an attached repository that does not answer (suspended by this run, or reported failed).
  const notAnswering = f.outage.unreachable.map((s) => s.name);
  const repos = (await readRepos(ctx.fs, ctx.paths.stateDir)).repos;
  f.hostTaken = repos.filter((r) => r.kind === 'tls' && record.repos.some((a) => a.name === r.name) && (o.repo === undefined || o.repo === r.name)).map((r) => ({ name: r.name, host: r.tls?.host ?? '?' }));
  const tiers = tiersOf(record, repos, ctx.config, f.outage.reattach.map((a) => a.name)).filter((t) => (o.repo === undefined || t.name === o.repo) && !notAnswering.includes(t.name));
  // --repo named, yet nothing to back up into: not one of the app's, or suspended and still silent.
  if (o.repo !== undefined && !tiers.length && !notAnswering.includes(o.repo) && !f.hostTaken.length) {
    if (record.repos.some((a) => a.name === o.repo)) f.suspendedRepo = o.repo;
    else f.unknownRepo = o.repo;
  }
  // The backups of the repositories this run goes into, in one listing (each carries its repo-key):
  // a listing of an S3 repository costs requests, so only the one --repo names.
  const only = tiers.length === 1 ? tiers[0]!.index : record.repos.length ? 'all' : 1;
  // An app with the local repository alone: one listing of that repository serves a whole batch.
  const info = await (only === 1 && !record.repos.length
    ? sharedRead(ctx, `info ${record.repoPath}`, () => runner.run(pgbr.info(repoScope(record.repoPath, ctx.paths.stanzaDir)), { check: false }))
    : runner.run(pgbr.info(stanzaScope(record.stanza, ctx.paths.stanzaDir), only), { check: false }));
  const stanza = info.exitCode === 0 ? parseInfo(info.stdout).find((x) => x.name === record.stanza) : undefined;
  const nextXid = cluster?.running ? await readNextXid(runner, record.version, cluster.port) : undefined;
  const journal = await readJournal(ctx.fs, ctx.paths.stateDir, record.name);
  // A live journal is a running command: the lock makes backup wait for it.
  f.target = { record, cluster, stanza, nextXid, interrupted: journal && !ownerAlive(ctx.host, journal) ? describeJournal(journal) : undefined };
  // A backup here would join another host's stanza (and its retention would expire that host's backups).
  const archiveId = stanza?.archive.at(-1)?.id;
  if (archiveId) f.takenOver = await foreignTimeline(ctx, runner, record, cluster?.dataDir, record.repos.filter((a) => !a.suspended && !notAnswering.includes(a.name)).map((a) => ({ name: a.name, index: a.index, archiveId })));
  f.tiers = tiers.map((tier) => ({ tier, decision: decide(f.target!, o, tier, f.now, tier) }));
  f.decision = f.tiers.find((x) => x.decision.action === 'fail')?.decision ?? f.tiers[0]?.decision;
  return f;
}

export function backupGuards(f: BackupFacts, o: BackupTargetOptions): Guard[] {
  const d = f.decision;
  return [
    runsAsRoot(f.uid, 'back up clusters'),
    { id: 'cluster-is-managed', check: () => (f.uid !== 0 || f.target ? pass : notManaged(o.name)) },
    replicaIsRefused(f.target?.record, 'backed up: its app is, through its primary'),
    // Down, missing or interrupted: reported as this cluster's failure; the others are backed up.
    { id: 'cluster-can-be-backed-up', check: () => (d?.action === 'fail' ? fail(d.why) : pass) },
    {
      id: 'app-is-not-taken-over',
      check: () =>
        f.takenOver
          ? fail(`another host continues ${o.name}: timeline ${f.takenOver.timeline} in repository ${f.takenOver.repo} is newer than this cluster's (${f.takenOver.own})`, 'a backup here would join its stanza; pgmam check fences this cluster (README: Disaster recovery)')
          : pass,
    },
    { id: 'repo-is-attached', check: () => (f.unknownRepo ? fail(`${o.name} is not attached to repository ${f.unknownRepo}`, `pgmam repo attach ${f.unknownRepo} ${o.name}`) : pass) },
    {
      id: 'repo-is-not-another-hosts',
      check: () =>
        o.repo !== undefined && f.hostTaken.length
          ? fail(`backups into repository ${o.repo} are taken on its host ${f.hostTaken[0]!.host}: pgBackRest backs up only where the repository is local`, `on ${f.hostTaken[0]!.host}: pgmam repo backup-clients ${f.target?.record.stanza ?? o.name}`)
          : pass,
    },
    {
      id: 'repo-is-not-suspended',
      check: () => (f.suspendedRepo ? fail(`repository ${f.suspendedRepo} is suspended for ${o.name} and does not answer yet`, 'backup puts it back (and takes a full into it) once it answers; pgmam check shows why it was suspended') : pass),
    },
  ];
}

export function backupCmd(t: Target, type: BackupType, tier: Pick<RepoTier, 'index' | 'retention'>, env: Pick<PlanEnv, 'paths'>, now: Date) {
  // Retention from pgmam's configuration (or the repository's record), applied by pgBackRest's own expire
  // after the backup — raised while preserved data directories need older fulls (steps/retention.ts).
  const { retention } = heldRetention(tier.retention, backupsIn(t.stanza, tier.index), t.record.preserved, now, type === 'full' ? 1 : 0);
  const base = pgbr.backup(stanzaScope(t.record.stanza, env.paths.stanzaDir), type, retention, tier.index);
  return { ...base, argv: [base.argv[0]!, '--log-level-console=info', ...base.argv.slice(1)] };
}

/** A backup into each repository where one is due (pgbackrest backup, then the mark); none when nothing was written. */
export function planBackup(f: BackupFacts, o: BackupTargetOptions, env: PlanEnv): PlanBody {
  const t = f.target;
  const label = t?.record.cluster ?? o.name;
  const due = f.tiers.filter((x) => x.decision.action === 'backup');
  const outage = t ? outageSteps(t.record, f.outage, env) : [];
  if (!t || (!due.length && !outage.length)) return { target: label, steps: [], journal: false, quiet: true };
  const scope = stanzaScope(t.record.stanza, env.paths.stanzaDir);
  const align = alignStanzaFileStep(t.record.stanzaFile, t.record.name, retentionOf(env.config));
  const steps = due.map(({ tier, decision }): Step => {
    const d = decision as Extract<Decision, { action: 'backup' }>;
    const cmd = backupCmd(t, d.type, tier, env, f.now);
    const local = tier.index === 1;
    return {
      id: local ? `backup-${d.type}` : `backup-${d.type}-repo${tier.index}`,
      title: `${d.type} backup of ${label}${local ? '' : ` into repository ${tier.name}`} (${d.why})`,
      effect: 'write',
      progress: backupShare(`${d.type} backup of ${label}${local ? '' : ` into repository ${tier.name}`}`, t.record.stanza),
      run: async (c) => {
        const t0 = performance.now();
        const before = backupsIn(t.stanza, tier.index).map((b) => b.label);
        // The position before the backup starts: a commit while it runs counts as written since.
        const xidBefore = t.cluster ? await readNextXid(c.runner, t.record.version, t.cluster.port) : undefined;
        const out = await c.runner.run(cmd);
        // pgBackRest names the new backup on its console at level info: no second `info` on the critical path.
        const fromOutput = /new backup label = (\S+)/.exec(out.stdout)?.[1];
        let newLabel = fromOutput;
        if (local) newLabel = t.cluster ? (await markBackup(c, t.record.name, scope, { version: t.record.version, port: t.cluster.port }, fromOutput, xidBefore)).at(-1) : fromOutput;
        else {
          // A full into it bridges whatever it missed while suspended: restores from it may cross no earlier point.
          const bridged = d.type === 'full' ? c.clock.now().toISOString() : undefined;
          await updateManaged(c.fs, c.paths.clustersDir, t.record.name, (r) => ({
            ...r,
            repoMarks: fromOutput && xidBefore ? { ...r.repoMarks, [tier.name]: { label: fromOutput, nextXid: xidBefore } } : r.repoMarks,
            repos: bridged ? r.repos.map((a) => (a.name === tier.name ? { ...a, gaps: a.gaps.map((g) => (g.to === null ? { ...g, to: bridged } : g)) } : a)) : r.repos,
          }));
        }
        f.done[tier.name] = { label: newLabel, before, durationMs: Math.round(performance.now() - t0) };
      },
      show: [`$ ${renderArgv(effectiveArgv(cmd, 0))}`, '  then remember the new label and the transaction position read before it began (change detection)'],
    };
  });
  // pgBackRest resumes or refuses an interrupted backup by itself: no journal of pgmam's.
  return { target: label, steps: [...outage, align, ...steps], journal: false, quiet: true };
}

/** One cluster's backup: the module `backup` runs once per target through runBatch. */
export const backupTargetCommand: CommandModule<BackupTargetOptions, BackupFacts> = {
  spec: {
    name: 'backup',
    summary: 'back up managed clusters with pgBackRest: tiers, skip when unchanged, retention, export',
    options: backupTargetOptionsSchema,
    examples: [],
    target: (o) => o.name,
    destructive: false,
    waitsForLock: true,
    // An interrupted operation fails this cluster's backup with the command that settles it (decide).
    settles: false,
  },
  gather: gatherBackup,
  guards: backupGuards,
  plan: planBackup,
  report: async () => undefined,
};

/** The batch outcomes of one target, one per repository, in backup's own words (the JSON and text output users rely on). */
function outcomesOf(b: BatchOutcome<BackupTargetOptions, BackupFacts>, labelOf: (name: string) => string): Outcome[] {
  const f = b.run?.facts;
  const cluster = labelOf(b.target);
  if (b.result === 'done' && !b.run) return []; // --dry-run: its plan was printed
  if (b.result === 'done' && f)
    return [
      ...f.outage.suspend.map((s): Outcome => ({ cluster, repo: s.name, result: 'suspended', reason: `${s.waitingMb} MB of WAL waited only for it (repo-suspend-mb); it fails: ${s.reason}. Archiving goes on into the local repository; backup puts it back once it answers` })),
      ...f.outage.stillDown.map((x): Outcome => ({ cluster, repo: x.name, result: 'skipped', reason: `suspended, and still does not answer: ${x.reason}` })),
      ...f.outage.unreachable.filter((x) => !f.outage.suspend.some((s) => s.name === x.name)).map((x): Outcome => ({ cluster, repo: x.name, result: 'failed', reason: `does not answer: ${x.reason} (not tried; archiving goes on into the local repository, WAL waiting for it: ${f.outage.backlog?.waitingMb ?? 0} MB of repo-suspend-mb)` })),
      ...f.hostTaken.map((x): Outcome => ({ cluster, repo: x.name, result: 'skipped', reason: `taken on its host ${x.host} (pgmam repo backup-clients there)` })),
      ...f.tiers.map(({ tier, decision: d }): Outcome => {
      const done = f.done[tier.name];
      const repo = tier.name;
      const reattached = f.outage.reattach.some((a) => a.name === repo) ? { reattached: true } : {};
      if (d.action === 'backup' && done) return { cluster, repo, result: 'backed-up', type: d.type, label: done.label, expired: done.before, reason: d.why, durationMs: done.durationMs, ...reattached };
      if (d.action === 'skip') return { cluster, repo, result: 'skipped', reason: d.why };
      return { cluster, repo, result: 'skipped', reason: d.action === 'backup' ? `planned: ${d.type} backup (${d.why})` : 'nothing to do' };
      }),
    ];
  const d = f?.decision;
  if (b.refusedBy.includes('cluster-is-not-locked')) return [{ cluster, repo: null, result: 'locked', reason: `locked by another pgmam command for more than lock-wait` }];
  const why = b.lines.filter((l) => l.startsWith('pgmam: ')).map((l) => l.replace(/^pgmam: backup refused: |^pgmam: /, '')).join('; ');
  return [{ cluster, repo: null, result: 'failed', reason: b.result === 'refused' && d?.action === 'fail' ? d.why : why }];
}

export async function runBackup(ctx: Context, o: BackupOptions): Promise<void> {
  const { names, managed } = await batchTargets(ctx, 'backup', o, 'back up clusters');
  const runs = names.map((name) => ({ name, type: o.type, force: o.force, ...(o.repo ? { repo: o.repo } : {}), json: o.json, dryRun: o.dryRun, yes: true, keepOnError: false }));
  ctx.log.debug({ event: 'begin', command: 'backup', targets: names }, `begin backup of ${names.length} cluster(s)`);
  await runBatch(ctx, backupTargetCommand, runs, {
    concurrency: ctx.config['backup-parallel'],
    report: async (batch) => {
      const labelOf = (name: string) => managed.find((r) => r.name === name)?.cluster ?? name;
      const pairs = batch.flatMap((b) => outcomesOf(b, labelOf).map((out) => ({ b, out })));
      const outcomes = pairs.map((p) => p.out);
      if (o.dryRun) {
        const lines = outcomes.filter((x) => x.result !== 'backed-up').map((x) => `${x.cluster}: ${x.result === 'skipped' ? 'skip' : 'cannot back up'}: ${x.reason}`);
        if (o.exportTo) lines.push(`then export the repository of each backed-up stanza to ${o.exportTo} (new or changed files, each verified by size and SHA-256)`);
        if (lines.length) ctx.io.out(`${lines.join('\n')}\n`);
        return;
      }
      await settleExpired(ctx, pairs);
      let exported: ExportSummary | undefined;
      if (o.exportTo) {
        const ok = pairs.filter((p) => p.out.result === 'backed-up' || p.out.result === 'skipped').flatMap((p) => (p.b.run?.facts.target ? [p.b.run.facts.target.record] : []));
        const done = ok.filter((r, i) => ok.findIndex((x) => x.name === r.name) === i);
        const rerun = renderArgv(['pgmam', 'backup', ...(o.all ? ['--all'] : o.names), '--export-to', o.exportTo]);
        try {
          exported = await mirrorRepos(ctx, done, o.exportTo, rerun);
        } catch (e) {
          printOutcomes(ctx, o, outcomes, undefined);
          const why = String(e instanceof Error ? e.message : e).split('\n')[0];
          throw new StepFailedError(`backup --export-to ${o.exportTo} failed`, [`pgmam: backup --export-to ${o.exportTo} failed: ${why}`, `  the backups themselves are done; to finish the mirror, run: ${rerun}`]);
        }
      }
      ctx.log.debug({ event: 'end', command: 'backup', outcomes }, 'end backup');
      printOutcomes(ctx, o, outcomes, exported);
    },
  });
}

/** Expired = labels before the run that the repository no longer lists: one `info` per local repository, one per attached repository backed up into. */
async function settleExpired(ctx: Context, pairs: Array<{ b: BatchOutcome<BackupTargetOptions, BackupFacts>; out: Outcome }>): Promise<void> {
  const backedUp = pairs.flatMap(({ b, out }) => (out.result === 'backed-up' && b.run?.facts.target ? [{ t: b.run.facts.target, tier: b.run.facts.tiers.find((x) => x.tier.name === out.repo)?.tier, out }] : []));
  const expire = (out: Outcome, labels: string[] | undefined) => (out.expired = labels ? (out.expired ?? []).filter((l) => !labels.includes(l)) : []);
  const local = backedUp.filter((x) => x.tier?.index === 1);
  for (const repoPath of new Set(local.map(({ t }) => t.record.repoPath))) {
    const r = await ctx.runner.run(pgbr.info(repoScope(repoPath, ctx.paths.stanzaDir)), { check: false });
    const now = r.exitCode === 0 ? parseInfo(r.stdout) : undefined;
    for (const { t, out } of local.filter(({ t }) => t.record.repoPath === repoPath)) expire(out, now?.find((s) => s.name === t.record.stanza)?.backup.map((b) => b.label));
  }
  for (const { t, tier, out } of backedUp.filter((x) => x.tier && x.tier.index !== 1)) {
    const r = await ctx.runner.run(pgbr.info(stanzaScope(t.record.stanza, ctx.paths.stanzaDir), tier!.index), { check: false });
    expire(out, r.exitCode === 0 ? parseInfo(r.stdout)[0]?.backup.map((b) => b.label) : undefined);
  }
}

function printOutcomes(ctx: Context, o: BackupOptions, outcomes: Outcome[], exported: ExportSummary | undefined): void {
  const ok = outcomes.filter((x) => x.result === 'backed-up' || x.result === 'skipped').length;
  const suspended = outcomes.filter((x) => x.result === 'suspended').length;
  const bad = outcomes.length - ok - suspended;
  if (o.json) return ctx.io.out(`${JSON.stringify({ outcomes, exported: exported ?? null }, null, 2)}\n`);
  const where = (x: Outcome) => `${x.cluster}${x.repo && x.repo !== LOCAL_REPO ? ` → ${x.repo}` : ''}`;
  // Per cluster and repository: what was taken and why (auto's tier), its label and what expired; a skip says why, and how to force it.
  const detail = outcomes.map((x) =>
    x.result === 'backed-up'
      ? `${where(x)}: ${x.reattached ? 'back after its suspension: ' : ''}${x.type} backup ${x.label} (${x.reason}); ${x.expired?.length ? `expired ${x.expired.join(', ')}` : 'nothing expired'}`
      : x.result === 'skipped' && x.reason.startsWith('no changes')
        ? `${where(x)}: skipped: ${x.reason} (--force takes it anyway)`
        : `${where(x)}: ${x.result}: ${x.reason}`,
  );
  const summary = `backup: ${outcomes.filter((x) => x.result === 'backed-up').length} backed up, ${outcomes.filter((x) => x.result === 'skipped').length} skipped (no changes), ${bad} failed or locked${suspended ? `, ${suspended} repository suspended` : ''}${exported ? `; exported ${exported.copied} file(s) to ${exported.dir}` : ''}`;
  ctx.io.out(`${detail.join('\n')}\n${summary}\n`);
}

/** `pgmam backup <app>… | --all`: one backupTargetCommand per cluster, as a batch. */
export const backupBatch: CliBatch<BackupOptions> = {
  name: 'backup',
  summary: 'back up managed clusters with pgBackRest: tiers, skip when unchanged, retention, export',
  examples: ['pgmam backup --all                       # from cron: auto type', 'pgmam backup app1 --type full', 'pgmam backup app1 --repo offsite --type full', 'pgmam backup --all --export-to /mnt/offsite', 'legacy: pgbackup -path /mnt/offsite'],
  cli: {
    args: [{ syntax: '[apps...]', key: 'names', help: 'managed clusters (or --all)' }],
    flags: [
      { flags: '--all', help: 'every cluster pgmam manages' },
      { flags: '--type <type>', help: 'backup type; auto: full when due, else diff when due, else incr', choices: ['full', 'diff', 'incr', 'auto'], default: 'auto' },
      { flags: '--export-to <dir>', help: 'afterwards, mirror the repository of each stanza into DIR (a pgBackRest repository itself)' },
      { flags: '--force', help: 'back up even when nothing was written since the last backup' },
      { flags: '--repo <name>', help: "only into this repository ('local' or an attached one; default each the app has, each on its own tiers)" },
    ],
    input: z
      .object({ names: namesArg(), all: flag, type: z.enum(['full', 'diff', 'incr', 'auto']).default('auto'), exportTo: absolutePath('--export-to'), force: flag, repo: optionalNameArg('repository name') })
      .transform((o) => {
        if (!o.names.length && !o.all) throw new UsageError('backup needs cluster names or --all');
        if (o.names.length && o.all) throw new UsageError('backup takes cluster names or --all, not both');
        return o;
      }),
  },
  run: runBackup,
};
