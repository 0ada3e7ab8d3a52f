// A restore drill's own parts around the shared restore sequence: the scratch cluster it restores into
// (closed to users, archiving off, no stanza, never started at boot, no TCP), the checks of the
// restored copy (pg_amcheck, the app's SQL probe), RTO and RPO measured, and the scratch removed.
import type { Context } from '../context.js';
import { parseControlData, type RecoveryMinimum } from '../pg/controldata.js';
import * as pg from '../pg/commands.js';
import { lsnBytes } from '../pg/replication.js';
import type { Step } from '../plan/types.js';
import { renderArgv, type Cmd } from '../runner/types.js';
import { savedHbaPath } from '../steps/hand-over.js';
import { updateManaged, type DrillResult } from '../state/store.js';
import type { LiveCluster, RecoveredState } from './steps.js';
import { historyFileName, parseHistory } from './timeline.js';
import { parseVerifyProblems } from '../pgbackrest/info.js';

/** The scratch cluster's name: the app's with `_drill`, shortened (with a hash of the whole) to fit the name pattern. */
export function scratchName(app: string): string {
  if (app.length <= 42) return `${app}_drill`;
  let h = 0x811c9dc5;
  for (const ch of app) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return `${app.slice(0, 34)}_${h.toString(16).padStart(8, '0').slice(0, 7)}_drill`;
}

/** What the drill's steps measure as they run; record-drill turns it into the result. */
export interface DrillMeasures {
  /** The app's WAL position and time when the drill began. */
  startLsn: string | undefined;
  startAtMs: number | undefined;
  /**
   * The commits in the app's WAL the archive did not hold yet when the drill began (pg_waldump of its
   * pg_wal); undefined when that could not be read.
   */
  atRisk: Array<{ lsn: string; atMs: number }> | undefined;
  restoreBeganMs: number | undefined;
  promotedMs: number | undefined;
  databases: number | undefined;
  probeLines: number | undefined;
  result: DrillResult | undefined;
}

export const newMeasures = (): DrillMeasures => ({ startLsn: undefined, startAtMs: undefined, atRisk: undefined, restoreBeganMs: undefined, promotedMs: undefined, databases: undefined, probeLines: undefined, result: undefined });

/** The LSN where the segment after `wal` (a WAL file name) begins. */
export function segmentEndLsn(wal: string, segmentBytes: number): string {
  const log = BigInt(`0x${wal.slice(8, 16)}`);
  const seg = BigInt(`0x${wal.slice(16, 24)}`);
  return formatLsn((log << 32n) + (seg + 1n) * BigInt(segmentBytes));
}

export const formatLsn = (v: bigint) => `${(v >> 32n).toString(16).toUpperCase()}/${(v & 0xffffffffn).toString(16).toUpperCase()}`;

/** Commit records in pg_waldump's output (run with TZ=UTC): their LSN and commit time. */
export function parseWaldumpCommits(text: string): Array<{ lsn: string; atMs: number }> {
  const out: Array<{ lsn: string; atMs: number }> = [];
  for (const m of text.matchAll(/lsn: ([0-9A-F]+\/[0-9A-F]+),.*desc: COMMIT (\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?) UTC/g)) out.push({ lsn: m[1]!, atMs: Date.parse(`${m[2]}T${m[3]}Z`) });
  return out;
}

/** On the app's current timeline: pg_waldump assumes timeline 1 otherwise (and finds no file after a pitr). */
export const waldumpCommits = (version: string, pgWal: string, timeline: number, from: string, to: string): Cmd => ({
  argv: [pg.pgBin(version, 'pg_waldump'), `--path=${pgWal}`, `--timeline=${timeline}`, `--start=${from}`, `--end=${to}`, '--rmgr=Transaction'],
  asUser: 'postgres',
  env: { TZ: 'UTC' },
  effect: 'read',
  timeoutMs: 60_000,
});

/**
 * Where the app is before anything runs: running, its WAL write position (pg_current_wal_lsn) and
 * time; stopped, its last checkpoint. Nothing is written to it — no WAL switch — so the RPO is what a
 * restore would lose now: the commits in its WAL after the archive's newest segment (`archivedWal`),
 * read from its pg_wal with pg_waldump.
 */
