// Rule 3 on the real host: root (this test runs as root, as pgmam does) writes into directories that
// postgres owns without ever following a link postgres planted there.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { nodeFs } from '../../src/host-fs.js';
import { TEST_ROOT } from './helpers.js';

const BASE = `${TEST_ROOT}/root-safety`;
const pg = { uid: Number(execFileSync('id', ['-u', 'postgres']).toString()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString()) };
/** A file only root may touch: it must come out of every case unchanged. */
const VICTIM = `${BASE}/victim`;
const VICTIM_DIR = `${BASE}/victim-dir`;
const postgresDir = (name: string) => {
  const d = `${BASE}/${name}`;
  mkdirSync(d, { recursive: true });
  execFileSync('chown', ['postgres:postgres', d]);
  return d;
};
const asPostgres = (...argv: string[]) => execFileSync('runuser', ['-u', 'postgres', '--', ...argv]);
const victimIntact = () => {
  expect(readFileSync(VICTIM, 'utf8')).toBe('root only\n');
  expect(statSync(VICTIM)).toMatchObject({ uid: 0, gid: 0 });
  expect(statSync(VICTIM).mode & 0o777).toBe(0o600);
  expect(readdirSync(VICTIM_DIR)).toEqual([]);
};

mkdirSync(BASE, { recursive: true, mode: 0o755 });
writeFileSync(VICTIM, 'root only\n', { mode: 0o600 });
chmodSync(VICTIM, 0o600);
mkdirSync(VICTIM_DIR, { recursive: true, mode: 0o700 });
afterAll(() => execFileSync('rm', ['-rf', BASE]));

describe('root never follows a link postgres planted', () => {
  it('a file written into a postgres directory: a link at its name or at any temporary name leads nowhere', async () => {
    const d = postgresDir('conf.d');
    asPostgres('ln', '-s', VICTIM, `${d}/90-pgmam-archive.conf`);
    // Every temporary name the old scheme could use (<file>.pgmam-tmp-<pid>-<seq>), and a few more.
    for (let seq = 1; seq <= 50; seq++) asPostgres('ln', '-s', VICTIM, `${d}/90-pgmam-archive.conf.pgmam-tmp-${process.pid}-${seq}`);
    await nodeFs.writeFileAtomic(`${d}/90-pgmam-archive.conf`, 'archive_mode = on\n', { mode: 0o644, owner: pg });
    victimIntact();
    expect(lstatSync(`${d}/90-pgmam-archive.conf`).isSymbolicLink()).toBe(false);
    expect(readFileSync(`${d}/90-pgmam-archive.conf`, 'utf8')).toBe('archive_mode = on\n');
    expect(statSync(`${d}/90-pgmam-archive.conf`)).toMatchObject({ uid: pg.uid });
  });

  it('a directory made in a postgres directory, where postgres planted a link to a root directory: nothing lands there, nothing is chowned', async () => {
    const d = postgresDir('exports');
    asPostgres('ln', '-s', VICTIM_DIR, `${d}/app1`);
    await nodeFs.mkdirp(`${d}/app1`, { mode: 0o750, owner: pg });
    await expect(nodeFs.writeFileAtomic(`${d}/app1/SHA256SUMS`, 'x\n', { mode: 0o644, owner: pg })).rejects.toThrow();
    victimIntact();
    expect(statSync(VICTIM_DIR).uid).toBe(0);
  });

  it('a copy into a postgres directory with a link at its name', async () => {
    const d = postgresDir('mirror');
    const src = `${BASE}/src`;
    writeFileSync(src, 'wal\n', { mode: 0o644 });
    asPostgres('ln', '-s', VICTIM, `${d}/000000010000000000000001`);
    await nodeFs.copyFile(src, `${d}/000000010000000000000001`, pg);
    victimIntact();
    expect(readFileSync(`${d}/000000010000000000000001`, 'utf8')).toBe('wal\n');
  });

  it('in a root-owned directory the temporary file is made exclusively: a link there is not followed', async () => {
    // Only root can plant here; the exclusive no-follow create is what keeps even that from mattering.
    const d = `${BASE}/state`;
    mkdirSync(d, { recursive: true });
    symlinkSync(VICTIM, `${d}/app1.json`);
    await nodeFs.writeFileAtomic(`${d}/app1.json`, '{}\n', { mode: 0o644 });
    victimIntact();
    expect(existsSync(`${d}/app1.json`) && !lstatSync(`${d}/app1.json`).isSymbolicLink()).toBe(true);
  });
});
