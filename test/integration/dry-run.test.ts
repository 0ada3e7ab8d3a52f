// --dry-run of every command on the one command shape, against real clusters: it prints the plan and
// changes nothing. Inside pgmam the dry-run context throws on any write (runner and filesystem) and
// psql runs read-only, so a command that wrote under --dry-run would fail here (exit 1), not pass.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusters, isOtherFilesName, listEntry, pgmam, pgmamOk, removeTestCluster, REPO, sql, STANZA_DIR, STATE, targetBetween, uniqueName } from './helpers.js';

const app = uniqueName();
const branch = `${app}_dev`;
let port = 0;
let target = '';

beforeAll(async () => {
  await pgmamOk(['initcluster', app, '--yes', '-q']);
  port = (await listEntry(app)).port;
  target = await targetBetween(port, 'create table t as select 1 a', 'insert into t values (2)');
  await pgmamOk(['branch', 'create', app, '--name', 'dev', '--yes', '-q']);
}, 300_000);

afterAll(async () => {
  for (const n of [branch, app]) await removeTestCluster(n);
});

const ls = (dir: string) => (existsSync(dir) ? readdirSync(dir).sort() : []);
const mine = (n: string) => !isOtherFilesName(n, [app]);
async function hostState() {
  return {
    clusters: (await clusters()).filter((c) => mine(c.cluster)).map((c) => `${c.version}/${c.cluster}:${c.port}:${c.running}`).sort(),
    stanzaFiles: ls(STANZA_DIR).filter(mine),
    backups: [app, branch].map((s) => ls(`${REPO}/backup/${s}`)),
    dataDirs: ls('/var/lib/postgresql/15').filter(mine),
    confDirs: [app, branch].map((n) => ls(`/etc/postgresql/15/${n}/conf.d`)),
    state: [ls(`${STATE}/clusters`), ls(`${STATE}/journal`), ls(`${STATE}/locks`)],
    records: ls(`${STATE}/clusters`).map((f) => readFileSync(`${STATE}/clusters/${f}`, 'utf8')),
    rows: await sql(port, 'select count(*) from t'),
  };
}

describe('--dry-run changes nothing', () => {
  it.each([
    // Those that take a cluster from its users open with the downtime line, then the plan.
    ['pitr --to', () => ['pitr', app, '--to', target], /^downtime: \S+ stops for about \d+ s .*\nplan: pgmam pitr/],
    ['pitr --latest', () => ['pitr', app, '--latest'], /^downtime: \S+ stops for about \d+ s .*\nplan: pgmam pitr/],
    ['branch create', () => ['branch', 'create', app, '--name', 'qa'], /^plan: pgmam branch create/],
    ['branch sync', () => ['branch', 'sync', branch], /^downtime: \S+ stops .*\nplan: pgmam branch sync/],
    ['branch drop', () => ['branch', 'drop', branch, '--purge-backups'], /^plan: pgmam branch drop/],
    ['drop', () => ['drop', app, '--with-branches', '--purge-backups'], /^plan: pgmam drop/],
  ])('%s', async (_what, args, head) => {
    const before = await hostState();
    const r = await pgmam([...args(), '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(head);
    expect(await hostState()).toEqual(before);
  });

  it('branch list only reads: the same rows with or without --dry-run', async () => {
    const a = await pgmam(['branch', 'list', '--json']);
    const b = await pgmam(['branch', 'list', '--json', '--dry-run']);
    expect(a.code, a.stderr).toBe(0);
    expect(JSON.parse(b.stdout)).toEqual(JSON.parse(a.stdout));
    expect((JSON.parse(a.stdout) as Array<{ name: string }>).map((x) => x.name)).toContain(branch);
  });
});
