// `pgmam branch list`: the branches with their parent, created and synced times, port and status. Read-only.
import { z } from 'zod';
import type { Context } from '../../context.js';
import { managedClusters, readClusters } from '../../host/facts.js';
import type { HostCluster } from '../../pg/clusters.js';
import { runFlagsSchema, type CommandModule } from '../../plan/command.js';
import { humanTime, renderTable } from '../../plan/render.js';
import type { ManagedCluster } from '../../state/store.js';

export const branchListOptionsSchema = runFlagsSchema;
export type BranchListOptions = z.infer<typeof branchListOptionsSchema>;

export interface BranchRow {
  cluster: string;
  name: string;
  parent: string | null;
  createdAt: string;
  syncedAt: string | null;
  port: number | null;
  status: 'online' | 'down' | 'missing';
}

export function branchRows(managed: ManagedCluster[], clusters: HostCluster[]): BranchRow[] {
  return managed
    .filter((r) => r.role === 'branch')
    .map((r) => {
      const c = clusters.find((x) => x.name === r.name && x.version === r.version);
      return { cluster: r.cluster, name: r.name, parent: r.parent, createdAt: r.createdAt, syncedAt: r.syncedAt, port: c?.port ?? null, status: c ? (c.running ? 'online' : 'down') : 'missing' };
    });
}

export function renderBranchTable(rows: BranchRow[]): string {
  return renderTable(['BRANCH', 'PARENT', 'PORT', 'STATUS', 'CREATED', 'SYNCED'], rows.map((r) => [r.cluster, r.parent ?? '-', String(r.port ?? '-'), r.status, humanTime(r.createdAt), r.syncedAt ? humanTime(r.syncedAt) : '-']));
}

export const branchListCommand: CommandModule<BranchListOptions, BranchRow[]> = {
  spec: {
    name: 'branch list',
    summary: 'branches with their parent, created and synced times, port and status',
    cli: { input: z.object({}) },
    options: branchListOptionsSchema,
    examples: ['pgmam branch list --json'],
    destructive: false,
  },
  gather: async (ctx: Context) => {
    const [managed, clusters] = await Promise.all([managedClusters(ctx), readClusters(ctx.runner)]);
    return branchRows(managed.records, clusters);
  },
  guards: () => [],
  plan: () => ({ target: 'branches', steps: [] }),
  report: async (ctx, o, rows) => ctx.io.out(o.json ? `${JSON.stringify(rows, null, 2)}\n` : renderBranchTable(rows)),
};
