// Kill matrix, `repo serve` (shared parts: kill.ts): SIGKILLed before each step, a re-run of the same
// command rolls back what the killed run made (its server stopped by its PID file, pgmam's files of it
// removed) and serves afresh — one server, answering, never two. `repo serve --stop` the same way.
// serve touches no cluster: no rows are at stake, only the server and pgmam's own files.
import { existsSync, mkdirSync, readdirSync, readFileSync, chmodSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanUpAfterAll, killBefore, matrix, stepsOf } from './kill.js';
import { freePort, pgmam, pgmamOk, sh, STATE, TEST_ROOT } from './helpers.js';

cleanUpAfterAll();
const KEYS = `${TEST_ROOT}/serve-keys`;
let port = 0;
const serveArgs = () => ['repo', 'serve', '--address', '127.0.0.1', '--port', String(port), '--ca-file', `${KEYS}/ca.crt`, '--cert-file', `${KEYS}/a.crt`, '--key-file', `${KEYS}/a.key`, '--allow', 'some-app-host'];
const CONF = `${STATE}/serve/pgbackrest-server.conf`;

/** pgBackRest servers started with this file's configuration (by their command line). */
const withConfig = () =>
  readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').includes(`--config=${CONF}`);
      } catch {
        return false;
      }
    });
const parentOf = (pid: string) => {
  try {
    return /^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '';
  } catch {
    return '';
  }
};
/** The servers themselves: the server forks a child per connection (the test's own ping leaves one
 *  that may still be exiting), which is part of its server, not a second one. */
const servers = () => {
  const all = withConfig();
  return all.filter((p) => !all.includes(parentOf(p)));
};
const ping = async () => (await sh('pgbackrest', ['--config=/dev/null', `--tls-server-port=${port}`, 'server-ping', '127.0.0.1'], { user: 'postgres' })).code;

beforeAll(async () => {
  mkdirSync(KEYS, { recursive: true, mode: 0o700 });
  const ossl = async (args: string[]) => expect((await sh('openssl', args)).code).toBe(0);
  await ossl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${KEYS}/ca.key`, '-out', `${KEYS}/ca.crt`, '-days', '2', '-subj', '/CN=pgmam kill-serve ca']);
  await ossl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${KEYS}/a.key`, '-out', `${KEYS}/a.csr`, '-subj', '/CN=kill-serve']);
  writeFileSync(`${KEYS}/a.ext`, 'subjectAltName=IP:127.0.0.1,DNS:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
  await ossl(['x509', '-req', '-in', `${KEYS}/a.csr`, '-CA', `${KEYS}/ca.crt`, '-CAkey', `${KEYS}/ca.key`, '-CAcreateserial', '-out', `${KEYS}/a.crt`, '-days', '2', '-extfile', `${KEYS}/a.ext`]);
  chmodSync(`${KEYS}/a.key`, 0o600);
  port = await freePort();
}, 60_000);

afterAll(async () => {
  await pgmam(['repo', 'serve', '--stop', '--yes']);
}, 60_000);

describe('kill matrix: repo serve', () => {
  it('serve: killed before each step, a re-run rolls back and serves: one server, answering', { timeout: 300_000 }, async () => {
    const steps = await stepsOf(serveArgs());
    expect(steps.slice(0, 2)).toEqual(['copy-server-certificates', 'write-server-config']);
    expect(steps.slice(-2)).toEqual(['ping-server', 'write-serve-record']);
    for (const step of steps) {
      await killBefore(serveArgs(), '_serve', step);
      const again = await pgmam([...serveArgs(), '--yes']);
      expect(again.code, again.stderr).toBe(0);
      expect(await ping()).toBe(0);
      // Under systemd the unit runs it (no PID file of pgmam's); else exactly one process from start-stop-daemon.
      if (existsSync(`${STATE}/serve/server.pid`)) expect(servers()).toEqual([readFileSync(`${STATE}/serve/server.pid`, 'utf8').trim()]);
      expect(existsSync(`${STATE}/serve/serve.json`)).toBe(true);
      matrix.push(`repo serve × ${step} → re-run stopped what the killed run had started, removed its files, served afresh: one server, answering`);
    }
  });

  it('serve --stop: killed before each step, a re-run finishes: no server, nothing of it left', { timeout: 300_000 }, async () => {
    const steps = await stepsOf(['repo', 'serve', '--stop']);
    for (const step of steps) {
      if (!existsSync(`${STATE}/serve/serve.json`)) await pgmamOk([...serveArgs(), '--yes']);
      await killBefore(['repo', 'serve', '--stop'], '_serve', step);
      const again = await pgmam(['repo', 'serve', '--stop', '--yes']);
      // The interrupted stop is finished by the re-run's settling; nothing is left to stop after it.
      expect(again.code, again.stderr).toBe(0);
      // A connection's child may outlive its stopped server by a moment.
      await expect.poll(withConfig, { timeout: 5_000, interval: 100 }).toEqual([]);
      expect(existsSync(`${STATE}/serve`)).toBe(false);
      expect(existsSync('/etc/cron.d/pgmam-serve')).toBe(false);
      matrix.push(`repo serve --stop × ${step} → re-run finished the stop: no server, no files of it`);
    }
  });
});
