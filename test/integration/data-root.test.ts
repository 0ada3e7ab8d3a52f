// data-root: a host that keeps PostgreSQL's data elsewhere. Every command finds the data directory
// where pg_createcluster put it (pg_lsclusters), never at a path derived from the name.
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { TEST_ROOT, freePort, pgbackrestInfo, pgmam, removeTestCluster, sh, sql, targetBetween, testConfigLines, uniqueName, type ListEntry } from './helpers.js';

const DATA = `${TEST_ROOT}/data`;
const CONFIG = `${TEST_ROOT}/data-root.conf`;
writeFileSync(CONFIG, [...testConfigLines(), `data-root = ${DATA}/%v/%c`].join('\n') + '\n');
const run = (args: string[]) => pgmam(args, { env: { PGMAM_CONFIG: CONFIG } });
const app = uniqueName();
const branch = `${app}_dev`;

afterAll(async () => {
  await removeTestCluster(branch);
  await removeTestCluster(app);
  rmSync(DATA, { recursive: true, force: true });
});

const entries = async (...more: string[]) => JSON.parse((await run(['list', '--json', ...more])).stdout) as Array<ListEntry & { dataDir: string }>;

describe('data-root', () => {
  it('initcluster, pitr, branch create, list and drop keep to the data directory data-root names', async () => {
    const port = await freePort();
    const init = await run(['initcluster', app, '--port', String(port), '--yes']);
    expect(init.code, init.stderr).toBe(0);
    expect((await entries()).find((e) => e.name === app)?.dataDir).toBe(`${DATA}/15/${app}`);
    expect(existsSync(`/var/lib/postgresql/15/${app}`)).toBe(false);

    await sql(port, 'create table s (v text)');
    await new Promise((r) => setTimeout(r, 1100)); // the recovery window starts a second after the first backup
    const t = await targetBetween(port, "insert into s values ('A')", "insert into s values ('B')");
    const pitr = await run(['pitr', app, '--to', t, '--yes']);
    expect(pitr.code, pitr.stderr).toBe(0);
    expect(await sql(port, "select string_agg(v, ',' order by v) from s")).toBe('A');
    // The old data directory is preserved beside the live one, under data-root.
    const preserved = (await entries()).find((e) => e.name === app)!.preserved.map((p) => p.path);
    expect(preserved).toHaveLength(1);
    expect(preserved[0]!.startsWith(`${DATA}/15/${app}.pre-pitr-`)).toBe(true);
    expect(existsSync(`${preserved[0]}/PG_VERSION`)).toBe(true);

    const bport = await freePort();
    const b = await run(['branch', 'create', app, '--name', 'dev', '--port', String(bport), '--yes']);
    expect(b.code, b.stderr).toBe(0);
    expect((await entries()).find((e) => e.name === branch)?.dataDir).toBe(`${DATA}/15/${branch}`);
    expect(await sql(bport, "select string_agg(v, ',' order by v) from s")).toBe('A');
    expect((await pgbackrestInfo(branch))[0]!.backup.map((x) => x.type)).toEqual(['full']);

    const drop = await run(['drop', app, '--with-branches', '--purge-backups', '--yes']);
    expect(drop.code, drop.stderr).toBe(0);
    // Dropped with pg_dropcluster: both data directories gone; the preserved one is kept (rule 1) and
    // listed by list --all, under the dropped app, until prune removes it.
    expect((await entries('--all')).some((e) => e.name === branch)).toBe(false);
    expect((await entries('--all')).find((e) => e.name === app)).toMatchObject({ status: 'dropped', role: 'dropped', preserved: [{ path: preserved[0] }] });
    expect(readdirSync(`${DATA}/15`)).toEqual([preserved[0]!.split('/').pop()]);
    expect((await sh('pgbackrest', [`--stanza=${app}`, '--output=json', 'info'], { user: 'postgres' })).stdout).not.toContain('"label"');
    const prune = await run(['prune', app, '--older-than', '0', '--yes']);
    expect(prune.code, prune.stderr).toBe(0);
    expect(readdirSync(`${DATA}/15`)).toEqual([]);
    expect((await entries('--all')).some((e) => e.name === app)).toBe(false);
  });
});
