// Kill matrix, takeover (a second host in namespaces, a real Ceph RGW): host B's `recover` of a lost
// host's app is SIGKILLed once its own WAL already goes into the shared stanza. The re-run rolls the
// half-made cluster back without deleting anything of the shared stanza (the origin's backups and
// WAL stay), takes over again, and has every row the origin committed.
import { execa } from 'execa';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PGMAM, PORT_MAX, PORT_MIN, TEST_ROOT, freePort, pgmam, removeTestCluster, sh, sql, switchWalAndWait, testConfigLines, uniqueName, type Run } from './helpers.js';
import { stopRgw, type Rgw } from './rgw.js';
import { onB, pgmamOnB, sqlOnB, startFleet, stopHostB, type HostB } from './hostb.js';
import { matrix } from './kill.js';

const CONFIG = `${TEST_ROOT}/takeover.conf`;
const run = (args: string[]): Promise<Run> => pgmam(args, { env: { PGMAM_CONFIG: CONFIG } });
const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));
const HOSTB = `${import.meta.dirname}/hostb.sh`;

let rgw: Rgw;
let b: HostB;
const app = { name: uniqueName(), port: 0 };

/** Labels of the backups the shared repository holds of the app, read on host A. */
const sharedBackups = async () =>
  ((JSON.parse((await sh('pgbackrest', [`--stanza=${app.name}`, '--repo=2', '--output=json', 'info'], { user: 'postgres' })).stdout.replace(/"system-id":(\d+)/g, '"system-id":"$1"'))[0]?.backup ?? []) as Array<{ label: string }>).map((x) => x.label);

beforeAll(async () => {
  mkdirSync(TEST_ROOT, { recursive: true, mode: 0o755 });
  writeFileSync(CONFIG, [...testConfigLines(), `log-file = ${TEST_ROOT}/takeover.log`].join('\n') + '\n');
  ({ rgw, b } = await startFleet({ runA: run, repo: 'fleet', path: `/${TEST_ROOT.split('/').at(-1)}/takeover`, bConfig: [`port-min = ${PORT_MIN}`, `port-max = ${PORT_MAX}`, 'archive-timeout = 10', 'takeover-min-idle = 5'] }));
  app.port = await freePort();
  expect((await run(['initcluster', app.name, '--port', String(app.port), '--yes', '-q'])).code).toBe(0);
}, 240_000);

afterAll(async () => {
  await stopHostB(b);
  await sh('pg_ctlcluster', ['15', app.name, 'stop', '-m', 'immediate']);
  await removeTestCluster(app.name);
  await stopRgw(rgw);
}, 180_000);

/** Runs recover on host B until it stops before `step` (PGMAM_TEST_PAUSE_BEFORE), then SIGKILLs it there. */
async function killOnBBefore(args: string[], name: string, step: string): Promise<void> {
  const marker = `${b.root}/var-lib-pgmam/journal/${name}.paused`;
  const child = execa(HOSTB, ['run', b.dir, PGMAM, ...args, '--yes', '-q'], { reject: false, stdin: 'ignore', env: { PGMAM_CONFIG: '/etc/pgmam/pgmam.conf', PGMAM_TEST_PAUSE_BEFORE: step } });
  let exited = false;
  void child.then(() => (exited = true));
  const deadline = Date.now() + 180_000;
  for (;;) {
    const text = existsSync(marker) ? readFileSync(marker, 'utf8') : '';
    const [pid, at] = text.trim().split(' ');
    if (pid && at === step) {
      // Its PID is host B's: the kill happens there.
      await onB(b, ['kill', '-KILL', pid]);
      break;
    }
    if (exited) throw new Error(`recover ended before step ${step}: ${(await child).stderr}`);
    if (Date.now() > deadline) throw new Error(`recover did not reach ${step}`);
    await sleep(50);
  }
  await child;
}

describe('kill matrix: takeover', () => {
  it("killed once its WAL goes into the shared stanza: the re-run deletes nothing there and takes over; no row lost", { timeout: 600_000 }, async () => {
    await sql(app.port, "create table t as select g as k from generate_series(1, 500) g");
    await switchWalAndWait(app.port);
    const originBackups = await sharedBackups();
    expect(originBackups.length).toBeGreaterThanOrEqual(1);
    // Host A is lost.
    await sh('pg_ctlcluster', ['15', app.name, 'stop', '-m', 'immediate']);
    await sleep(7000);

    const step = 'check-archiving';
    await killOnBBefore(['recover', app.name, '--from-repo', 'fleet'], app.name, step);
    const listed = (JSON.parse((await pgmamOnB(b, ['list', '--json'])).stdout) as Array<{ name: string; interrupted: { command: string; step: string; rerun: string } | null }>).find((e) => e.name === app.name);
    expect(listed?.interrupted).toMatchObject({ command: 'recover', step });
    // B's timeline already reached the shared stanza (the history file is archived before check-archiving).
    const shared = Object.keys(JSON.parse((await sh('pgbackrest', [`--stanza=${app.name}`, '--repo=2', '--output=json', 'repo-ls', `archive/${app.name}/15-1`], { user: 'postgres' })).stdout || '{}'));
    expect(shared).toContain('00000002.history');
    // The re-run list printed carries --force: the first run's own WAL makes the archive look busy.
    expect(listed!.interrupted!.rerun).toContain('--force');
    const again = await pgmamOnB(b, ['recover', app.name, '--from-repo', 'fleet', '--force', '--yes', '-q']);
    expect(again.code, again.stderr).toBe(0);
    // Nothing of the shared stanza was deleted: the origin's backups are still there.
    const after = await sharedBackups();
    for (const label of originBackups) expect(after).toContain(label);
    const port = (JSON.parse((await pgmamOnB(b, ['list', '--json'])).stdout) as Array<{ name: string; port: number }>).find((e) => e.name === app.name)!.port;
    expect(await sqlOnB(b, port, 'select count(*) from t')).toBe('500');
    expect((await pgmamOnB(b, ['check', app.name])).code).toBe(0);
    matrix.push(`recover (takeover) × ${step} → listed as interrupted; re-run (--force) rolled back only what it made, the origin's backups stay in the shared stanza; 500 of 500 rows`);
    console.log(`kill matrix (command × step → outcome):\n${matrix.join('\n')}`);
  });
});
