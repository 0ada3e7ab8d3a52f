// Steps on a cluster's own stanza that several commands end with: check archiving, take a full backup.
import * as pgbr from '../pgbackrest/commands.js';
import type { Step } from '../plan/types.js';
import { markBackup } from './backup.js';

/** After a full backup pgmam took: remember it, so an idle cluster's next scheduled incr is skipped. */
export const markBackupStep = (scope: pgbr.PgbrScope, name: string, at: { version: string; port: number }): Step => ({
  id: 'mark-backup',
  title: `remember ${name}'s newest backup and transaction position for backup's change detection`,
  effect: 'write',
  run: async (ctx) => void (await markBackup(ctx, name, scope, at)),
  show: [`  pgbackrest info + select pg_snapshot_xmax(pg_current_snapshot()), into the pgmam record of ${name}`],
});

export const checkArchivingStep = (scope: pgbr.PgbrScope, name: string): Step => ({
  id: 'check-archiving',
  title: `check that WAL archiving to stanza ${name} works`,
  effect: 'write',
  run: pgbr.check(scope),
});

export const backupFullStep = (scope: pgbr.PgbrScope, name: string, why: string): Step => ({
  id: 'backup-full',
  title: `take ${why} of ${name}`,
  effect: 'write',
  run: pgbr.backup(scope, 'full'),
});
