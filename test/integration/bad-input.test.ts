// The bad-input suite: every command, fed what a tired operator types. Each case asserts the exit
// code, a message of one `pgmam:` line per problem (hints indented below), and that the host is
// exactly as before: clusters, stanza files, repository listing, data and config directories, pgmam state.
import { execa } from 'execa';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusters, CONFIG, freePort, isOtherFilesName, listEntry, PGMAM, pgmamOk, removeTestCluster, REPO, sh, sql, STANZA_DIR, STATE, TEST_ROOT, uniqueName } from './helpers.js';

const app = uniqueName();
const branch = `${app}_dev`;
const plain = uniqueName();
let appPort = 0;
let listenPort = 0;
let server: Server;
const FULL = `${TEST_ROOT}/full`;
const NO_PGBR = `${TEST_ROOT}/no-pgbackrest-bin`;

beforeAll(async () => {
  await pgmamOk(['initcluster', app, '--yes', '-q']);
  appPort = (await listEntry(app)).port;
  await sql(appPort, 'create table t as select 1 a');
  await pgmamOk(['branch', 'create', app, '--name', 'dev', '--yes', '-q']);
  expect((await sh('pg_createcluster', ['15', plain, '--port', String(await freePort())])).code).toBe(0);
  listenPort = await freePort();
  server = createServer().listen(listenPort, '127.0.0.1');
  // A full filesystem: an 8 MB tmpfs as the repository of a second configuration.
  mkdirSync(FULL, { recursive: true });
  expect((await sh('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'pgmam-test-full', FULL])).code).toBe(0);
  // A PATH on which everything but pgbackrest is found.
  mkdirSync(NO_PGBR, { recursive: true });
  for (const f of readdirSync('/usr/bin')) if (f !== 'pgbackrest') symlinkSync(`/usr/bin/${f}`, `${NO_PGBR}/${f}`);
}, 300_000);

afterAll(async () => {
  server?.close();
  await sh('umount', [FULL]);
  rmSync(NO_PGBR, { recursive: true, force: true });
  for (const n of [branch, app, plain]) await removeTestCluster(n);
});

const ls = (dir: string) => (existsSync(dir) ? readdirSync(dir).sort() : []);
const tree = (dir: string, depth: number): string[] =>
  depth === 0 || !existsSync(dir) ? [] : ls(dir).flatMap((f) => [`${dir}/${f}`, ...(existsSync(`${dir}/${f}`) && !f.includes('.') ? tree(`${dir}/${f}`, depth - 1) : [])]);

/** Other test files run beside this one: their clusters come and go and are left out. */
const mine = (n: string) => !isOtherFilesName(n, [app, plain]);

/** What a refused command must leave exactly as it was. */
async function hostState() {
  return {
    clusters: (await clusters()).filter((c) => mine(c.cluster)).map((c) => `${c.version}/${c.cluster}:${c.port}:${c.running}`).sort(),
    stanzaFiles: ls(STANZA_DIR).filter(mine),
    // Stanzas, backup labels and archive ids (not WAL files: archive_timeout may add one any time).
    repo: [...tree(`${REPO}/backup`, 2), ...tree(`${REPO}/archive`, 2)],
    dataDirs: ls('/var/lib/postgresql/15').filter(mine),
    confDirs: ls('/etc/postgresql/15').filter(mine),
    state: [...tree(`${STATE}/clusters`, 1), ...tree(`${STATE}/journal`, 1), ...tree(`${STATE}/locks`, 1)],
    records: ls(`${STATE}/clusters`).map((f) => readFileSync(`${STATE}/clusters/${f}`, 'utf8')),
    // Contents, not only names: what a refused command could have rewritten.
    files: Object.fromEntries(
      [
        ...ls(STANZA_DIR).filter(mine).map((f) => `${STANZA_DIR}/${f}`),
        ...ls('/etc/postgresql/15').filter(mine).flatMap((c) => [
          ...['start.conf', 'pg_hba.conf', 'postgresql.conf'].map((f) => `/etc/postgresql/15/${c}/${f}`),
          ...ls(`/etc/postgresql/15/${c}/conf.d`).map((f) => `/etc/postgresql/15/${c}/conf.d/${f}`),
        ]),
        ...ls('/var/lib/postgresql/15').filter(mine).map((d) => `/var/lib/postgresql/15/${d}/postgresql.auto.conf`),
        '/etc/cron.d/pgmam',
        `${STATE}/handover`,
      ].map((f) => [f, existsSync(f) && !statSync(f).isDirectory() ? readFileSync(f, 'utf8') : existsSync(f) ? ls(f).join(',') : null]),
    ),
    exports: [...tree(FULL, 3), ...ls("/var/backups/pgmam").filter(mine)],
    rows: await sql(appPort, 'select count(*) from t'),
  };
}

interface Case {
  what: string;
  args: () => string[];
  code: 2 | 3 | 4;
  /** `pgmam:` lines expected (one per failed guard); default 1. */
  lines?: number;
  user?: string;
  env?: () => Record<string, string>;
  /** A configuration file's text, used instead of the tests' one. */
  config?: string;
}

const future = () => new Date(Date.now() + 86_400_000).toISOString().replace('T', ' ').replace(/\..*/, '+00');
const goodConfig = () => readFileSync(CONFIG, 'utf8');

const CONFIG_BREAKS: Array<[string, string]> = [
  ['pg-version', 'fifteen'],
  ['port-min', '80'],
  ['port-max', '70000'],
  ['repo-path', 'relative/repo'],
  ['retention-full', '0'],
  ['compress-type', 'rar'],
  ['process-max', '999'],
  ['archive-timeout', '-1'],
  ['stanza-dir', 'conf.d'],
  ['state-dir', '~/pgmam'],
  ['log-file', 'pgmam.log'],
  ['min-free-mb', 'lots'],
  ['archive-wait-timeout', '0'],
  ['recovery-timeout', '5'],
  ['full-interval', 'weekly'],
  ['diff-interval', '1y'],
  ['retention-full-type', 'forever'],
  ['export-dir', 'exports'],
  ['export-keep-daily', '7 days'],
  ['export-keep-weekly', '-1w'],
  ['export-keep-monthly', 'x'],
  ['backup-max-age', '8 d h'],
  ['archive-ready-max-age', 'soon'],
  ['backup-parallel', '0'],
  ['lock-wait', 'forever'],
  ['schedule', '@hourly; rm -rf /'],
];

const CASES: Case[] = [
  // names
  { what: 'a name with /', args: () => ['initcluster', 'a/b'], code: 2 },
  { what: 'a name ..', args: () => ['initcluster', '..'], code: 2 },
  { what: 'a name with ;', args: () => ['initcluster', 'a;rm'], code: 2 },
  { what: 'a name with a space', args: () => ['initcluster', 'a b'], code: 2 },
  { what: 'a unicode name', args: () => ['initcluster', 'ünïcode'], code: 2 },
  { what: 'an uppercase name', args: () => ['initcluster', 'App1'], code: 2 },
  { what: 'a name of 49 characters', args: () => ['initcluster', `a${'b'.repeat(48)}`], code: 2 },
  { what: 'an empty name', args: () => ['initcluster', ''], code: 2 },
  { what: 'a branch label with uppercase', args: () => ['branch', 'create', app, '--name', 'Dev'], code: 2 },
  { what: 'a branch label with /', args: () => ['branch', 'create', app, '--name', '../x'], code: 2 },
  { what: 'a branch name too long in all', args: () => ['branch', 'create', app, '--name', 'x'.repeat(45)], code: 2 },
  { what: 'pitr of a path', args: () => ['pitr', '../etc', '--latest'], code: 2 },
  { what: 'drop of a name with ;', args: () => ['drop', 'a;b', '--yes'], code: 2 },
  // A bare name is the one cluster of that name on the host (never 15/main here: a name no cluster has).
  { what: 'adopt of a bare name no cluster has', args: () => ['adopt', 't_nosuch_bare', '--yes'], code: 2 },
  { what: 'prune with a bad age', args: () => ['prune', app, '--older-than', 'a week'], code: 2 },
  // ports
  { what: 'port 0', args: () => ['initcluster', 't_newone', '-p', '0'], code: 2 },
  { what: 'port 70000', args: () => ['initcluster', 't_newone', '-p', '70000'], code: 2 },
  { what: 'port 1023', args: () => ['initcluster', 't_newone', '-p', '1023'], code: 2 },
  { what: 'port abc', args: () => ['initcluster', 't_newone', '-p', 'abc'], code: 2 },
  { what: "a port another cluster uses", args: () => ['initcluster', 't_newone', '-p', String(appPort), '--yes'], code: 4 },
  { what: 'a port something listens on', args: () => ['initcluster', 't_newone', '-p', String(listenPort), '--yes'], code: 4 },
  { what: 'a branch on a taken port', args: () => ['branch', 'create', app, '--name', 'other', '-p', String(appPort), '--yes'], code: 4 },
  // timestamps
  { what: 'a timestamp in words', args: () => ['pitr', app, '--to', 'yesterday', '--yes'], code: 2 },
  { what: 'a timestamp without offset', args: () => ['pitr', app, '--to', '2026-01-19 10:40:00', '--yes'], code: 2 },
  { what: 'an impossible date', args: () => ['pitr', app, '--to', '2026-13-45 10:40:00+00', '--yes'], code: 2 },
  { what: 'a timestamp in the future', args: () => ['pitr', app, '--to', future(), '--yes'], code: 4 },
  { what: 'a timestamp before the window', args: () => ['pitr', app, '--to', '2000-01-01 00:00:00+00', '--yes'], code: 4 },
  { what: 'a branch --at that is no time', args: () => ['branch', 'create', app, '--name', 'old', '--at', 'noon', '--yes'], code: 2 },
  { what: 'a branch --at in the future', args: () => ['branch', 'create', app, '--name', 'old', '--at', future(), '--yes'], code: 4 },
  { what: 'pitr without a target', args: () => ['pitr', app, '--yes'], code: 2 },
  { what: 'pitr with two targets', args: () => ['pitr', app, '--to', '2026-01-19 10:40:00+00', '--latest', '--yes'], code: 2 },
  // unknown apps, wrong kinds
  { what: 'pitr of an unknown app', args: () => ['pitr', 't_nosuch', '--latest', '--yes'], code: 4 },
  { what: 'pitr of an unmanaged cluster', args: () => ['pitr', plain, '--latest', '--yes'], code: 4 },
  { what: 'pitr --undo with no earlier pitr', args: () => ['pitr', app, '--undo', '--yes'], code: 4 },
  { what: 'branch sync of an app', args: () => ['branch', 'sync', app, '--yes'], code: 4 },
  { what: 'branch sync of an unmanaged cluster', args: () => ['branch', 'sync', plain, '--yes'], code: 4 },
  { what: 'branch drop of an app (two guards fail)', args: () => ['branch', 'drop', app, '--yes'], code: 4, lines: 2 },
  { what: 'branch create of an unknown parent', args: () => ['branch', 'create', 't_nosuch', '--yes'], code: 4 },
  { what: 'a branch that exists', args: () => ['branch', 'create', app, '--name', 'dev', '--yes'], code: 4 },
  { what: 'initcluster of a taken name', args: () => ['initcluster', app, '--yes'], code: 4 },
  { what: 'drop of an unknown app', args: () => ['drop', 't_nosuch', '--yes'], code: 4 },
  { what: 'drop of an app with branches', args: () => ['drop', app, '--yes'], code: 4 },
  { what: 'resetwal of a running cluster', args: () => ['resetwal', app, '--yes'], code: 4 },
  { what: 'resetwal of an unmanaged cluster', args: () => ['resetwal', plain, '--yes'], code: 4 },
  { what: 'backup of an unknown app', args: () => ['backup', 't_nosuch'], code: 4 },
  { what: 'export of an unknown app', args: () => ['export', 't_nosuch'], code: 4 },
  { what: 'adopt of an unknown cluster', args: () => ['adopt', '15/t_nosuch', '--yes'], code: 4 },
  { what: 'adopt of a managed cluster', args: () => ['adopt', `15/${app}`, '--yes'], code: 4 },
  { what: 'prune of an unknown app', args: () => ['prune', 't_nosuch', '--yes'], code: 4 },
  { what: 'check of an unknown app', args: () => ['check', 't_nosuch'], code: 4 },
  { what: 'an unknown flag', args: () => ['initcluster', 't_newone', '--colour'], code: 2 },
  { what: 'an unknown command', args: () => ['restore', app], code: 2 },
  // destructive without a terminal and without --yes
  { what: 'pitr without --yes', args: () => ['pitr', app, '--latest'], code: 2 },
  { what: 'drop without --yes', args: () => ['drop', branch], code: 2 },
  // missing tools, full disk
  { what: 'pgbackrest missing', args: () => ['initcluster', 't_newone', '--yes'], code: 4, env: () => ({ PATH: `${NO_PGBR}:/usr/sbin` }) },
  { what: 'a full repository filesystem', args: () => ['initcluster', 't_newone', '--yes'], code: 4, config: 'full' },
  { what: 'a full export filesystem', args: () => ['export', app, '--to', `${FULL}/exports`], code: 4 },
  // not root
  ...(
    [
      ['initcluster', 't_newone', '--yes'],
      ['pitr', app, '--latest', '--yes'],
      ['branch', 'create', app, '--name', 'x', '--yes'],
      ['branch', 'sync', branch, '--yes'],
      ['branch', 'drop', branch, '--yes'],
      ['drop', app, '--yes'],
      ['resetwal', app, '--yes'],
      ['backup', '--all'],
      ['export', app],
      ['adopt', `15/${plain}`, '--yes'],
      ['prune', app, '--yes'],
      ['schedule', 'install'],
      ['check'],
    ] as string[][]
  ).map((args): Case => ({ what: `not root: ${args.slice(0, 2).join(' ')}`, args: () => args, code: 4, user: 'nobody', lines: -1 })),
  // a configuration broken in each key, and in its shape
  ...CONFIG_BREAKS.map(([key, value]): Case => ({ what: `config ${key} = ${value}`, args: () => ['initcluster', 't_newone', '--yes'], code: 3, config: `${key} = ${value}` })),
  { what: 'config with an unknown key', args: () => ['initcluster', 't_newone', '--yes'], code: 3, config: 'repo_path = /x' },
  { what: 'config with port-min above port-max', args: () => ['initcluster', 't_newone', '--yes'], code: 3, config: 'port-min = 6000\nport-max = 5000' },
];

// At least 40 cases (a plain check, not a test case of its own).
if (CASES.length < 40) throw new Error(`bad-input has only ${CASES.length} cases`);

describe('bad input', () => {
  it.each(CASES.map((c) => [c.what, c] as const))('%s: refused with its exit code, one line per problem, nothing changed', async (_what, c) => {
    const env: Record<string, string> = { ...(c.env?.() ?? {}) };
    if (c.config) {
      const file = `${TEST_ROOT}/bad-${Math.random().toString(36).slice(2)}.conf`;
      const text = c.config === 'full' ? `${goodConfig()}\nrepo-path = ${FULL}/repo\n`.replace(/^repo-path = .*\n/m, '') : `${goodConfig().replace(new RegExp(`^${c.config.split(' ')[0]} = .*\\n`, 'm'), '')}${c.config}\n`;
      writeFileSync(file, text, { mode: 0o644 });
      env['PGMAM_CONFIG'] = file;
    }
    const before = await hostState();
    const argv = c.user ? ['runuser', '-u', c.user, '--', PGMAM, ...c.args(), '-q'] : [PGMAM, ...c.args(), '-q'];
    const r = await execa(argv[0]!, argv.slice(1), { reject: false, env: { PGMAM_CONFIG: CONFIG, ...env }, stdin: 'ignore', cwd: '/tmp' });
    expect(r.exitCode, `${c.what}: ${r.stderr}`).toBe(c.code);
    const lines = String(r.stderr).split('\n').filter(Boolean);
    const heads = lines.filter((l) => l.startsWith('pgmam:'));
    expect(heads.length, r.stderr).toBeGreaterThanOrEqual(1);
    if (c.lines !== -1) expect(heads.length, r.stderr).toBe(c.lines ?? 1);
    // Everything else is an indented hint or detail: no stack trace, no tool noise.
    expect(lines.filter((l) => !l.startsWith('pgmam:') && !l.startsWith('  ')), r.stderr).toEqual([]);
    expect(await hostState()).toEqual(before);
    if (c.config === 'full') expect(ls(FULL)).toEqual([]);
  });
});
