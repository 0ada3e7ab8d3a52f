// Kill matrix, recover (shared parts: kill.ts), against a real S3 server (Ceph RGW): `recover --as`
// of an app from a shared repository, SIGKILLed before its steps. The origin keeps running and its
// user keeps writing between the kill and the re-run; before hand-over the re-run removes the half-made
// copy and recovers afresh (the rows written meanwhile are in the copy), from hand-over on it finishes.
// The origin is never touched: every row its user committed stays there.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addUser, appWithTarget, cleanUpAfterAll, expectHealthy, expectInterruptedAt, killBefore, made, matrix, stepsOf, userWrite } from './kill.js';
import { listEntry, pgmam, pgmamOk, sql, switchWalAndWait, TEST_ROOT, uniqueName } from './helpers.js';
import { startRgw, stopRgw, type Rgw } from './rgw.js';

let rgw: Rgw;
beforeAll(async () => {
  rgw = await startRgw();
  const add = await pgmam(['repo', 'add', 'shared', '--s3-endpoint', rgw.endpoint, '--s3-bucket', rgw.bucket, '--s3-key-file', rgw.keyFile, '--ca-file', rgw.ca, '--path', `/${TEST_ROOT.split('/').at(-1)}/kill-recover`, '--yes']);
  if (add.code !== 0) throw new Error(`repo add: ${add.stderr}`);
}, 120_000);
afterAll(async () => {
  await stopRgw(rgw);
}, 60_000);
// Registered after the gateway's: after-hooks run last-registered first, so the clusters (attached to
// the S3 repository) are removed while it still answers.
cleanUpAfterAll();

/** Steps across every phase: the restore, the first start, archiving on, the backups, the source check, hand-over. */
const KILLED = ['restore-backup', 'start-cluster', 'enable-archiving', 'backup-full-repo2', 'verify-source-archive', 'hand-over'];

describe('kill matrix: recover', () => {
  it('recover --as: killed before its steps, the origin keeps writing, a re-run converges; no row lost', { timeout: 900_000 }, async () => {
    const { app, port } = await appWithTarget();
    await addUser(port);
    const copy = uniqueName();
    made.push(copy);
    const args = ['recover', app, '--from-repo', 'shared', '--as', copy];
    const steps = await stepsOf(args);
    for (const s of KILLED) expect(steps).toContain(s);
    let n = 0;
    for (const step of KILLED) {
      await killBefore(args, copy, step);
      await expectInterruptedAt(copy, 'recover', step);
      // The origin is never touched: its user keeps writing, and the row reaches the archive.
      const key = `during-${step}`;
      expect(await userWrite(port, key)).toBe(true);
      n++;
      await switchWalAndWait(port);
      const again = await pgmam([...args, '--yes', '-q']);
      expect(again.code, again.stderr).toBe(0);
      const e = await expectHealthy(copy);
      const inCopy = await sql(e.port, `select count(*) from t where k = '${key}'`);
      // Before hand-over the re-run recovers afresh (the row is there); at hand-over it only finishes.
      expect(inCopy).toBe(step === 'hand-over' ? '0' : '1');
      expect(await sql(port, "select count(*) from t where k like 'during-%'")).toBe(String(n));
      expect((await listEntry(app)).interrupted).toBeNull();
      matrix.push(`recover --as × ${step} → origin's user write committed; re-run ${step === 'hand-over' ? 'finished the hand-over' : 'removed the half-made copy and recovered again (the write is in the copy)'}; 0 rows lost`);
      await pgmamOk(['drop', copy, '--purge-backups', '--yes', '-q']);
    }
  });
});
