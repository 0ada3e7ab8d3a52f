// pgmam drop: with and without --purge-backups, and an app that still has branches.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ownClusters, initTestCluster, pgbackrestInfo, pgmam, removeTestCluster, traces, uniqueName } from './helpers.js';

const app = uniqueName();
const other = uniqueName();
const names = () => ownClusters().then((cs) => cs.map((c) => c.cluster));

beforeAll(async () => {
  await initTestCluster(app);
  await initTestCluster(other);
  const b = await pgmam(['branch', 'create', app, '--name', 'dev']);
  if (b.code !== 0) throw new Error(b.stderr);
});

afterAll(async () => {
  for (const n of [`${app}_dev`, app, other]) await removeTestCluster(n);
});

describe('pgmam drop', () => {
  it('refuses an app that still has branches, and without --yes off a terminal; nothing changes', async () => {
    const before = await names();
    const r = await pgmam(['drop', app, '--yes']);
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toContain(`still has branches: ${app}_dev`);
    expect((await pgmam(['drop', other])).code).toBe(2);
    expect(await names()).toEqual(before);
  });

  it('--with-branches drops the branch and the app; their backups are kept', async () => {
    const r = await pgmam(['drop', app, '--with-branches', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    const left = await names();
    expect(left).not.toContain(app);
    expect(left).not.toContain(`${app}_dev`);
    expect((await pgbackrestInfo(app))[0]!.backup.length).toBeGreaterThan(0);
    expect((await pgbackrestInfo(`${app}_dev`))[0]!.backup.length).toBeGreaterThan(0);
    const list = JSON.parse((await pgmam(['list', '--json'])).stdout) as Array<{ name: string }>;
    expect(list.map((e) => e.name)).not.toContain(app);
  });

  it('--purge-backups leaves nothing of the cluster behind', async () => {
    const r = await pgmam(['drop', other, '--purge-backups', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(await traces(other)).toEqual([]);
  });
});
