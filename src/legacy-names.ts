// The legacy tools pgmam stands in for, as symlinks to the same binary. A module of its own, free of
// zod: the start of every run reads it (cli/legacy.ts), before any command is loaded.
export const LEGACY_NAMES = ['initcluster', 'pitr', 'pgbranch', 'pgbackup'] as const;
export type LegacyName = (typeof LEGACY_NAMES)[number];
