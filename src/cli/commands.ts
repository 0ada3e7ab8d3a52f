// Every command on the command line, in the order `pgmam --help` lists them. Only cli/ imports commands/.
import { adoptCommand } from '../commands/adopt/adopt.js';
import { backupBatch } from '../commands/backup/backup.js';
import { branchCreateCommand } from '../commands/branch/create.js';
import { branchListCommand } from '../commands/branch/list.js';
import { branchSyncCommand } from '../commands/branch/sync.js';
import { checkCommand } from '../commands/check/check.js';
import { branchDropCommand, dropCommand, replicaDropCommand } from '../commands/drop/drop.js';
import { exportBatch } from '../commands/export/export.js';
import { initClusterCommand } from '../commands/initcluster/initcluster.js';
import { installLinksCommand } from '../commands/install-links/install-links.js';
import { listCommand } from '../commands/list/list.js';
import { pitrCommand } from '../commands/pitr/pitr.js';
import { pruneCommand } from '../commands/prune/prune.js';
import { repoAddCli } from '../commands/repo/add-cli.js';
import { repoListCommand } from '../commands/repo/list.js';
import { repoAttachBatch, repoDetachBatch } from '../commands/repo/attach.js';
import { repoRemoveCommand } from '../commands/repo/remove.js';
import { repoServeCommand } from '../commands/repo/serve.js';
import { backupClientsBatch } from '../commands/repo/backup-clients.js';
import { tlsShowCommand } from '../commands/tls/show.js';
import { tlsEnableCommand, tlsRenewBatch } from '../commands/tls/renew.js';
import { replicaCreateCommand } from '../commands/replica/create.js';
import { replicaPromoteCommand } from '../commands/replica/promote.js';
import { replicaRebuildCommand } from '../commands/replica/rebuild.js';
import { recoverCommand } from '../commands/recover/recover.js';
import { resetwalCommand } from '../commands/resetwal/resetwal.js';
import { scheduleCommand } from '../commands/schedule/schedule.js';
import type { CliBatch } from '../plan/cli-spec.js';
import type { CommandModule } from '../plan/command.js';

/** A module run by runCommand, or a batch over targets; each parses its own options. */
export type CliCommand = { kind: 'module'; module: CommandModule<any, any, any> } | { kind: 'batch'; batch: CliBatch<any> };

const m = (module: CommandModule<any, any, any>): CliCommand => ({ kind: 'module', module });
const b = (batch: CliBatch<any>): CliCommand => ({ kind: 'batch', batch });

export const COMMANDS: CliCommand[] = [
  m(initClusterCommand),
  m(pitrCommand),
  b(backupBatch),
  b(exportBatch),
  m(resetwalCommand),
  m(dropCommand),
  m(scheduleCommand),
  m(branchCreateCommand),
  m(branchSyncCommand),
  m(branchListCommand),
  m(branchDropCommand),
  m(listCommand),
  m(installLinksCommand),
  m(checkCommand),
  m(adoptCommand),
  m(pruneCommand),
  b(repoAddCli),
  m(repoListCommand),
  b(repoAttachBatch),
  b(repoDetachBatch),
  m(repoRemoveCommand),
  m(repoServeCommand),
  b(backupClientsBatch),
  m(recoverCommand),
  m(tlsShowCommand),
  b(tlsRenewBatch),
  m(tlsEnableCommand),
  m(replicaCreateCommand),
  m(replicaPromoteCommand),
  m(replicaRebuildCommand),
  m(replicaDropCommand),
];
