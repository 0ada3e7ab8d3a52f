import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildList, type ListFacts } from '../../../src/host/inventory.js';
import { renderTable } from '../../../src/commands/list/list.js';
import { parseLsClusters } from '../../../src/pg/clusters.js';
import { parseInfo } from '../../../src/pgbackrest/info.js';
import type { ManagedCluster } from '../../../src/state/store.js';

const fixture = (f: string) => readFileSync(new URL(`../../../fixtures/${f}`, import.meta.url), 'utf8');

const rec: ManagedCluster = {
  format: 1, cluster: '15/fxrec', name: 'fxrec', version: '15', role: 'app', parent: null, stanza: 'fxrec',
  stanzaFile: '/etc/pgbackrest/conf.d/fxrec.conf', repoPath: '/r', createdAt: '2026-11-22T05:11:30.000Z', syncedAt: null, origin: null, fenced: null, replication: null, successor: null, drill: null,
  timelines: [],
  repos: [],
  backupMark: null,
  dropped: null,
  repoMarks: {},
  preserved: [{ path: '/var/lib/postgresql/15/fxrec.pre-pitr-x', reason: 'pitr', createdAt: '2026-11-22T06:00:00.000Z' }],
};

describe('list', () => {
  const facts = (): ListFacts => ({
    clusters: parseLsClusters(fixture('pg_lsclusters.json')),
    managed: [rec, { ...rec, cluster: '15/gone', name: 'gone', stanza: 'gone', preserved: [] }],
    interrupted: [],
    dropped: [],
    leftovers: [],
    stanzas: new Map(parseInfo(fixture('pgbackrest-info-one-full.json')).map((s) => [s.name, s])),
    archivedAt: new Map([['fxrec', new Date('2026-11-22T05:20:00Z')]]),
    repoViews: new Map(),
    lineages: new Map([['fxrec', { timeline: 1, history: [] }]]),
    now: new Date('2026-11-22T05:30:00Z'),
    problems: [],
  });

  it('joins host facts with pgmam records', () => {
    const entries = buildList(facts());
    expect(entries.map((e) => [e.cluster, e.status, e.role])).toEqual([
      ['15/fxrec', 'online', 'app'],
      ['15/main', 'down', 'unmanaged'],
      ['15/gone', 'missing', 'app'],
    ]);
    expect(entries[0]).toMatchObject({
      managed: true,
      stanza: 'fxrec',
      port: 5491,
      lastBackup: { type: 'full', label: '20261122-051133F', stoppedAt: '2026-11-22T05:11:36.000Z' },
      // pitr's window (restore/window.ts): a second after the backup's end, to now while the cluster runs.
      recoveryWindow: { from: '2026-11-22T05:11:37.000Z', to: '2026-11-22T05:30:00.000Z', excluded: [] },
    });
    expect(entries[1]).toMatchObject({ managed: false, stanza: null, lastBackup: null, recoveryWindow: null, parent: null, preserved: [] });
  });

  it('without repository access, backups are unknown, not invented', () => {
    const entries = buildList({ ...facts(), stanzas: undefined });
    expect(entries[0]).toMatchObject({ managed: true, lastBackup: null, recoveryWindow: null });
  });

  it('renders a table of 80 columns at most by default: the preserved directories counted, the window left to -o wide', () => {
    const t = renderTable(buildList(facts()));
    expect(t.split('\n')[0]).toMatch(/^CLUSTER\s+PORT\s+STATUS\s+ROLE\s+LAST BACKUP\s+PRES$/);
    expect(Math.max(...t.split('\n').map((l) => l.length))).toBeLessThanOrEqual(80);
    expect(t).toMatch(/15\/fxrec +\d+ +\S+ +app +full 2026-11-22 \d\d:\d\d:\d\dZ +1/);
  });
  it('a long cluster name is shortened with … to keep the width', () => {
    const long = buildList(facts()).map((e) => ({ ...e, cluster: `15/${'x'.repeat(70)}` }));
    expect(Math.max(...renderTable(long, { width: 80 }).split('\n').map((l) => l.length))).toBeLessThanOrEqual(80);
  });
  it('-o wide: every column', () => {
    const t = renderTable(buildList(facts()), { wide: true });
    expect(t.split('\n')[0]).toMatch(/^CLUSTER\s+PORT\s+STATUS\s+ROLE\s+PARENT\s+STANZA\s+LAST BACKUP\s+RECOVERY WINDOW\s+PRESERVED$/);
    expect(t).toContain('fxrec.pre-pitr-x (pitr,');
  });
});
