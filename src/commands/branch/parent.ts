// What branch create and branch sync share: the parent's facts and guards (the parent is never
// stopped, written to or reconfigured; its stanza never receives the branch's WAL), the restore of its
// backup with archiving off, and the branch's extras (--post-sql, --conf).
import type { Context } from '../../context.js';
import * as pg from '../../pg/commands.js';
import type { HostCluster } from '../../pg/clusters.js';
import * as pgbr from '../../pgbackrest/commands.js';
import { fail, pass, type Guard, type Step } from '../../plan/types.js';
import { backupWalArchived, emptySource, gatherSource, repoIsAttached, hasBackupGuard, selectSet, stanzaIsClustersOwn, targetGuards, timelineHistoryAvailable, type RestoreWant, type SourceFacts } from '../../restore/source.js';
import type { RestoreSource } from '../../restore/sequence.js';
import type { LiveCluster } from '../../restore/steps.js';
import type { TargetTime } from '../../restore/target.js';
import type { Cmd, Runner } from '../../runner/types.js';
import { currentPrimary, type ManagedCluster } from '../../state/store.js';
import { stanzaScope } from '../../pgbackrest/commands.js';

/** Settings a branch's --conf may not set: they would break its isolation from the parent. */
export const FORBIDDEN_CONF_KEYS = [
  'port', 'archive_command', 'archive_mode', 'archive_library', 'data_directory', 'restore_command',
  'config_file', 'hba_file', 'ident_file', 'include', 'include_dir', 'include_if_exists',
];
export const BRANCH_CONF_NAME = '91-pgmam-branch.conf';

export interface BranchExtras {
  /** --post-sql DIR: its *.sql files, in name order, with their text. */
  postSql?: { dir: string; files: Array<{ name: string; text: string }> | undefined };
  /** --conf FILE: its text. */
  conf?: { file: string; text: string | undefined };
}

export interface ParentFacts extends SourceFacts {
  record: ManagedCluster | undefined;
  cluster: HostCluster | undefined;
  /** Entries of pg_tblspc: tablespaces outside the data directory. */
  tablespaces: string[];
  /** Top-level entries of the parent's archive directory before anything runs. */
  archiveDir: string | undefined;
  archiveBefore: string[];
}

export async function gatherParent(ctx: Context, runner: Runner, name: string, managed: ManagedCluster[], clusters: HostCluster[], want: RestoreWant = {}): Promise<ParentFacts> {
  // An app's primary now: after a failover, the promoted replica (the branch keeps the app's name).
  const record = currentPrimary(managed, name);
  const cluster = record && clusters.find((c) => c.name === name && c.version === record.version);
  const f: ParentFacts = { ...emptySource(), record, cluster, tablespaces: [], archiveDir: undefined, archiveBefore: [] };
  if (!record || !cluster?.dataDir || ctx.host.uid !== 0) return f;
  Object.assign(f, await gatherSource(ctx, runner, record, cluster, want));
  f.tablespaces = await ctx.fs.readdir(`${cluster.dataDir}/pg_tblspc`);
  const archiveId = f.stanza?.archive.at(-1)?.id;
  if (archiveId) {
    f.archiveDir = `${record.repoPath}/archive/${record.stanza}/${archiveId}`;
    f.archiveBefore = await ctx.fs.readdir(f.archiveDir);
  }
  return f;
}

export async function gatherExtras(ctx: Context, o: { postSql?: string; conf?: string }): Promise<BranchExtras> {
  const extras: BranchExtras = {};
  if (o.postSql) {
    const exists = await ctx.fs.stat(o.postSql);
    const names = exists?.isDirectory ? (await ctx.fs.readdir(o.postSql)).filter((n) => n.endsWith('.sql')).sort() : undefined;
    extras.postSql = {
      dir: o.postSql,
      files: names && (await Promise.all(names.map(async (n) => ({ name: n, text: (await ctx.fs.readText(`${o.postSql}/${n}`)) ?? '' })))),
    };
  }
  if (o.conf) extras.conf = { file: o.conf, text: await ctx.fs.readText(o.conf).catch(() => undefined) };
  return extras;
}

/** `key = value` lines of a --conf file (comments and blank lines skipped). */
export function parseConfLines(text: string): Array<{ key: string; line: string }> {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((line) => ({ key: (/^([A-Za-z_][A-Za-z0-9_.]*)/.exec(line)?.[1] ?? line).toLowerCase(), line }));
}

export function extrasGuards(e: BranchExtras): Guard[] {
  const guards: Guard[] = [];
  if (e.postSql)
    guards.push({
      id: 'post-sql-dir-is-readable',
      check: () => (e.postSql!.files ? pass : fail(`--post-sql ${e.postSql!.dir} is not a readable directory`)),
    });
  if (e.conf)
    guards.push({
      id: 'conf-keeps-isolation',
      check() {
        if (e.conf!.text === undefined) return fail(`cannot read --conf ${e.conf!.file}`);
        const bad = parseConfLines(e.conf!.text).filter((l) => FORBIDDEN_CONF_KEYS.includes(l.key)).map((l) => l.key);
        return bad.length ? fail(`--conf ${e.conf!.file} sets ${bad.join(', ')}, which would break the branch's isolation from its parent`, `pgmam sets those itself; remove them from ${e.conf!.file}`) : pass;
      },
    });
  return guards;
}

