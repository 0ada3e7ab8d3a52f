// A replica shares its app's stanza and follows its primary: commands that would restore, reset, back up
// or re-attach it refuse it and name what to do instead.
import { fail, pass, type Guard } from '../plan/types.js';
import type { ManagedCluster } from '../state/store.js';

export const replicaIsRefused = (rec: Pick<ManagedCluster, 'cluster' | 'role' | 'parent' | 'stanza'> | undefined, what: string): Guard => ({
  id: 'cluster-is-not-a-replica',
  check: () =>
    rec?.role === 'replica'
      ? fail(`${rec.cluster} is a replica of ${rec.parent ?? '?'}: it is not ${what}`, `act on the app: pgmam … ${rec.stanza}; or pgmam replica promote|rebuild|drop ${rec.cluster.split('/')[1]}`)
      : pass,
});
