// Where a restore reads (restore/source.ts chooseRepo): --repo, else the local repository when it
// covers the target, else the first attached one that does; the reason is said either way.
import { describe, expect, it } from 'vitest';
import { chooseRepo, type RepoCandidate } from '../../../src/restore/source.js';
import { parseTarget } from '../../../src/restore/target.js';
import { aStanza } from '../fixtures.js';

const sec = (iso: string) => Date.parse(iso) / 1000;
const full = (label: string, stopIso: string) => ({ label, type: 'full' as const, archive: { start: '000000010000000000000002', stop: '000000010000000000000003' }, lsn: { start: '0/2000028', stop: '0/3000050' }, timestamp: { start: sec(stopIso) - 2, stop: sec(stopIso) } });
const withBackups = (...b: ReturnType<typeof full>[]) => aStanza('app1', { backup: b });
const tl = { currentTimeline: 1, history: [] };
const local = (over: Partial<RepoCandidate> = {}): RepoCandidate => ({ name: 'local', index: 1, stanza: withBackups(full('L1', '2026-12-01T10:00:00Z')), problem: undefined, archivedAt: new Date('2026-12-01T12:00:00Z'), ...over });
const s3 = (over: Partial<RepoCandidate> = {}): RepoCandidate => ({ name: 'offsite', index: 2, stanza: withBackups(full('S1', '2026-12-01T09:00:00Z')), problem: undefined, archivedAt: new Date('2026-12-01T12:00:00Z'), ...over });
const at = parseTarget('2026-12-01 11:00:00+00');

describe('which repository a restore reads', () => {
  it('the local one when it covers the target', () => {
    expect(chooseRepo(tl, [local(), s3()], { target: at })).toEqual({ chosen: local(), why: 'the local repository covers 2026-12-01 11:00:00.000000+00' });
  });
  it('an attached one when only it covers the target: the local one has no backup, or cannot be read', () => {
    const r = chooseRepo(tl, [local({ stanza: withBackups() }), s3()], { target: at });
    expect(r).toMatchObject({ chosen: { name: 'offsite', index: 2 } });
    expect((r as { why: string }).why).toMatch(/^only repository offsite covers .*: the local one has no usable backup ending before/);
    expect(chooseRepo(tl, [local({ stanza: undefined, problem: 'stanza app1: missing stanza path' }), s3()], {})).toMatchObject({ chosen: { name: 'offsite' }, why: expect.stringMatching(/the local one stanza app1: missing stanza path/) });
  });
  it('an attached one whose archive ends before the target does not cover it; nothing covers: the local one, for the guards to refuse', () => {
    const r = chooseRepo(tl, [local({ stanza: withBackups() }), s3({ archivedAt: new Date('2026-12-01T10:30:00Z') })], { target: at });
    expect(r).toMatchObject({ chosen: { name: 'local' }, why: 'the local repository (no repository covers the target)' });
  });
  it('--repo chooses, even when the local one covers it; one the app lacks is a problem', () => {
    expect(chooseRepo(tl, [local(), s3()], { target: at, repo: 'offsite' })).toMatchObject({ chosen: { name: 'offsite' }, why: '--repo offsite' });
    expect(chooseRepo(tl, [local(), s3()], { repo: 'nosuch' })).toEqual({ problem: 'the app is not attached to repository nosuch (it has local, offsite)' });
  });
  it('a repository that was suspended restores across no gap: a target inside it is not covered, a backup before it cannot replay past it', () => {
    const us = (iso: string) => Date.parse(iso) * 1000;
    const gap = { fromUs: us('2026-12-01T10:15:00Z'), toUs: us('2026-12-01T10:45:00Z') };
    const noLocal = local({ stanza: withBackups() });
    // S1 (09:00) is before the gap, S2 (10:50) after it.
    const bridged = s3({ stanza: withBackups(full('S1', '2026-12-01T09:00:00Z'), full('S2', '2026-12-01T10:50:00Z')), gaps: [gap] });
    const inside = chooseRepo(tl, [noLocal, bridged], { target: parseTarget('2026-12-01 10:30:00+00') });
    expect(inside).toMatchObject({ chosen: { name: 'local' }, why: 'the local repository (no repository covers the target)' });
    const after = chooseRepo(tl, [noLocal, bridged], { target: at });
    expect(after).toMatchObject({ chosen: { name: 'offsite', stanza: { backup: [{ label: 'S2' }] } } });
    const before = chooseRepo(tl, [noLocal, bridged], { target: parseTarget('2026-12-01 10:00:00+00') });
    expect(before).toMatchObject({ chosen: { name: 'offsite', stanza: { backup: [{ label: 'S1' }, { label: 'S2' }] } } });
    // Not bridged yet (its full not taken): nothing after the gap's start.
    expect(chooseRepo(tl, [noLocal, s3({ gaps: [{ ...gap, toUs: null }] })], { target: at })).toMatchObject({ chosen: { name: 'local' } });
    expect(chooseRepo(tl, [noLocal, s3({ gaps: [{ ...gap, toUs: null }] })], { target: at, repo: 'offsite' })).toMatchObject({ chosen: { name: 'offsite', problem: expect.stringMatching(/misses WAL from 2026-12-01T10:15:00.000Z to its next full backup/) } });
  });
});
