// One retention (rule 4): whichever command takes a full backup, the configured retention applies —
// also after the configuration changed since the app was created — raised only by the holds of
// incident-safe retention (steps/retention.ts).
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { STANZA_DIR, TEST_ROOT, freePort, pgbackrestInfo, pgmam, removeTestCluster, sh, sql, targetBetween, testConfigLines, uniqueName, type ListEntry } from './helpers.js';

const CONFIG = `${TEST_ROOT}/retention.conf`;
const configure = (full: number) => writeFileSync(CONFIG, [...testConfigLines(), `retention-full = ${full}`].join('\n') + '\n');
const run = (args: string[]) => pgmam(args, { env: { PGMAM_CONFIG: CONFIG } });
const app = uniqueName();
const incident = uniqueName();
const fulls = async (name = app) => (await pgbackrestInfo(name))[0]!.backup.filter((b) => b.type === 'full').map((b) => b.label);

afterAll(async () => {
  await removeTestCluster(app);
  await removeTestCluster(incident);
});

describe('one retention', () => {
  it('retention-full 2 at creation, 4 later: backup keeps 4 fulls; the fulls of pitr and its undo expire nothing; one by hand keeps 4', async () => {
    configure(2);
    expect((await run(['initcluster', app, '--port', String(await freePort()), '--yes'])).code).toBe(0);
    expect(readFileSync(`${STANZA_DIR}/${app}.conf`, 'utf8')).toContain('repo1-retention-full=2\nrepo1-retention-full-type=count');
    configure(4);
    for (let i = 0; i < 3; i++) expect((await run(['backup', app, '--type', 'full'])).code).toBe(0);
    expect(await fulls()).toHaveLength(4);
    // The stanza file now says what the configuration says.
    expect(readFileSync(`${STANZA_DIR}/${app}.conf`, 'utf8')).toContain('repo1-retention-full=4\n');
    // The fulls of a pitr and of its undo expire nothing (incident-safe: the window stays).
    const pitr = await run(['pitr', app, '--latest', '--yes']);
    expect(pitr.code, pitr.stderr).toBe(0);
    expect(await fulls()).toHaveLength(5);
    const undo = await run(['pitr', app, '--undo', '--yes']);
    expect(undo.code, undo.stderr).toBe(0);
    expect(await fulls()).toHaveLength(6);
    // A backup by hand with pgBackRest applies the stanza file's retention (4), without pgmam's holds.
    expect((await sh('pgbackrest', [`--stanza=${app}`, '--type=full', 'backup'], { user: 'postgres' })).code).toBe(0);
    expect(await fulls()).toHaveLength(4);
  });

  it('incident-safe: with retention-full 2, a pitr and its undo keep the first full while their preserved directories stay; the window list shows is the one pitr accepts', async () => {
    configure(2);
    const port = await freePort();
    expect((await run(['initcluster', incident, '--port', String(port), '--yes'])).code).toBe(0);
    const [first] = await fulls(incident);
    await sql(port, 'create table t (v text)');
    const target = await targetBetween(port, "insert into t values ('kept')", "insert into t values ('undone')");
    expect((await run(['pitr', incident, '--to', target, '--yes'])).code).toBe(0);
    const undo = await run(['pitr', incident, '--undo', '--yes']);
    expect(undo.code, undo.stderr).toBe(0);
    // Three fulls: the first (the pitr's directory needs it), the pitr's and the undo's.
    const held = await fulls(incident);
    expect(held).toHaveLength(3);
    expect(held[0]).toBe(first);
    // list's window opens a second after the first full; pitr accepts exactly that, and refuses a second earlier.
    const entry = (JSON.parse((await run(['list', '--json'])).stdout) as ListEntry[]).find((e) => e.name === incident)!;
    const from = entry.recoveryWindow!.from;
    const info = (await pgbackrestInfo(incident))[0]! as unknown as { backup: Array<{ label: string; timestamp: { stop: number } }> };
    expect(Date.parse(from) / 1000).toBe(info.backup.find((b) => b.label === first)!.timestamp.stop + 1);
    const at = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, '+00');
    expect((await run(['pitr', incident, '--to', at(Date.parse(from)), '--dry-run'])).code).toBe(0);
    expect((await run(['pitr', incident, '--to', at(Date.parse(from) - 1000), '--dry-run'])).code).toBe(4);
    // A scheduled full keeps the window the undo's preserved directory was made in (F1 and the pitr's full).
    expect((await run(['backup', incident, '--type', 'full'])).code).toBe(0);
    expect((await fulls(incident))[0]).toBe(first);
    expect(await fulls(incident)).toHaveLength(4);
    // Pruning the preserved directories releases the hold: the next full expires down to retention-full.
    expect((await run(['prune', incident, '--older-than', '0s', '--yes'])).code).toBe(0);
    expect((await run(['backup', incident, '--type', 'full'])).code).toBe(0);
    expect(await fulls(incident)).toHaveLength(2);
  });
});
