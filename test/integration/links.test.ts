// install-links: pgmam and the legacy names as symlinks that dispatch on the invoked name.
import { mkdtempSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PGMAM, pgmam, pgmamOk } from './helpers.js';

describe('pgmam install-links', () => {
  it('links pgmam and the four legacy names; each dispatches on its name', async () => {
    const prefix = mkdtempSync('/tmp/pgmam-links-');
    try {
      await pgmamOk(['install-links', '--prefix', prefix]);
      expect(readlinkSync(`${prefix}/pgmam`)).toBe(PGMAM);
      for (const n of ['initcluster', 'pitr', 'pgbranch', 'pgbackup']) expect(readlinkSync(`${prefix}/${n}`)).toBe(`${prefix}/pgmam`);
      expect((await pgmam(['--version'], { bin: `${prefix}/pgmam` })).code).toBe(0);
      // A legacy name's help is its own usage, with its legacy flags.
      const help = await pgmam(['--help'], { bin: `${prefix}/initcluster` });
      expect(help.stdout).toContain('usage: initcluster -a APP [-p PORT]\n  the same as: pgmam initcluster APP [--port PORT]');
      const branch = await pgmam(['--help'], { bin: `${prefix}/pgbranch` });
      expect(branch.code, branch.stderr).toBe(0);
      expect(branch.stdout).toContain('usage: pgbranch -c -a APP [-n NAME] | pgbranch -b BRANCH sync');
      const backup = await pgmam(['-h'], { bin: `${prefix}/pgbackup` });
      expect(backup.code, backup.stderr).toBe(0);
      expect(backup.stdout).toContain('usage: pgbackup [-path DIR]');
      // Running it again changes nothing and succeeds.
      await pgmamOk(['install-links', '--prefix', prefix]);
    } finally {
      rmSync(prefix, { recursive: true });
    }
  });

  it('refuses to replace a file that is not its link (exit 4)', async () => {
    const prefix = mkdtempSync('/tmp/pgmam-links-');
    writeFileSync(`${prefix}/pitr`, 'a user script');
    const r = await pgmam(['install-links', '--prefix', prefix]);
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toContain(`${prefix}/pitr`);
    expect(() => readlinkSync(`${prefix}/pgmam`)).toThrow();
    rmSync(prefix, { recursive: true });
  });
});
