// What dropped apps leave is visible and removable (issue 24, item 4): a branch dropped with its
// backups kept shows in list --all, keeps its name taken with a refusal that names purge, and purge
// deletes it; a dropped app's preserved directories go with prune --orphans; a stanza file without a
// record (a drop from before records were kept) is found too. And check's preserved-max-mb.
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, STANZA_DIR, STATE, TEST_ROOT, listEntry, pgbackrestInfo, pgmam, pgmamOk, removeTestCluster, testConfigLines, traces, uniqueName, type ListEntry } from './helpers.js';

let app = '';
let branch = '';
let other = '';
const listAll = async (name: string) => (JSON.parse((await pgmamOk(['list', '--all', '--json'])).stdout) as ListEntry[]).find((e) => e.name === name);
const listed = async (name: string) => (JSON.parse((await pgmamOk(['list', '--json'])).stdout) as ListEntry[]).some((e) => e.name === name);

beforeAll(async () => {
  app = uniqueName();
  other = uniqueName();
  await pgmamOk(['initcluster', app, '--yes', '-q']);
  await pgmamOk(['initcluster', other, '--yes', '-q']);
  await pgmamOk(['branch', 'create', app, '--name', 'dev', '--yes', '-q']);
  branch = `${app}_dev`;
}, 240_000);

afterAll(async () => {
  for (const n of [branch, app, other]) await removeTestCluster(n);
}, 120_000);

describe('a branch dropped with its backups kept', () => {
  it('is gone from list, shown by list --all as dropped with its backups, and list says how to see it', async () => {
    await pgmamOk(['branch', 'drop', branch, '--yes']);
    expect(await listed(branch)).toBe(false);
    expect(await listAll(branch)).toMatchObject({ status: 'dropped', role: 'dropped', managed: false, stanza: branch, port: null, lastBackup: { type: 'full' } });
    expect((await pgmamOk(['list'])).stdout).toMatch(/^\d+ dropped apps? left backups or preserved directories: pgmam list --all$/m);
    expect(await listAll(branch).then((e) => e?.recoveryWindow)).not.toBeNull();
  });

  it('keeps the name taken: initcluster is refused with the command that frees it; drop and branch drop say the same', async () => {
    const init = await pgmam(['initcluster', branch, '--yes']);
    expect(init.code, init.stderr).toBe(4);
    expect(init.stderr).toContain(`pgmam purge ${branch} deletes its kept backups and frees the name`);
    for (const args of [['drop', branch, '--purge-backups', '--yes'], ['branch', 'drop', branch, '--purge-backups', '--yes']]) {
      const r = await pgmam(args);
      expect(r.code, r.stderr).toBe(4);
      expect(r.stderr).toContain(`${branch} was dropped; pgmam purge ${branch} deletes`);
    }
    expect((await pgbackrestInfo(branch))[0]!.backup.length).toBeGreaterThan(0);
  });

  it('purge: refused without --yes off a terminal and for a live app; --dry-run changes nothing', async () => {
    expect((await pgmam(['purge', branch])).code).toBe(2);
    expect((await pgmam(['purge', app, '--yes'])).code).toBe(4);
    expect((await pgmam(['purge', 't_nosuch', '--yes'])).code).toBe(4);
    expect((await pgmam(['purge', branch, '--dry-run'])).code).toBe(0);
    expect(existsSync(`${STANZA_DIR}/${branch}.conf`)).toBe(true);
    expect((await pgbackrestInfo(branch))[0]!.backup.length).toBeGreaterThan(0);
  });

  it('purge deletes its stanza, backups, stanza file and record: nothing left, the name free again', async () => {
    await pgmamOk(['purge', branch, '--yes']);
    expect(await traces(branch)).toEqual([]);
    expect(await listAll(branch)).toBeUndefined();
    expect((await pgmam(['initcluster', branch, '--dry-run'])).code).toBe(0);
    // The parent is untouched.
    expect((await listEntry(app)).lastBackup).not.toBeNull();
  });
});

describe('a dropped app with a preserved data directory', () => {
  it('check: over preserved-max-mb it is unhealthy (exit 7), with the prune that frees it', async () => {
    await pgmamOk(['pitr', other, '--latest', '--yes', '-q']);
    const cfg = `${TEST_ROOT}/leftovers-preserved.conf`;
    writeFileSync(cfg, [...testConfigLines(), 'preserved-max-mb = 1'].join('\n') + '\n');
    const r = await pgmam(['check', other, '--json'], { env: { PGMAM_CONFIG: cfg } });
    expect(r.code, r.stderr).toBe(7);
    const h = (JSON.parse(r.stdout) as Array<{ name: string; problems: string[] }>).find((x) => x.name === other)!;
    expect(h.problems).toEqual([expect.stringMatching(/^its 1 preserved data directory takes \d+ MB \(preserved-max-mb 1\) \(hint: pgmam prune /)]);
    expect((await pgmam(['check', other])).code).toBe(0);
  });

  it('dropped: list --all shows the directory; prune --orphans removes it; the kept stanza stays until purge', async () => {
    const pre = (await listEntry(other)).preserved.map((p) => p.path);
    expect(pre).toHaveLength(1);
    await pgmamOk(['drop', other, '--yes']);
    expect(await listAll(other)).toMatchObject({ role: 'dropped', preserved: [{ path: pre[0] }] });
    expect((await pgmam(['prune', '--orphans', '--older-than', '0s'])).code).toBe(2);
    const dry = await pgmamOk(['prune', '--orphans', '--older-than', '0s', '--dry-run']);
    expect(dry.stdout).toContain(`rm -rf ${pre[0]}`);
    expect(existsSync(pre[0]!)).toBe(true);
    await pgmamOk(['prune', '--orphans', '--older-than', '0s', '--yes']);
    expect(existsSync(pre[0]!)).toBe(false);
    expect(await listAll(other)).toMatchObject({ role: 'dropped', preserved: [], stanza: other });
  });

  it('a stanza file of pgmam\'s without a record (an older drop) is found by list --all and purged', async () => {
    rmSync(`${STATE}/clusters/${other}.json`);
    expect(await listAll(other)).toMatchObject({ role: 'dropped', stanza: other, lastBackup: { type: 'full' } });
    await pgmamOk(['purge', other, '--yes']);
    expect(await traces(other)).toEqual([]);
    expect(existsSync(`${REPO}/backup/${other}`)).toBe(false);
  });
});