export function noteAppPositionStep(app: { id: pg.ClusterId; port: number; dataDir: string; running: boolean; timeline: number; archivedWal: string | undefined; segmentBytes: number }, m: DrillMeasures): Step {
  const sql = "select pg_current_wal_lsn()::text || '|' || (extract(epoch from clock_timestamp()) * 1000)::bigint::text";
  return {
    id: 'note-app-position',
    title: `note where ${pg.clusterLabel(app.id)} is now (its WAL position, and the commits its archive does not hold yet): the RPO is measured against it`,
    effect: 'read',
    run: async (ctx) => {
      if (app.running) {
        const [lsn, ms] = (await ctx.runner.run(pg.psqlValue({ version: app.id.version, port: app.port }, sql))).stdout.trim().split('|');
        m.startLsn = lsn;
        m.startAtMs = Number(ms);
      } else {
        const c = parseControlData((await ctx.runner.run(pg.pgControlData(app.id.version, app.dataDir))).stdout);
        if (!c.checkpointLsn) throw new Error(`pg_controldata of ${app.dataDir} shows no latest checkpoint location`);
        m.startLsn = c.checkpointLsn;
        m.startAtMs = ctx.clock.now().getTime();
      }
      if (!app.archivedWal || !m.startLsn) return;
      const from = segmentEndLsn(app.archivedWal, app.segmentBytes);
      if (lsnBytes(from) >= lsnBytes(m.startLsn)) return void (m.atRisk = []);
      const r = await ctx.runner.run(waldumpCommits(app.id.version, `${app.dataDir}/pg_wal`, app.timeline, from, m.startLsn), { check: false });
      // "could not find a valid record": nothing after `from` but the position itself.
      if (r.exitCode === 0 || /could not find a valid record after/.test(r.stderr)) m.atRisk = parseWaldumpCommits(r.stdout);
      else ctx.log.warn({ event: 'waldump-failed', stderr: r.stderr.trim().split('\n').at(-1) }, `pg_waldump could not read ${app.dataDir}/pg_wal: the RPO in seconds will be an upper bound`);
    },
    show: [
      app.running ? `  $ psql -p ${app.port} -c "select pg_current_wal_lsn(), clock_timestamp()"  (reads only)` : `  $ pg_controldata ${app.dataDir}  (its latest checkpoint location)`,
      `  $ pg_waldump --path=${app.dataDir}/pg_wal --timeline=${app.timeline} --start=<after ${app.archivedWal ?? 'the archive'}> --end=<that position> --rmgr=Transaction  (the commits not archived yet)`,
    ],
  };
}

/** pg_createcluster, never started at boot (start.conf manual). */
export function createScratchCmd(id: pg.ClusterId, port: number, dataDir: string): Cmd {
  const c = pg.createCluster(id, port, dataDir);
  return { ...c, argv: [c.argv[0]!, '--start-conf', 'manual', ...c.argv.slice(1)] };
}

/** Removes the scratch cluster whole: idempotent (also after a kill, by a re-run's settling). */
export async function removeScratch(ctx: Context, id: pg.ClusterId, dataDir: string): Promise<void> {
  await ctx.runner.run(pg.dropCluster(id), { check: false });
  // pg_dropcluster leaves the configuration directory when it holds files it did not create (conf.d).
  await ctx.fs.rm(pg.confDirOf(id), { recursive: true });
  await ctx.fs.rm(dataDir, { recursive: true });
  await ctx.fs.rm(savedHbaPath(ctx.paths.stateDir, id.name));
  if (await ctx.fs.exists(dataDir)) throw new Error(`${dataDir} is still there`);
}

export const removeScratchShown = (id: pg.ClusterId, dataDir: string) => [`$ pg_dropcluster --stop ${id.version} ${id.name}`, `rm -rf ${pg.confDirOf(id)} ${dataDir}`];

export function createScratchStep(id: pg.ClusterId, port: number, dataDir: string): Step {
  const cmd = createScratchCmd(id, port, dataDir);
  return {
    id: 'create-scratch-cluster',
    title: `create the scratch cluster ${pg.clusterLabel(id)} on port ${port} (not started at boot)`,
    effect: 'write',
    // Its system identifier goes into the journal: a re-run's settling acts only on this cluster.
    run: async (ctx) => {
      await ctx.runner.run(cmd);
      const r = await ctx.runner.run(pg.pgControlData(id.version, dataDir), { check: false });
      return { journal: { systemId: parseControlData(r.stdout).systemId } };
    },
    show: [`$ ${renderArgv(cmd.argv)}`],
    undo: { title: `drop the scratch cluster ${pg.clusterLabel(id)}`, run: (ctx) => removeScratch(ctx, id, dataDir), show: removeScratchShown(id, dataDir) },
  };
}

export const DRILL_CONF_NAME = '90-pgmam-drill.conf';

