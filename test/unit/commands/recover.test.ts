// recover: the guards that keep two hosts out of one stanza, and the plan's shape for a copy and a takeover.
import { describe, expect, it } from 'vitest';
import { archiveIsIdle, planRecover, recoverCommand, recoverGuards, type RecoverFacts, type RecoverOptions } from '../../../src/commands/recover/recover.js';
import { newestTimeline, parseRepoEntries } from '../../../src/commands/recover/source.js';
import { assemblePlan } from '../../../src/plan/command.js';
import { emptySource } from '../../../src/restore/source.js';
import type { RepoRecord } from '../../../src/state/repos.js';
import { aNewCluster, aStanza, planEnv } from '../fixtures.js';

const now = new Date('2026-12-01T12:00:00Z');
const repo: RepoRecord = {
  format: 1, name: 'fleet', kind: 's3', s3: { host: '10.0.0.1', port: 443, bucket: 'b', region: 'us-east-1', uriStyle: 'path' }, path: '/p', caFile: null, certFile: null, keyFile: null, encrypted: false,
  retention: { full: 2, fullType: 'count' }, attachNew: false, fullInterval: null, diffInterval: null, createdAt: 'x',
};
const full = { label: '20261201-100000F', type: 'full' as const, timestamp: { start: Date.parse('2026-12-01T10:00:00Z') / 1000, stop: Date.parse('2026-12-01T10:00:05Z') / 1000 }, archive: { start: '000000010000000000000002', stop: '000000010000000000000002' } };
const facts = (over: Partial<RecoverFacts> = {}, archivedMinutesAgo = 30): RecoverFacts => ({
  ...aNewCluster('app1', { attach: [{ index: 2, repo }] }),
  uid: 0, now, name: 'app1', repoRecord: repo, installedPg: ['15'], postgres: { uid: 101, gid: 104 }, mainHasSection: false,
  source: {
    facts: { ...emptySource(), stanza: aStanza('app1', { backup: [full] }), currentTimeline: 1, archivedAt: new Date(now.getTime() - archivedMinutesAgo * 60_000), repo: { name: 'fleet', index: 1, why: '--from-repo fleet' } },
    archivePath: 'archive/app1/15-1', archiveEntries: ['0000000100000000'], host: 'hosta', version: '15', problem: undefined,
  },
  ...over,
});
const opts = (o: Partial<RecoverOptions> = {}): RecoverOptions => ({ app: 'app1', fromRepo: 'fleet', force: false, json: false, dryRun: false, yes: true, keepOnError: false, ...o });
const refused = (f: RecoverFacts, o: RecoverOptions) => recoverGuards(f, o, planEnv()).filter((g) => !g.check().ok).map((g) => g.id);

describe('recover: guards', () => {
  it('a takeover waits until the archive has been idle for takeover-min-idle; --force overrides; a copy never waits', () => {
    expect(refused(facts({}, 1), opts())).toEqual(['origin-archive-is-idle']);
    expect(refused(facts({}, 1), opts({ force: true }))).toEqual([]);
    expect(refused(facts({}, 1), opts({ as: 'app1_copy' }))).toEqual([]);
    expect(refused(facts({}, 30), opts())).toEqual([]);
    expect(archiveIsIdle(facts({}, 4), opts(), 300).check().ok).toBe(false);
    expect(archiveIsIdle(facts({}, 6), opts(), 300).check().ok).toBe(true);
  });
  it('refuses an unknown repository, a stanza it lacks, a major not installed, a taken name', () => {
    expect(refused(facts({ repoRecord: undefined, source: { ...facts().source, problem: 'pgmam has no repository fleet' } }), opts())).toEqual(['repo-exists', 'source-stanza-is-readable']);
    expect(refused(facts({ source: { ...facts().source, problem: 'repository fleet holds no stanza app1' } }), opts())).toEqual(['source-stanza-is-readable']);
    expect(refused(facts({ installedPg: ['16'] }), opts())).toEqual(['pg-version-is-installed']);
    expect(refused(facts({ nameTakenBy: ['stanza app1 exists in repository other'] }), opts({ as: 'copy1' }))).toEqual(['name-is-free']);
  });
});

describe('recover: plan', () => {
  it('a copy: restore with archiving off from a configuration of its own, own stanza, history archived, the source archive verified untouched, that configuration removed', () => {
    const p = planRecover(facts({ name: 'copy1' }), opts({ as: 'copy1' }), planEnv());
    const ids = p.steps.map((s) => s.id);
    expect(ids.indexOf('write-source-config')).toBeLessThan(ids.indexOf('restore-backup'));
    expect(ids).toContain('verify-isolation');
    expect(ids.indexOf('enable-archiving')).toBeLessThan(ids.indexOf('archive-new-history'));
    expect(ids.indexOf('backup-full-repo2')).toBeLessThan(ids.indexOf('verify-source-archive'));
    expect(ids.indexOf('verify-source-archive')).toBeLessThan(ids.indexOf('remove-source-config'));
    expect(ids.at(-1)).toBe('hand-over');
    const restore = p.steps.find((s) => s.id === 'restore-backup')!.show?.join(' ') ?? JSON.stringify(p.steps.find((s) => s.id === 'restore-backup')!.run);
    expect(restore).toContain('--stanza=app1');
    expect(restore).toContain('--archive-mode=off');
    expect(restore).toContain('--config-include-path=/var/lib/pgmam/recover/copy1');
    expect(restore).toContain('--target-timeline=1');
  });
  it("a takeover: no source check (it archives into that stanza by design), and a rollback never deletes the shared repository's copy of the stanza", () => {
    const p = planRecover(facts(), opts(), planEnv());
    expect(p.steps.map((s) => s.id)).not.toContain('verify-source-archive');
    const data = (p.journal as { data: { repos: unknown[] } }).data;
    expect(data.repos).toEqual([]);
    expect(p.journal && (p.journal as { rerun: string }).rerun).toContain('--force');
  });
  it('a takeover is destructive and typed: the app name', () => {
    const plan = assemblePlan(recoverCommand, facts(), opts(), planEnv());
    expect(plan.destructive).toBe(true);
    expect(plan.typeToConfirm).toBe('app1');
    expect(assemblePlan(recoverCommand, facts({ name: 'copy1' }), opts({ as: 'copy1' }), planEnv()).destructive).toBe(false);
  });
});

describe('recover: the source archive', () => {
  it("its newest timeline, from history files and segment directories", () => {
    expect(newestTimeline(['0000000100000000', '00000002.history', '0000000200000000'])).toBe(2);
    expect(newestTimeline(['0000000100000000'])).toBe(1);
    expect(newestTimeline(['00000003.history'])).toBe(3);
    expect(parseRepoEntries('{"00000002.history":{"type":"file","size":42,"time":1764590000},"0000000100000000":{"type":"path"}}')).toEqual([
      { name: '00000002.history', type: 'file', time: 1764590000 },
      { name: '0000000100000000', type: 'path', time: undefined },
    ]);
  });
});
