// dist/pgmam, the standalone executable, with no Node.js on the host: every `node` on PATH is hidden
// (an empty file bind-mounted over it in a mount namespace of the test's own), then initcluster, list,
// pitr and branch create run through it on real clusters.
import { execa } from 'execa';
import { existsSync, realpathSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { CONFIG, ROOT, TEST_ROOT, listEntry, removeTestCluster, sql, targetBetween, uniqueName, type Run } from './helpers.js';

const EXE = `${ROOT}/dist/pgmam`;
const app = uniqueName();
const branch = `${app}_dev`;

/** Every `node` a shell would find, as real paths (PATH entries and /usr/bin/node). */
async function nodes(): Promise<string[]> {
  const r = await execa('sh', ['-c', 'which -a node; ls /usr/bin/node /usr/local/bin/node 2>/dev/null'], { reject: false });
  return [...new Set(r.stdout.split('\n').filter(Boolean).map((p) => realpathSync(p)))];
}

/** Runs `script` (sh) in a new mount namespace where every node binary is an empty, non-executable file. */
async function withoutNode(script: string, args: string[] = []): Promise<Run> {
  const empty = `${TEST_ROOT}/no-node`;
  writeFileSync(empty, '', { mode: 0o644 });
  const hide = (await nodes()).map((n) => `mount --bind ${empty} ${n}`).join(' && ');
  const r = await execa('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', `${hide} && ${script}`, 'sh', ...args], { reject: false, env: { PGMAM_CONFIG: CONFIG }, cwd: '/tmp', stdin: 'ignore' });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}
const pgmamNoNode = (args: string[]) => withoutNode(`exec ${EXE} "$@"`, args);

afterAll(async () => {
  await removeTestCluster(branch);
  await removeTestCluster(app);
});

describe('dist/pgmam without Node.js', () => {
  it('exists, and no node runs in the namespace it is tried in', async () => {
    expect(existsSync(EXE)).toBe(true);
    expect((await nodes()).length).toBeGreaterThan(0);
    const r = await withoutNode('node -e 0');
    expect(r.code).not.toBe(0);
  });

  it('initcluster, list, pitr and branch create work; rows show each did its work', { timeout: 600_000 }, async () => {
    const init = await pgmamNoNode(['initcluster', app, '--yes', '-q']);
    expect(init.code, init.stderr).toBe(0);
    const list = await pgmamNoNode(['list', '--json']);
    expect(list.code, list.stderr).toBe(0);
    const entry = (JSON.parse(list.stdout) as Array<{ name: string; port: number; role: string }>).find((e) => e.name === app);
    expect(entry).toMatchObject({ role: 'app' });
    const port = entry!.port;
    await sql(port, 'create table s (v text)');
    const t = await targetBetween(port, "insert into s values ('A')", "insert into s values ('B')");

    const pitr = await pgmamNoNode(['pitr', app, '--to', t, '--yes', '-q']);
    expect(pitr.code, pitr.stderr).toBe(0);
    expect(await sql(port, "select string_agg(v, ',' order by v) from s")).toBe('A');

    const br = await pgmamNoNode(['branch', 'create', app, '--yes', '-q']);
    expect(br.code, br.stderr).toBe(0);
    const b = await listEntry(branch);
    expect(b).toMatchObject({ role: 'branch', parent: app, status: 'online' });
    expect(await sql(b.port, "select string_agg(v, ',' order by v) from s")).toBe('A');
  });
});
