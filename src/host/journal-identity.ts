// A journal acts only on the cluster it describes (rule 1): the data directory and system identifier
// it recorded are checked against the host before any recovery. Read-only.
import type { Context } from '../context.js';
import { parseControlData } from '../pg/controldata.js';
import * as pg from '../pg/commands.js';
import { journalPath, type Journal } from '../state/journal.js';
import { readClusters } from './facts.js';

/** What a journal's data may record about its cluster. */
interface Identity {
  version?: unknown;
  dataDir?: unknown;
  /** The cluster's own system identifier (learnt at gather, or when the run created it). */
  systemId?: unknown;
  /** A copy's source (a branch restored from its parent carries the parent's identifier). */
  sourceSystemId?: unknown;
}

/** Why the journal does not describe the cluster now on the host; undefined when it does (or cannot tell). */
export async function journalMismatch(ctx: Pick<Context, 'runner' | 'fs' | 'paths'>, j: Journal): Promise<string | undefined> {
  const d = j.data as Identity;
  if (typeof d.dataDir !== 'string') return undefined;
  const file = journalPath(ctx.paths.stateDir, j.name);
  const [version] = j.target.split('/');
  const cluster = (await readClusters(ctx.runner)).find((c) => c.name === j.name && c.version === version);
  if (cluster?.dataDir && cluster.dataDir !== d.dataDir)
    return `${file} describes the data directory ${d.dataDir}, but ${j.target} now has ${cluster.dataDir}: it is not this cluster's journal`;
  const known = [d.systemId, d.sourceSystemId].filter((x): x is string => typeof x === 'string');
  if (!known.length || typeof d.version !== 'string' || !(await ctx.fs.exists(`${d.dataDir}/global/pg_control`))) return undefined;
  const r = await ctx.runner.run(pg.pgControlData(d.version, d.dataDir), { check: false });
  const now = r.exitCode === 0 ? parseControlData(r.stdout).systemId : undefined;
  if (now && !known.includes(now))
    return `${file} describes the cluster with system identifier ${known.join(' or ')}, but ${d.dataDir} holds ${now}: it is not this cluster's journal`;
  return undefined;
}