/** The scratch copy's settings: no archiving, no TCP, and at least the app's values of what WAL replay checks. */
export function renderDrillConf(app: string, minimums: Partial<Record<RecoveryMinimum, number>>): string {
  return [
    `# Written by pgmam drill: a scratch copy of ${app}, restored to prove its backups; removed with it.`,
    'archive_mode = off',
    "archive_command = ''",
    "listen_addresses = ''",
    ...Object.entries(minimums).map(([k, v]) => `${k} = ${v}`),
    '',
  ].join('\n');
}

export function configureScratchStep(id: pg.ClusterId, text: string, owner: { uid: number; gid: number }): Step {
  const file = `${pg.confDirOf(id)}/conf.d/${DRILL_CONF_NAME}`;
  return {
    id: 'configure-scratch',
    title: `configure ${pg.clusterLabel(id)}: archiving off, no TCP, the app's replay minimums (${file})`,
    effect: 'write',
    run: async (ctx) => {
      await ctx.fs.mkdirp(`${pg.confDirOf(id)}/conf.d`, { mode: 0o755, owner });
      await ctx.fs.writeFileAtomic(file, text, { mode: 0o644, owner });
    },
    show: [`write ${file}:`, ...text.trimEnd().split('\n').map((l) => `  | ${l}`)],
  };
}

/** A step with the time it began or ended noted (RTO: from the restore's beginning to the promotion). */
export function timed(step: Step, note: { began?: (ms: number) => void; ended?: (ms: number) => void }): Step {
  const run = step.run;
  return {
    ...step,
    run: async (ctx) => {
      note.began?.(performance.now());
      const out = typeof run === 'function' ? await run(ctx) : void (await ctx.runner.run(run));
      note.ended?.(performance.now());
      return out;
    },
    show: step.show ?? (typeof run === 'function' ? [] : [`$ ${renderArgv(run.argv)}`]),
  };
}

/**
 * The restore, and when it fails, `pgbackrest verify` of the same set: pgBackRest's restore error says
 * what broke (an lz4 checksum, say), verify names the damaged file in the repository.
 */
export function diagnosedRestore(step: Step, verify: Cmd): Step {
  const run = step.run;
  return {
    ...step,
    run: async (ctx) => {
      try {
        if (typeof run === 'function') await run(ctx);
        else await ctx.runner.run(run);
      } catch (e) {
        const said = String(e instanceof Error ? e.message : e);
        const v = await ctx.runner.run(verify, { check: false });
        const damaged = parseVerifyProblems(`${v.stdout}\n${v.stderr}`);
        const error = said.split('\n').find((l) => /ERROR: \[\d+\]/.test(l))?.trim();
        const head = damaged.length ? `the backup is damaged: ${damaged.join('; ')} (pgbackrest verify)` : (error ?? said.split('\n')[0]);
        throw new Error(`${head}${damaged.length && error ? `; the restore said: ${error}` : ''}\n${said}`);
      }
    },
    show: [...(step.show ?? (typeof run === 'function' ? [] : [`$ ${renderArgv(run.argv)}`])), `  if it fails: $ ${renderArgv(verify.argv)}  (names the damaged files)`],
  };
}

export const amcheckCmd = (t: { version: string; port: number }): Cmd => ({
  argv: [pg.pgBin(t.version, 'pg_amcheck'), '-h', pg.SOCKET_DIR, '-p', String(t.port), '-U', 'postgres', '--all', '--heapallindexed', '--install-missing'],
  asUser: 'postgres',
  effect: 'write',
});

/** pg_amcheck of every database (tables with all their index entries); it installs amcheck in the scratch copy only. */
export function amcheckStep(c: LiveCluster, m: DrillMeasures): Step {
  const cmd = amcheckCmd({ version: c.id.version, port: c.port });
  return {
    id: 'amcheck',
    title: `check every database of ${pg.clusterLabel(c.id)} with pg_amcheck (heap and every index entry)`,
    effect: 'write',
    run: async (ctx) => {
      const r = await ctx.runner.run(cmd, { check: false });
      if (r.exitCode !== 0) {
        const said = `${r.stdout}\n${r.stderr}`.trim().split('\n').filter(Boolean);
        throw new Error(`pg_amcheck exited ${r.exitCode}${r.exitCode === 2 ? ' (corruption found)' : ''}: ${said.slice(0, 6).join(' | ') || 'no output'}`);
      }
      m.databases = Number((await ctx.runner.run(pg.psqlValue({ version: c.id.version, port: c.port }, 'select count(*) from pg_database where datallowconn'))).stdout.trim());
    },
    show: [`$ ${renderArgv(cmd.argv)}`],
  };
}

