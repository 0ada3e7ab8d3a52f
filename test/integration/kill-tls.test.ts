// Kill matrix, TLS (shared parts: kill.ts): `tls enable` on a cluster without pgmam's TLS, and `tls
// renew`, SIGKILLed before each of their steps. The app stays open: its user keeps writing over TCP
// between the kill and the re-run; the re-run (as list prints it) finishes, and afterwards verify-full
// against pgmam's CA connects, TCP without TLS is refused, and every row the user committed is there.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { addUser, appWithTarget, cleanUpAfterAll, expectInterruptedAt, killBefore, matrix, stepsOf, USER, userWrite } from './kill.js';
import { TEST_ROOT, pgmam, sh, sql } from './helpers.js';

cleanUpAfterAll();
const CA = `${TEST_ROOT}/tls/ca.crt`;

const connect = (port: number, mode: string) =>
  sh('psql', ['-X', '-At', '-c', 'select 1', `host=localhost port=${port} user=${USER.role} dbname=postgres sslmode=${mode} sslrootcert=${CA} connect_timeout=5`], { env: { PGPASSWORD: USER.password, PATH: process.env['PATH'] ?? '' } });

/** The cluster as pgmam found clusters made before it had TLS: no conf.d file of its, no TLS rules in pg_hba.conf. */
async function withoutTls(app: string, port: number): Promise<void> {
  rmSync(`/etc/postgresql/15/${app}/conf.d/91-pgmam-tls.conf`, { force: true });
  const hba = `/etc/postgresql/15/${app}/pg_hba.conf`;
  writeFileSync(hba, readFileSync(hba, 'utf8').replace(/# pgmam: TLS rules \(tls-required\) — begin\n[^#]*# pgmam: TLS rules — end\n/, ''));
  await sql(port, 'select pg_reload_conf()');
}

describe('kill matrix: TLS', () => {
  it('tls enable: killed before each step, the user keeps writing, a re-run finishes; no row lost', { timeout: 300_000 }, async () => {
    const { app, port } = await appWithTarget();
    await addUser(port);
    await withoutTls(app, port);
    const steps = await stepsOf(['tls', 'enable', app]);
    expect(steps).toEqual(['issue-certificate', 'reload-cluster', 'require-tls']);
    for (const step of steps) {
      await killBefore(['tls', 'enable', app], app, step);
      await expectInterruptedAt(app, 'tls enable', step);
      expect(await userWrite(port, `during-enable-${step}`)).toBe(true);
      const again = await pgmam(['tls', 'enable', app, '--yes']);
      expect(again.code, again.stderr).toBe(0);
      expect((await connect(port, 'verify-full')).code).toBe(0);
      const plain = await connect(port, 'disable');
      expect(plain.code, plain.stdout + plain.stderr).toBe(2);
      expect(await sql(port, `select count(*) from t where k = 'during-enable-${step}'`)).toBe('1');
      await withoutTls(app, port);
      matrix.push(`tls enable × ${step} → user write meanwhile committed; re-run finished: verify-full connects, no TLS refused; 0 rows lost`);
    }
  });

  it('tls renew: killed before each step, a re-run finishes with a new certificate; no row lost', { timeout: 300_000 }, async () => {
    const { app, port } = await appWithTarget();
    await addUser(port);
    const steps = await stepsOf(['tls', 'renew', app]);
    expect(steps).toEqual(['issue-certificate', 'reload-cluster']);
    for (const step of steps) {
      await killBefore(['tls', 'renew', app], app, step);
      await expectInterruptedAt(app, 'tls renew', step);
      expect(await userWrite(port, `during-renew-${step}`)).toBe(true);
      const again = await pgmam(['tls', 'renew', app, '--yes']);
      expect(again.code, again.stderr).toBe(0);
      expect((await connect(port, 'verify-full')).code).toBe(0);
      expect(await sql(port, `select count(*) from t where k = 'during-renew-${step}'`)).toBe('1');
      matrix.push(`tls renew × ${step} → user write meanwhile committed; re-run finished: verify-full connects; 0 rows lost`);
    }
  });
});
