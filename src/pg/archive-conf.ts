// The archiving settings pgmam writes into /etc/postgresql/<v>/<name>/conf.d/ — never ALTER SYSTEM,
// because postgresql.auto.conf travels inside backups into every restored copy (raw-workflow.md).
export const ARCHIVE_CONF_NAME = '90-pgmam-archive.conf';

export interface ArchiveSettings {
  stanza: string;
  archiveTimeout: number;
  /** Only when the stanza files live outside pgBackRest's default include path. */
  configIncludePath?: string;
  keepWalLevel?: boolean;
}

/**
 * The only archive_command a managed cluster ever has. No --pg1-path: pgBackRest's cwd check [032]
 * must keep refusing any data directory but the stanza's own.
 */
export const archiveCommandFor = (stanza: string, configIncludePath?: string) =>
  `pgbackrest${configIncludePath ? ` --config-include-path=${configIncludePath}` : ''} --stanza=${stanza} archive-push %p`;

export function renderArchiveConf(s: ArchiveSettings): string {
  return [
    '# Written by pgmam: WAL archiving to this cluster\'s own pgBackRest stanza. Do not edit by hand.',
    // An adopted cluster keeps its own wal_level (replica or logical; minimal is refused).
    ...(s.keepWalLevel ? [] : ['wal_level = replica']),
    'archive_mode = on',
    `archive_command = '${archiveCommandFor(s.stanza, s.configIncludePath)}'`,
    `archive_timeout = ${s.archiveTimeout}`,
    '',
  ].join('\n');
}
