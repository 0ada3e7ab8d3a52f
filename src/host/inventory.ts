// The host's clusters as list and check see them: pg_lsclusters, pgmam's records, one
// `pgbackrest info` per repository, and interrupted operations — read-only.
import type { Context } from '../context.js';
import type { HostCluster } from '../pg/clusters.js';
import { clusterLabel } from '../pg/commands.js';
import * as pgbr from '../pgbackrest/commands.js';
import { firstBackup, lastBackup, parseInfo, type StanzaInfo } from '../pgbackrest/info.js';
import { ReadOnlyRunner } from '../runner/wrappers.js';
import { ownerAlive, readJournals, stepName, type Journal } from '../state/journal.js';
import type { ManagedCluster, Preserved } from '../state/store.js';
import { repoScope } from '../pgbackrest/commands.js';
import { managedClusters, newestArchivedAt, readClusters } from './facts.js';

export interface ListEntry {
  cluster: string;
  name: string;
  version: string;
  port: number | null;
  /** dropped: pgmam drop removed it; only its preserved data directories are left (prune removes them). */
  status: 'online' | 'down' | 'missing' | 'dropped';
  dataDir: string | null;
  managed: boolean;
  role: 'app' | 'branch' | 'unmanaged';
  parent: string | null;
  stanza: string | null;
  lastBackup: { type: string; label: string; stoppedAt: string } | null;
  recoveryWindow: { from: string; to: string } | null;
  preserved: Preserved[];
  /** A pgmam operation on this cluster that was killed or failed half-way, and the command that finishes or undoes it. */
  interrupted: { command: string; step: string; status: 'running' | 'failed'; since: string; rerun: string; error: string | null } | null;
}

export interface ListFacts {
  clusters: HostCluster[];
  managed: ManagedCluster[];
  /** Records of dropped clusters kept for their preserved directories. */
  dropped: ManagedCluster[];
  /** stanza name → info, for every repository a managed cluster uses; undefined when unreadable. */
  stanzas: Map<string, StanzaInfo> | undefined;
  /** stanza name → when its newest archived WAL file was written. */
  archivedAt: Map<string, Date>;
  /** Journals of operations whose process (and children) are gone. */
  interrupted: Journal[];
  problems: string[];
}

export async function gatherListFacts(ctx: Context): Promise<ListFacts> {
  const runner = new ReadOnlyRunner(ctx.runner);
  const problems: string[] = [];
  const [clusters, managed, journals] = await Promise.all([readClusters(runner), managedClusters(ctx), readJournals(ctx.fs, ctx.paths.stateDir)]);
  const stopped = journals.filter((j) => !ownerAlive(ctx.host, j));
  // Journals of host-wide operations (the schedule) are not clusters: named here, not listed as rows.
  const interrupted = stopped.filter((j) => !j.name.startsWith('_'));
  for (const j of stopped.filter((x) => x.name.startsWith('_'))) problems.push(`${j.status === 'failed' ? 'failed' : 'interrupted'} ${j.command} at ${stepName(j)}${j.rerun ? ` (run: ${j.rerun})` : ''}`);
  for (const f of managed.unreadable) problems.push(`cannot read pgmam state ${f}`);

  let stanzas: Map<string, StanzaInfo> | undefined;
  const archivedAt = new Map<string, Date>();
  const repos = [...new Set(managed.records.map((r) => r.repoPath))];
  const canReadRepo = ctx.host.uid === 0;
  if (repos.length && !canReadRepo) problems.push('backup information not shown: reading the pgBackRest repository needs root (run with sudo)');
  if (repos.length && canReadRepo) {
    stanzas = new Map();
    // One `info` per repository, covering all its stanzas — not one call per cluster.
    const results = await Promise.all(
      repos.map(async (repoPath) => ({ repoPath, r: await runner.run(pgbr.info(repoScope(repoPath, ctx.paths.stanzaDir)), { check: false }) })),
    );
    for (const { repoPath, r } of results) {
      if (r.exitCode !== 0) {
        problems.push(`pgbackrest info failed for repository ${repoPath}: ${r.stderr.trim().split('\n').at(-1) ?? ''}`);
        continue;
      }
      for (const s of parseInfo(r.stdout)) stanzas.set(s.name, s);
    }
    await Promise.all(
      managed.records.map(async (rec) => {
        const s = stanzas!.get(rec.stanza);
        const at = s && (await newestArchivedAt(ctx.fs, rec.repoPath, s));
        if (at) archivedAt.set(rec.stanza, at);
      }),
    );
  }
  return { clusters, managed: managed.records, dropped: managed.dropped, stanzas, archivedAt, interrupted, problems };
}

const iso = (epochSeconds: number) => new Date(epochSeconds * 1000).toISOString();

export function buildList(f: ListFacts): ListEntry[] {
  const byLabel = new Map(f.managed.map((m) => [m.cluster, m]));
  const entries: ListEntry[] = f.clusters.map((c) => {
    const m = byLabel.get(clusterLabel(c));
    return entry(c.version, c.name, c, m, f);
  });
  // Managed clusters the host no longer has are shown, not hidden.
  for (const m of f.managed) if (!f.clusters.some((c) => clusterLabel(c) === m.cluster)) entries.push(entry(m.version, m.name, undefined, m, f));
  // Dropped ones still holding preserved data directories: listed until prune removes those.
  for (const m of f.dropped ?? []) if (!entries.some((e) => e.name === m.name)) entries.push({ ...entry(m.version, m.name, undefined, undefined, f), status: 'dropped', role: m.role, parent: m.parent, preserved: m.preserved });
  // So is an operation interrupted before its cluster existed (initcluster killed at its first steps).
  for (const j of f.interrupted) if (!entries.some((e) => e.name === j.name)) entries.push(entry(j.target.split('/')[0] ?? '?', j.name, undefined, undefined, f));
  return entries;
}

function entry(version: string, name: string, c: HostCluster | undefined, m: ManagedCluster | undefined, f: ListFacts): ListEntry {
  const s = m ? f.stanzas?.get(m.stanza) : undefined;
  const last = s && lastBackup(s);
  const first = s && firstBackup(s);
  let recoveryWindow: ListEntry['recoveryWindow'] = null;
  if (first && last) {
    const archived = f.archivedAt.get(m!.stanza);
    const lastStop = last.timestamp.stop * 1000;
    recoveryWindow = { from: iso(first.timestamp.stop), to: new Date(Math.max(lastStop, archived?.getTime() ?? 0)).toISOString() };
  }
  return {
    cluster: `${version}/${name}`,
    name,
    version,
    port: c?.port ?? null,
    status: c ? (c.running ? 'online' : 'down') : 'missing',
    dataDir: c?.dataDir ?? null,
    managed: Boolean(m),
    role: m ? m.role : 'unmanaged',
    parent: m?.parent ?? null,
    stanza: m?.stanza ?? null,
    lastBackup: last ? { type: last.type, label: last.label, stoppedAt: iso(last.timestamp.stop) } : null,
    recoveryWindow,
    preserved: m?.preserved ?? [],
    interrupted: interruptedOf(f.interrupted.find((j) => j.name === name)),
  };
}

const interruptedOf = (j: Journal | undefined): ListEntry['interrupted'] =>
  j ? { command: j.command, step: stepName(j), status: j.status, since: j.startedAt, rerun: j.rerun, error: j.error } : null;