function tablespaceGuard(p: ParentFacts, label: string): Guard {
  return {
    id: 'parent-has-no-tablespaces',
    check: () =>
      p.tablespaces.length
        ? fail(`${label} has tablespaces outside its data directory (pg_tblspc: ${p.tablespaces.join(', ')}): a restore would write into the parent's tablespace directories`, 'branches of clusters with tablespaces are not supported yet')
        : pass,
  };
}

export function parentGuards(p: ParentFacts, label: string, at: TargetTime | undefined, now: Date): Guard[] {
  const guards: Guard[] = [
    {
      id: 'parent-is-managed',
      check: () => (!p.record ? fail(`${label} is not managed by pgmam`, 'see pgmam list') : !p.cluster ? fail(`${label} is managed by pgmam but the host has no such cluster`) : pass),
    },
  ];
  if (!p.record || !p.cluster) return guards;
  guards.push(repoIsAttached(p), stanzaIsClustersOwn(p, label, p.record.stanza, p.cluster), timelineHistoryAvailable(p, label), tablespaceGuard(p, label));
  if (at) guards.push(...targetGuards(p, at, { label, name: p.record.name, now, online: p.cluster.running, timelines: p.record.timelines }));
  else guards.push(hasBackupGuard(p, label));
  guards.push(backupWalArchived(p, selectSet(p, at).set));
  return guards;
}

/** The restore of the parent's backup into the branch's data directory, archiving off. */
export function restoreFromParent(p: ParentFacts, branchDataDir: string, at: TargetTime | undefined, stanzaDir: string): { restore: Cmd; what: string } {
  const set = selectSet(p, at).set;
  const scope = stanzaScope(p.record?.stanza ?? '?', stanzaDir);
  const restore = pgbr.restore(scope, {
    set: set?.label ?? '?',
    type: at ? 'time' : 'default',
    target: at?.text,
    targetTimeline: p.currentTimeline,
    pg1Path: branchDataDir,
    archiveModeOff: true,
    repo: p.repo.index,
  });
  const from = p.repo.index === 1 ? 'the local repository' : `repository ${p.repo.name} (repo${p.repo.index})`;
  return { restore, what: `restore the parent's backup ${set?.label ?? '?'} into ${branchDataDir}${at ? ` and replay to ${at.text}` : ' and replay its whole archive'}, archiving off, from ${from}: ${p.repo.why}` };
}

/** The parent as a source of the restore sequence: its history, a WAL switch when it runs, the restore. */
export function parentSource(p: ParentFacts, branchDataDir: string, at: TargetTime | undefined, stanzaDir: string): RestoreSource {
  const version = p.record?.version ?? '?';
  const live: LiveCluster | undefined = p.cluster?.running ? { id: { version, name: p.record!.name }, port: p.cluster.port, dataDir: p.cluster.dataDir!, logFile: p.cluster.logFile } : undefined;
  return {
    kind: 'stanza',
    facts: p,
    dataDir: p.cluster?.dataDir ?? '',
    scope: stanzaScope(p.record?.stanza ?? '?', stanzaDir),
    // Makes the parent's newest commits restorable; changes no data of the parent.
    live,
    ...restoreFromParent(p, branchDataDir, at, stanzaDir),
  };
}

export const noParent = (): ParentFacts => ({ ...emptySource(), record: undefined, cluster: undefined, tablespaces: [], archiveDir: undefined, archiveBefore: [] });

export function postSqlStep(c: LiveCluster, e: BranchExtras, systemd: boolean): Step[] {
  const files = e.postSql?.files;
  if (!files?.length) return [];
  return [
    {
      id: 'run-post-sql',
      title: `run ${files.length} script(s) of ${e.postSql!.dir} against ${pg.clusterLabel(c.id)}`,
      effect: 'write',
      keepOnFailure: true,
      run: async (ctx) => {
        for (const f of files) {
          try {
            await ctx.runner.run(pg.psqlScript({ version: c.id.version, port: c.port }, f.text));
          } catch (err) {
            // Handed over stopped, never half-masked: the branch stays listed for inspection.
            await ctx.runner.run(pg.controlCluster(c.id, 'stop', systemd), { check: false });
            throw new Error(`${e.postSql!.dir}/${f.name} failed; the branch is left stopped and listed:\n${err instanceof Error ? err.message : String(err)}`);
          }
        }
      },
      show: files.map((f) => `  psql -f ${e.postSql!.dir}/${f.name}`),
    },
  ];
}

export function confStep(confDir: string, e: BranchExtras, owner: { uid: number; gid: number }): Step[] {
  if (e.conf?.text === undefined) return [];
  const body = `# Written by pgmam from ${e.conf.file}\n${parseConfLines(e.conf.text).map((l) => l.line).join('\n')}\n`;
  return [
    {
      id: 'apply-branch-conf',
      title: `apply ${e.conf.file} (${confDir}/conf.d/${BRANCH_CONF_NAME})`,
      effect: 'write',
      run: (ctx) => ctx.fs.writeFileAtomic(`${confDir}/conf.d/${BRANCH_CONF_NAME}`, body, { mode: 0o644, owner }),
      show: [`write ${confDir}/conf.d/${BRANCH_CONF_NAME}`],
    },
  ];
}


