// Copy-on-write copies (restore/cow.ts): the choice and what is copied, and the wait for the archive.
import { describe, expect, it } from 'vitest';
import { chooseCopy, copiedEntry, onlyVanished } from '../../../src/restore/cow.js';
import { waitArchived } from '../../../src/restore/steps.js';
import { fakeContext } from '../fakes.js';

describe('chooseCopy', () => {
  const xfs = { ok: true as const, how: 'XFS with reflink=1 at /srv' };
  it('copy-on-write wherever it can be; the restore path with the reason otherwise', () => {
    expect(chooseCopy(undefined, xfs, true, undefined)).toMatchObject({ cow: true });
    expect(chooseCopy(undefined, xfs, false, undefined)).toMatchObject({ cow: false, why: expect.stringContaining('the parent is down') });
    expect(chooseCopy(undefined, xfs, true, '--at takes a past state')).toMatchObject({ cow: false, why: 'restored from the backups: --at takes a past state' });
    expect(chooseCopy(undefined, { ok: false, reason: 'ext4' }, true, undefined)).toMatchObject({ cow: false, why: 'restored from the backups: ext4' });
    expect(chooseCopy(false, xfs, true, undefined)).toMatchObject({ cow: false });
    expect(chooseCopy(true, xfs, true, undefined)).toMatchObject({ cow: true });
  });
});

describe('the copy', () => {
  it('leaves out what a base backup leaves out', () => {
    for (const e of ['postmaster.pid', 'postmaster.opts', 'pg_wal', 'pg_replslot', 'pg_stat_tmp', 'recovery.signal', 'standby.signal', 'backup_label', 'backup_label.old', 'tablespace_map', 'pgsql_tmp']) expect(copiedEntry(e), e).toBe(false);
    for (const e of ['base', 'global', 'pg_xact', 'pg_multixact', 'PG_VERSION', 'postgresql.auto.conf', 'pg_tblspc']) expect(copiedEntry(e), e).toBe(true);
  });
  it("accepts cp's complaints only about files the running source removed meanwhile", () => {
    expect(onlyVanished("cp: cannot stat '/d/base/5/16384': No such file or directory")).toBe(true);
    expect(onlyVanished("cp: cannot stat '/d/a': No such file or directory\ncp: failed to clone '/c/b' from '/d/b': Operation not supported")).toBe(false);
  });
});

describe('waitArchived', () => {
  it("counts a backup's history file as its segment archived (it is archived after it)", async () => {
    const { ctx, runner } = fakeContext();
    runner.register(/pg_stat_archiver/, { stdout: '000000010000000000000011.00000028.backup|0|' }, 1);
    await waitArchived(ctx, { id: { version: '15', name: 'p' }, port: 5433 }, '000000010000000000000011', 1);
    runner.verify();
  });
});
