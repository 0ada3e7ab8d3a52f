// Where a new cluster's data directory goes: resolved once at gather time, never derived from the name later.
import { describe, expect, it } from 'vitest';
import { gatherNewCluster, newClusterSteps, type NewClusterQuery } from '../../../src/steps/new-cluster.js';
import { parseMainConfig } from '../../../src/pgbackrest/config.js';
import { fakeContext } from '../fakes.js';
import { aNewCluster, planEnv } from '../fixtures.js';

const query = (over: Partial<NewClusterQuery> = {}): NewClusterQuery => ({
  name: 'app1', version: '15', port: 5433, installedPg: ['15'], clusters: [], managed: [], main: parseMainConfig([]), canProbeRepo: false, ...over,
});

describe('a new cluster’s data directory', () => {
  it("follows createcluster.conf's data_directory when data-root is not set", async () => {
    const { ctx, fs, runner } = fakeContext();
    runner.register('hostname --fqdn', { stdout: 'hosta.example.net' });
    fs.files.set('/etc/postgresql-common/createcluster.conf', "data_directory = '/srv/pgdata/%v/%c'\n");
    const f = await gatherNewCluster(ctx, ctx.runner, query());
    expect(f.dataDir).toBe('/srv/pgdata/15/app1');
    expect(f.disk.map((d) => d.path)).toContain('/srv/pgdata/15');
  });
  it('follows data-root over createcluster.conf, and postgresql-common’s default when neither says', async () => {
    const { ctx, fs, runner } = fakeContext();
    runner.register('hostname --fqdn', { stdout: 'hosta.example.net' });
    fs.files.set('/etc/postgresql-common/createcluster.conf', "data_directory = '/srv/pgdata/%v/%c'\n");
    ctx.config = { ...ctx.config, 'data-root': '/data/%c-%v' };
    expect((await gatherNewCluster(ctx, ctx.runner, query())).dataDir).toBe('/data/app1-15');
    const bare = fakeContext();
    bare.runner.register('hostname --fqdn', { stdout: 'hosta' });
    expect((await gatherNewCluster(bare.ctx, bare.ctx.runner, query())).dataDir).toBe('/var/lib/postgresql/15/app1');
  });
  it('a data directory already there takes the name', async () => {
    const { ctx, fs, runner } = fakeContext();
    runner.register('hostname --fqdn', { stdout: 'hosta.example.net' });
    fs.dirs.add('/var/lib/postgresql/15/app1');
    expect((await gatherNewCluster(ctx, ctx.runner, query())).nameTakenBy).toContain('/var/lib/postgresql/15/app1 exists');
  });
  it('pg_createcluster is told the data directory (-d)', () => {
    const env = planEnv();
    const n = newClusterSteps({ id: { version: '15', name: 'app1' }, port: 5433, dataDir: '/srv/x/app1', repo: aNewCluster().repo, owner: { uid: 101, gid: 104 }, config: env.config, paths: env.paths, systemd: false, hostName: 'hosta', role: 'app' });
    expect(n.createCluster.show![0]).toBe('$ pg_createcluster 15 app1 --port 5433 -d /srv/x/app1 -- --data-checksums');
    expect(n.journal.dataDir).toBe('/srv/x/app1');
  });
});