/** The app's own probe (drill-probe-dir/<app>.sql) on the restored copy: it must print something. */
export function probeStep(c: LiveCluster, probe: { path: string; text: string }, m: DrillMeasures): Step {
  const q = pg.psqlValue({ version: c.id.version, port: c.port }, '');
  // The probe from stdin (root read it from pgmam's own directory): psql as postgres needs no access to the file.
  const cmd: Cmd = { ...q, argv: [...q.argv.slice(0, q.argv.indexOf('-c')), '-f', '-'], input: probe.text };
  return {
    id: 'probe',
    title: `run the app's probe ${probe.path} on ${pg.clusterLabel(c.id)}: its result must not be empty`,
    effect: 'write',
    run: async (ctx) => {
      const r = await ctx.runner.run(cmd, { check: false });
      if (r.exitCode !== 0) throw new Error(`the probe ${probe.path} failed (psql exit ${r.exitCode}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
      const lines = r.stdout.split('\n').filter((l) => l.trim() !== '');
      if (!lines.length) throw new Error(`the probe ${probe.path} returned nothing: the restored copy lacks what it looks for`);
      m.probeLines = lines.length;
    },
    show: [`$ ${renderArgv(cmd.argv)} < ${probe.path}`, ...probe.text.trimEnd().split('\n').map((l) => `  | ${l}`)],
  };
}

/** RTO and RPO of the run, from the measures and the new timeline's history file (where recovery ended). */
export function drillResult(m: DrillMeasures, endLsn: string | undefined, recovered: RecoveredState, o: { at: string; backup: string | null; repo: string }): DrillResult {
  const rto = m.restoreBeganMs !== undefined && m.promotedMs !== undefined ? round((m.promotedMs - m.restoreBeganMs) / 1000) : null;
  const rpoBytes = m.startLsn && endLsn ? Math.max(0, lsnBytes(m.startLsn) - lsnBytes(endLsn)) : null;
  const lastUs = recovered.lastReplayUs;
  const lost = rpoBytes === null || endLsn === undefined ? undefined : rpoBytes === 0 ? [] : m.atRisk?.filter((c) => lsnBytes(c.lsn) >= lsnBytes(endLsn));
  // Lost commits: the time since the first of them. Unknown which: at most the time since the last one restored.
  const rpo =
    m.startAtMs === undefined || rpoBytes === null
      ? null
      : lost
        ? lost.length ? round(Math.max(0, (m.startAtMs - Math.min(...lost.map((c) => c.atMs))) / 1000)) : 0
        : lastUs !== undefined ? round(Math.max(0, m.startAtMs / 1000 - lastUs / 1e6)) : null;
  return { at: o.at, ok: true, rtoSeconds: rto, rpoSeconds: rpo, rpoBytes, lostTransactions: lost ? lost.length : null, lastReplayedAt: lastUs === undefined ? null : new Date(lastUs / 1000).toISOString(), backup: o.backup, repo: o.repo, failedStep: null, error: null };
}

const round = (s: number) => Math.round(s * 100) / 100;

/** The result into the app's record (under the app's lock, which the drill holds). */
export function recordDrillStep(app: string, c: LiveCluster, m: DrillMeasures, recovered: RecoveredState, o: { at: string; backup: string | null; repo: string }): Step {
  return {
    id: 'record-drill',
    title: `record the drill's RTO and RPO in pgmam's record of ${app}`,
    effect: 'write',
    run: async (ctx) => {
      const history = await ctx.fs.readText(`${c.dataDir}/pg_wal/${historyFileName(recovered.timeline)}`);
      const end = history === undefined ? undefined : parseHistory(history).at(-1)?.switchLsn;
      const endLsn = end === undefined ? undefined : formatLsn(end);
      const r = drillResult(m, endLsn, recovered, o);
      m.result = r;
      await updateManaged(ctx.fs, ctx.paths.clustersDir, app, (rec) => ({ ...rec, drill: { last: r, lastOk: r } }));
    },
    show: [`  RTO: from the restore's beginning to the promotion; RPO: the app's position noted first against where recovery ended (${'<timeline>'}.history)`],
  };
}

export function dropScratchStep(id: pg.ClusterId, dataDir: string): Step {
  return {
    id: 'drop-scratch-cluster',
    title: `drop the scratch cluster ${pg.clusterLabel(id)}`,
    effect: 'destroy',
    run: (ctx) => removeScratch(ctx, id, dataDir),
    show: removeScratchShown(id, dataDir),
  };
}
