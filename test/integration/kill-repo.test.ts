// Kill matrix, repositories (shared parts: kill.ts), against a real S3 server (Ceph RGW): `repo add`
// and `repo attach` SIGKILLed before each step. An attach never closes the app: the user keeps
// writing; a re-run converges (the repository in the stanza file, a full in it, WAL reaching it) and
// no row is lost.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addUser, appWithTarget, cleanUpAfterAll, expectHealthy, expectInterruptedAt, killBefore, matrix, stepsOf, userWrite } from './kill.js';
import { pgmam, pgmamOk, sh, sql, STATE } from './helpers.js';
import { startRgw, stopRgw, type Rgw } from './rgw.js';

cleanUpAfterAll();
let rgw: Rgw;
beforeAll(async () => {
  rgw = await startRgw();
}, 120_000);
afterAll(async () => {
  await stopRgw(rgw);
}, 60_000);

const addArgs = (name: string, path: string) => ['repo', 'add', name, '--s3-endpoint', rgw.endpoint, '--s3-bucket', rgw.bucket, '--s3-key-file', rgw.keyFile, '--ca-file', rgw.ca, '--path', path, '--attach-new', 'no'];
const repoFiles = () => (existsSync(`${STATE}/repos`) ? readdirSync(`${STATE}/repos`).sort() : []);
const fullsIn = async (stanza: string, repo: number) =>
  (JSON.parse((await sh('pgbackrest', [`--stanza=${stanza}`, `--repo=${repo}`, '--output=json', 'info'], { user: 'postgres' })).stdout)[0]?.backup ?? []).filter((b: { type: string }) => b.type === 'full').length as number;

describe('kill matrix: repositories', () => {
  it('repo add: killed before each step, a re-run converges to one whole repository', { timeout: 300_000 }, async () => {
    const steps = await stepsOf(addArgs('killed', '/kill-add'));
    expect(steps).toEqual(['write-secrets', 'copy-ca', 'write-repo-record']);
    for (const step of steps) {
      await killBefore(addArgs('killed', `/kill-add`), '_repo_killed', step);
      // Not listed as a repository until its record is written.
      const listed = JSON.parse((await pgmam(['repo', 'list', '--json'])).stdout) as Array<{ name: string }>;
      expect(listed.map((r) => r.name)).not.toContain('killed');
      const again = await pgmam([...addArgs('killed', '/kill-add'), '--yes']);
      expect(again.code, again.stderr).toBe(0);
      expect(repoFiles()).toEqual(['killed.ca.crt', 'killed.json', 'killed.secrets']);
      await pgmamOk(['repo', 'remove', 'killed', '--yes']);
      expect(repoFiles()).toEqual([]);
      matrix.push(`repo add × ${step} → not listed; re-run rolled back what it had written and added it whole`);
    }
  });

  it('repo attach: killed before each step, the user keeps writing, a re-run converges; no row lost', { timeout: 600_000 }, async () => {
    await pgmamOk([...addArgs('offsite', '/kill-attach'), '--yes']);
    const { app, port } = await appWithTarget();
    await addUser(port);
    const steps = await stepsOf(['repo', 'attach', 'offsite', app]);
    expect(steps).toEqual(['attach-in-stanza-file', 'create-stanza', 'check-archiving', 'backup-full-repo2']);
    const stanzaFile = `/etc/pgbackrest/conf.d/${app}.conf`;
    for (const step of steps) {
      await killBefore(['repo', 'attach', 'offsite', app], app, step);
      await expectInterruptedAt(app, 'repo attach', step);
      // An attach never closes the app.
      expect(await userWrite(port, `during-${step}`)).toBe(true);
      const again = await pgmam(['repo', 'attach', 'offsite', app, '--yes']);
      expect(again.code, again.stderr).toBe(0);
      expect(readFileSync(stanzaFile, 'utf8')).toMatch(/^repo2-type=s3$/m);
      expect(await fullsIn(app, 2)).toBeGreaterThanOrEqual(1);
      await expectHealthy(app);
      expect(await sql(port, `select count(*) from t where k = 'during-${step}'`)).toBe('1');
      // Back to the start for the next step: detached (its backups stay in the bucket).
      await pgmamOk(['repo', 'detach', 'offsite', app, '--yes']);
      expect(readFileSync(stanzaFile, 'utf8')).not.toMatch(/^repo2-/m);
      matrix.push(`repo attach × ${step} → user write meanwhile committed; re-run took it out of the stanza file, attached again (full in it, check passes); 0 rows lost`);
    }
  });
});
