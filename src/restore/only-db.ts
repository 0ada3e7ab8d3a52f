// One-database copies (branch create --only-db): pgBackRest's --db-include restores one user
// database and the system ones; the others arrive as zeroed files nobody can connect to, and are
// dropped once the copy is promoted.
import * as pg from '../pg/commands.js';
import { fail, pass, type Guard, type Step } from '../plan/types.js';
import type { Runner } from '../runner/types.js';
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

/** The named database exists in the parent now (when the parent is down, pgBackRest's own check at restore time is what remains). */
export function onlyDbExists(db: string, databases: string[] | undefined, parentLabel: string): Guard {
  return {
    id: 'only-db-exists',
    check: () =>
      SYSTEM_DATABASES.includes(db)
        ? fail(`--only-db ${db}: a system database is always restored; name a user database of ${parentLabel}`)
        : databases && !databases.includes(db)
          ? fail(`--only-db ${db}: ${parentLabel} has no such database`, databases.length ? `its databases: ${databases.join(', ')}` : `${parentLabel} has no user database`)
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
