// Steps on a cluster's own stanza that several commands end with: check archiving, take a full backup.
import * as pgbr from '../pgbackrest/commands.js';
import type { Step } from '../plan/types.js';

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
