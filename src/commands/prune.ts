// `pgmam prune <app> [--older-than 7d]`: remove preserved data directories (left by pitr, undo, sync,
// resetwal) older than the given age. pgmam never removes them on its own; this is the one way, guarded:
// typed name or --yes, --dry-run lists what would go, and nothing an interrupted operation still needs.
import type { Context } from '../context.js';
import { clusterIsNotLocked } from '../guards/cluster.js';
import { runsAsRoot } from '../guards/host.js';
import * as pg from '../pg/commands.js';
import { checkGuards, executePlan, type ExecuteFlags } from '../plan/executor.js';
import { fail, pass, type Plan, type Step } from '../plan/types.js';
import { describeJournal, ownerAlive, readJournal } from '../state/journal.js';
import { readLock } from '../state/lock.js';
import { updateManaged, type Preserved } from '../state/store.js';
import { managedClusters } from '../host/facts.js';

export interface PruneOptions extends ExecuteFlags {
  name: string;
  olderThanSeconds: number;
  json: boolean;
}

export async function runPrune(ctx: Context, o: PruneOptions): Promise<void> {
  const [managed, lock, journal] = await Promise.all([managedClusters(ctx), readLock(ctx.fs, ctx.paths.locksDir, o.name), readJournal(ctx.fs, ctx.paths.stateDir, o.name)]);
  const rec = managed.records.find((r) => r.name === o.name);
  const label = rec?.cluster ?? `15/${o.name}`;
  const now = ctx.clock.now().getTime();
  const dataDir = rec ? pg.dataDirOf({ version: rec.version, name: rec.name }) : '';
  const old = (rec?.preserved ?? []).filter((p) => now - Date.parse(p.createdAt) >= o.olderThanSeconds * 1000);
  // Only pgmam's own naming, next to the data directory: an edited record cannot point prune elsewhere.
  const strange = old.filter((p) => !p.path.startsWith(`${dataDir}.pre-`) || p.path.includes('/../'));
  const steps: Step[] = old.map((p: Preserved) => ({
    id: 'remove-preserved',
    title: `remove ${p.path} (${p.reason}, ${p.createdAt})`,
    effect: 'destroy',
    run: async (c: Context) => {
      await c.fs.rm(p.path, { recursive: true });
      await updateManaged(c.fs, c.paths.clustersDir, o.name, (r) => ({ ...r, preserved: r.preserved.filter((x) => x.path !== p.path) }));
    },
    show: [`rm -rf ${p.path}`],
  }));
  const plan: Plan = {
    command: 'prune',
    target: label,
    locks: [o.name],
    destructive: true,
    typeToConfirm: o.name,
    guards: [
      runsAsRoot(ctx.host.uid),
      { id: 'cluster-is-managed', check: () => (rec ? pass : fail(`${label} is not managed by pgmam`, 'see pgmam list')) },
      clusterIsNotLocked(o.name, lock, lock ? ownerAlive(ctx.host, lock) : false),
      // A rollback of an interrupted pitr or sync needs its preserved directory.
      { id: 'no-interrupted-operation', check: () => (journal ? fail(`${label}: ${describeJournal(journal)}`, 'finish or undo it first') : pass) },
      { id: 'preserved-paths-are-pgmams', check: () => (strange.length ? fail(`not a pgmam preserved directory of ${label}: ${strange.map((p) => p.path).join(', ')}`) : pass) },
    ],
    steps,
    journal: false,
    notes: [old.length ? `${old.length} preserved director${old.length === 1 ? 'y is' : 'ies are'} removed for good` : 'nothing to remove'],
  };
  checkGuards(plan);
  if (!old.length) return ctx.io.out(o.json ? '[]\n' : `${label}: no preserved directory is older than ${Math.round(o.olderThanSeconds / 3600)} h\n`);
  if ((await executePlan(ctx, plan, o)) === 'dry-run') return;
  ctx.io.out(o.json ? `${JSON.stringify(old.map((p) => p.path))}\n` : `${label}: removed ${old.map((p) => p.path).join(', ')}\n`);
}
