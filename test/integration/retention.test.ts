// One retention (rule 4): whichever command takes a full backup, the configured retention applies —
// also after the configuration changed since the app was created.
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { STANZA_DIR, TEST_ROOT, freePort, pgbackrestInfo, pgmam, removeTestCluster, sh, testConfigLines, uniqueName } from './helpers.js';

const CONFIG = `${TEST_ROOT}/retention.conf`;
const configure = (full: number) => writeFileSync(CONFIG, [...testConfigLines(), `retention-full = ${full}`].join('\n') + '\n');
const run = (args: string[]) => pgmam(args, { env: { PGMAM_CONFIG: CONFIG } });
const app = uniqueName();
const fulls = async () => (await pgbackrestInfo(app))[0]!.backup.filter((b) => b.type === 'full').length;

afterAll(async () => {
  await removeTestCluster(app);
});

describe('one retention', () => {
  it('retention-full 2 at creation, 4 later: backup, pitr and pitr --undo all keep 4 fulls', async () => {
    configure(2);
    expect((await run(['initcluster', app, '--port', String(await freePort()), '--yes'])).code).toBe(0);
    expect(readFileSync(`${STANZA_DIR}/${app}.conf`, 'utf8')).toContain('repo1-retention-full=2\nrepo1-retention-full-type=count');
    configure(4);
    for (let i = 0; i < 3; i++) expect((await run(['backup', app, '--type', 'full'])).code).toBe(0);
    expect(await fulls()).toBe(4);
    // The stanza file now says what the configuration says.
    expect(readFileSync(`${STANZA_DIR}/${app}.conf`, 'utf8')).toContain('repo1-retention-full=4\n');
    const pitr = await run(['pitr', app, '--latest', '--yes']);
    expect(pitr.code, pitr.stderr).toBe(0);
    expect(await fulls()).toBe(4);
    const undo = await run(['pitr', app, '--undo', '--yes']);
    expect(undo.code, undo.stderr).toBe(0);
    expect(await fulls()).toBe(4);
    // Even a backup by hand with pgBackRest (the stanza file is the one source it reads).
    expect((await sh('pgbackrest', [`--stanza=${app}`, '--type=full', 'backup'], { user: 'postgres' })).code).toBe(0);
    expect(await fulls()).toBe(4);
  });
});
