// Bad input and forbidden host states: the documented exit code, and no trace on the host.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:net';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { PGMAM, REPO, STANZA_DIR, ownClusters, freePort, pgmam, removeTestCluster, sh, traces, uniqueName } from './helpers.js';

let existing: string; // a real cluster the refusals collide with (made with pg_createcluster, never started)
let existingPort: number;
let listener: Server;
let listenPort: number;

beforeAll(async () => {
  existing = uniqueName();
  existingPort = await freePort();
  const r = await sh('pg_createcluster', ['15', existing, '--port', String(existingPort)]);
  if (r.code !== 0) throw new Error(r.stderr);
  listenPort = await freePort();
  listener = createServer();
  await new Promise<void>((ok) => listener.listen(listenPort, '127.0.0.1', ok));
});

afterAll(async () => {
  listener?.close();
  await removeTestCluster(existing);
});

async function expectNoChange(code: number, args: string[], opts: Parameters<typeof pgmam>[1] = {}, name?: string) {
  const before = await ownClusters();
  const r = await pgmam(args, opts);
  expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(code);
  expect(r.stderr).toMatch(/^pgmam: /m);
  expect(await ownClusters()).toEqual(before);
  if (name) expect(await traces(name)).toEqual([]);
  return r;
}

describe('malformed input: exit 2 whatever the host', () => {
  it.each(['../x', 'a;b', 'App1', '1app', `a${'b'.repeat(48)}`, ''])('name %j', async (bad) => {
    await expectNoChange(2, ['initcluster', bad]);
  });
  it.each(['80', '70000', 'abc'])('port %s', async (bad) => {
    const name = uniqueName();
    await expectNoChange(2, ['initcluster', name, '--port', bad], {}, name);
  });
  it('legacy form with a bad port', async () => {
    const dir = mkdtempSync('/tmp/pgmam-legacy-');
    symlinkSync(PGMAM, `${dir}/initcluster`);
    const name = uniqueName();
    await expectNoChange(2, ['-a', name, '-p', '80'], { bin: `${dir}/initcluster` }, name);
    rmSync(dir, { recursive: true });
  });
  it('an unknown command says so (exit 2)', async () => {
    const r = await expectNoChange(2, ['restore', 'app1']);
    expect(r.stderr).toContain("unknown command 'restore'");
  });
});

describe('forbidden by the host: exit 4, nothing changed', () => {
  it('a port configured by another cluster', async () => {
    const name = uniqueName();
    const r = await expectNoChange(4, ['initcluster', name, '--port', String(existingPort)], {}, name);
    expect(r.stderr).toContain(`port ${existingPort}`);
  });
  it('a port something listens on', async () => {
    const name = uniqueName();
    await expectNoChange(4, ['initcluster', name, '--port', String(listenPort)], {}, name);
  });
  it('an existing cluster name', async () => {
    await expectNoChange(4, ['initcluster', existing, '--port', String(await freePort())]);
  });
  it('an existing stanza in the repository', async () => {
    const name = uniqueName();
    // The repository as pgmam would have made it (owned by postgres), holding a stanza of that name.
    await sh('install', ['-d', '-o', 'postgres', '-g', 'postgres', '-m', '750', REPO, `${REPO}/backup`]);
    mkdirSync(`${REPO}/backup/${name}`);
    await expectNoChange(4, ['initcluster', name]);
    rmSync(`${REPO}/backup/${name}`, { recursive: true });
    expect(await traces(name)).toEqual([]);
  });
  it('an existing stanza file', async () => {
    const name = uniqueName();
    mkdirSync(STANZA_DIR, { recursive: true });
    writeFileSync(`${STANZA_DIR}/${name}.conf`, `[${name}]\npg1-path=/nonexistent\n`);
    await expectNoChange(4, ['initcluster', name]);
    rmSync(`${STANZA_DIR}/${name}.conf`);
  });
  it('every failed guard is reported at once', async () => {
    const r = await expectNoChange(4, ['initcluster', existing, '--port', String(listenPort)]);
    expect(r.stderr.match(/^pgmam: initcluster refused:/gm)?.length, r.stderr).toBe(2);
  });
  it('run as a non-root user', async () => {
    const name = uniqueName();
    const r = await expectNoChange(4, ['initcluster', name], { user: 'nobody' }, name);
    expect(r.stderr).toContain('root');
  });
  it('pgbackrest missing from PATH', async () => {
    const name = uniqueName();
    // A PATH holding every tool of /usr/bin but pgbackrest.
    const dir = mkdtempSync('/tmp/pgmam-nopgbr-');
    for (const f of readdirSync('/usr/bin')) if (f !== 'pgbackrest') symlinkSync(`/usr/bin/${f}`, `${dir}/${f}`);
    const r = await expectNoChange(4, ['initcluster', name], { env: { PATH: `${dir}:/usr/sbin:/sbin` } }, name);
    rmSync(dir, { recursive: true });
    expect(r.stderr).toContain('pgbackrest');
  });
});

describe('configuration file: exit 3', () => {
  it('lists every unknown key and bad value', async () => {
    const dir = mkdtempSync('/tmp/pgmam-conf-');
    writeFileSync(`${dir}/bad.conf`, 'port-min = abc\ncolour = blue\ncompress-type = rar\n');
    const name = uniqueName();
    const r = await expectNoChange(3, ['initcluster', name, '--config', `${dir}/bad.conf`], {}, name);
    expect(r.stderr).toContain('colour: unknown key');
    expect(r.stderr).toContain('port-min');
    expect(r.stderr).toContain('compress-type');
    const missing = await pgmam(['list', '--config', `${dir}/missing.conf`]);
    expect(missing.code, missing.stderr).toBe(3);
    rmSync(dir, { recursive: true });
  });
});

describe('list as a non-root user', () => {
  it('shows the clusters it can read and says what it could not', async () => {
    const r = await pgmam(['list', '--json'], { user: 'nobody' });
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as Array<{ name: string }>).some((e) => e.name === existing)).toBe(true);
  });
});
