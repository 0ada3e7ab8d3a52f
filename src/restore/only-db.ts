// One-database copies (branch create --only-db): pgBackRest's --db-include restores one user
// database and the system ones; the others arrive as zeroed files nobody can connect to, and are
// dropped once the copy is promoted.
import * as pg from '../pg/commands.js';
import { fail, pass, type Guard, type Step } from '../plan/types.js';
import type { Runner } from '../runner/types.js';
import * as pgbr from '../pgbackrest/commands.js';
import type { PgbrScope } from '../pgbackrest/commands.js';
import { parseSetDatabases } from '../pgbackrest/info.js';
import type { LiveCluster } from './steps.js';

/** A database name pgmam accepts on its command line (PostgreSQL allows more; this keeps argv and messages plain). */
export const DB_NAME = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;

/** Never dropped: what every cluster has. */
const SYSTEM_DATABASES = ['postgres', 'template0', 'template1'];

const USER_DATABASES_SQL = `select datname from pg_database where datname not in (${SYSTEM_DATABASES.map(pg.literal).join(', ')}) order by 1`;

/** The user databases of a running cluster. */
export async function databasesOf(runner: Runner, t: pg.PsqlTarget): Promise<string[]> {
  const r = await runner.run(pg.psqlValue(t, USER_DATABASES_SQL), { check: false });
  return r.exitCode === 0 ? r.stdout.split('\n').map((l) => l.trim()).filter(Boolean) : [];
}

/** The databases of the backup set a restore lays down (pgbackrest info --set), undefined when unreadable. */
export async function databasesOfSet(runner: Runner, scope: PgbrScope, label: string, repo: number): Promise<string[] | undefined> {
  const r = await runner.run(pgbr.infoOfSet(scope, label, repo), { check: false });
  return r.exitCode === 0 ? parseSetDatabases(r.stdout)?.filter((d) => !SYSTEM_DATABASES.includes(d)) : undefined;
}

/** The named database is in the backup set the restore lays down (one made after it is only in the WAL: pgBackRest cannot include it). */
export function onlyDbExists(db: string, set: { label: string; databases: string[] | undefined } | undefined, parentLabel: string): Guard {
  return {
    id: 'only-db-exists',
    check: () =>
      SYSTEM_DATABASES.includes(db)
        ? fail(`--only-db ${db}: a system database is always restored; name a user database of ${parentLabel}`)
        : set?.databases && !set.databases.includes(db)
          ? fail(
              `--only-db ${db}: the backup ${set.label} of ${parentLabel} has no database ${db}`,
              `its databases: ${set.databases.join(', ') || 'none but the system ones'}; a database made after the backup needs a newer one first: pgmam backup ${parentLabel.split('/').pop()}`,
            )
          : pass,
  };
}

/** After promotion: every user database but `keep` is dropped (its files are zeroes). */
export function dropOtherDatabasesStep(c: LiveCluster, keep: string): Step {
  const target = { version: c.id.version, port: c.port };
  return {
    id: 'drop-other-databases',
    title: `drop the databases of ${pg.clusterLabel(c.id)} other than ${keep} (restored as zeroed files, unusable)`,
    effect: 'write',
    run: async (ctx) => {
      const others = (await databasesOf(ctx.runner, target)).filter((d) => d !== keep);
      if (others.length) await ctx.runner.run(pg.psqlStatements(target, others.map((d) => `drop database ${pg.ident(d)}`), 'write'));
    },
    show: [`  ${USER_DATABASES_SQL}`, `  then drop database each one but ${keep}`],
  };
}
