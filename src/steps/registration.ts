// An app's registration with a repository host (a repository of kind tls): what that host's
// `repo backup-clients` reads to back the app up. Detach and drop leave a tombstone in its place, so
// the repository host stops backing up an app that left (pgBackRest 2.45 cannot remove a file through
// a repository host: `repo-rm` asserts on 'compress-level-network').
import type { Context } from '../context.js';
import * as pgbr from '../pgbackrest/commands.js';
import type { Step } from '../plan/types.js';
import { registrationPath, type Detached } from '../state/serve.js';

/** The tombstone, through the stanza file's repoN (a host that does not answer keeps the registration: its backups then fail there, visibly). */
export async function markDetached(c: Pick<Context, 'runner' | 'clock'>, scope: pgbr.PgbrScope, stanza: string, index: number): Promise<boolean> {
  const tombstone: Detached = { format: 1, stanza, detachedAt: c.clock.now().toISOString() };
  return (await c.runner.run(pgbr.repoPut(scope, index, registrationPath(stanza), `${JSON.stringify(tombstone)}\n`), { check: false })).exitCode === 0;
}

/** drop: each repository host the app is registered with (its stanza's indexes there) stops backing it up. */
export function unregisterEverywhereStep(stanza: string, indexes: readonly number[], scope: pgbr.PgbrScope): Step {
  return {
    id: 'unregister-from-repo-hosts',
    title: `mark ${registrationPath(stanza)} detached in the repository hosts' repositories (repo${indexes.join(', repo')})`,
    effect: 'write',
    run: async (c: Context) => {
      for (const index of indexes) await markDetached(c, scope, stanza, index);
    },
  };
}
