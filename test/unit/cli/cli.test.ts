// The command line, table-driven: argv (pgmam's or a legacy name's) → the module it runs and the
// options it parsed, or a usage error (exit 2) before anything runs.
import { CommanderError } from 'commander';
import { describe, expect, it } from 'vitest';
import { translateLegacy, type LegacyName } from '../../../src/cli/legacy.js';
import { COMMAND_LOADERS, commandsFor, configFlag, loadAllCommands } from '../../../src/cli/commands.js';
import { buildProgram, commandName, type Dispatch } from '../../../src/cli/program.js';
import { PgmamError } from '../../../src/errors.js';
import { fakeContext } from '../fakes.js';

type Call = { command: string; options: Record<string, unknown> };

async function parse(argv: string[], legacy?: LegacyName): Promise<Call | { exitCode: number }> {
  const calls: Call[] = [];
  const dispatch: Dispatch = {
    // As runCommand begins: the module's schema and its own option rules, before anything runs.
    command: async (_ctx, m, o) => {
      m.spec.check?.(m.spec.options.parse(o));
      calls.push({ command: m.spec.name, options: o as Record<string, unknown> });
    },
    batch: async (_ctx, b, o) => void calls.push({ command: b.name, options: { ...(o as object) } }),
  };
  try {
    // As main.ts does: only the commands the line names are loaded.
    const args = legacy ? translateLegacy(legacy, argv) : argv;
    const commands = await Promise.all(commandsFor(args).map((c) => c.load()));
    const program = buildProgram(async () => fakeContext().ctx, { version: 't', selfPath: '/opt/pgmam/bin/pgmam', write: () => undefined, writeErr: () => undefined, dispatch, commands });
    await program.parseAsync(args, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return { exitCode: e.exitCode === 0 ? 0 : 2 };
    if (e instanceof PgmamError) return { exitCode: e.exitCode };
    throw e;
  }
  return calls[0]!;
}

const flags = { dryRun: false, yes: false, json: false };

describe('argv → module and options', () => {
  it.each([
    [['initcluster', 'app1', '-p', '5433'], 'initcluster', { name: 'app1', port: 5433, ...flags, keepOnError: false }],
    [['initcluster', 'shop', '--db', 'shop', '--owner', 'shop', '--password-file', '/root/pw', '--keep-on-error'], 'initcluster', { name: 'shop', db: 'shop', owner: 'shop', passwordFile: '/root/pw', keepOnError: true }],
    [['pitr', 'app1', '--to', '2026-01-19 10:40:00+00', '--yes'], 'pitr', { ref: { version: undefined, name: 'app1' }, mode: { kind: 'time', target: expect.objectContaining({ text: '2026-01-19 10:40:00.000000+00' }) }, yes: true }],
    [['pitr', '15/app1', '--latest', '--dry-run'], 'pitr', { ref: { version: '15', name: 'app1' }, mode: { kind: 'latest' }, dryRun: true }],
    [['pitr', 'app1', '--undo'], 'pitr', { mode: { kind: 'undo' } }],
    [['branch', 'create', 'app1', '--name', 'qa', '--no-autostart', '-p', '5440'], 'branch create', { parent: 'app1', label: 'qa', autostart: false, port: 5440 }],
    [['branch', 'sync', 'app1_dev', '--json'], 'branch sync', { name: 'app1_dev', json: true }],
    [['branch', 'list'], 'branch list', flags],
    [['branch', 'drop', 'app1_dev', '--purge-backups', '-y'], 'branch drop', { name: 'app1_dev', purgeBackups: true, onlyBranches: true, yes: true }],
    [['drop', 'app1', '--with-branches'], 'drop', { name: 'app1', withBranches: true, onlyBranches: false }],
    [['resetwal', 'app1'], 'resetwal', { name: 'app1' }],
    [['backup', '--all', '--type', 'full'], 'backup', { names: [], all: true, type: 'full', force: false }],
    [['backup', 'a1', 'a2', '--force'], 'backup', { names: ['a1', 'a2'], all: false, type: 'auto', force: true }],
    [['export', '--all', '--format', 'basebackup', '--to', '/mnt/x'], 'export', { all: true, format: 'basebackup', to: '/mnt/x' }],
    [['export', '--verify', '/mnt/x/app1/20261122T064500Z-daily/'], 'export', { verify: '/mnt/x/app1/20261122T064500Z-daily' }],
    [['schedule', 'show'], 'schedule', { action: 'show', pgmam: '/opt/pgmam/bin/pgmam' }],
    [['list', '--json'], 'list', { json: true }],
    [['check', 'app1', '--prometheus', '/m/p.prom'], 'check', { names: ['app1'], prometheus: '/m/p.prom' }],
    [['adopt', '15/main', '--replace-archive-command'], 'adopt', { version: '15', name: 'main', replaceArchiveCommand: true }],
    [['prune', 'app1', '--older-than', '12h'], 'prune', { name: 'app1', olderThanSeconds: 43200 }],
    [['install-links', '--prefix', '/usr/local/bin/'], 'install-links', { prefix: '/usr/local/bin', selfPath: '/opt/pgmam/bin/pgmam' }],
    // --keep-on-error wherever the executor undoes steps of the command.
    [['pitr', 'app1', '--latest', '--keep-on-error'], 'pitr', { keepOnError: true }],
    [['branch', 'create', 'app1', '--keep-on-error'], 'branch create', { parent: 'app1', label: 'dev', keepOnError: true }],
    [['adopt', '15/main', '--keep-on-error'], 'adopt', { keepOnError: true }],
    [['export', 'a1', '--keep-on-error'], 'export', { names: ['a1'], keepOnError: true }],
    [['repo', 'add', 'offsite', '--s3-endpoint', 's3.example.net', '--s3-bucket', 'pgb', '--s3-key-file', '/root/k', '--retention-full', '4', '--full-interval', '7d'], 'repo add', { name: 'offsite', host: 's3.example.net', port: 443, bucket: 'pgb', uriStyle: 'path', region: 'us-east-1', path: '/pgbackrest', keyFile: '/root/k', retentionFull: 4, fullInterval: 604800, attachNew: true }],
    [['repo', 'add', 'o2', '--s3-endpoint', 'https://h:9000', '--s3-bucket', 'pgb', '--s3-key-file', '/root/k', '--attach-new', 'no', '--s3-uri-style', 'host'], 'repo add', { host: 'h', port: 9000, attachNew: false, uriStyle: 'host' }],
    [['repo', 'list', '--json'], 'repo list', { json: true }],
    [['repo', 'add', 'vault', '--tls-host', 'vault.example.net:9443', '--ca-file', '/r/ca.crt', '--cert-file', '/r/a.crt', '--key-file', '/r/a.key'], 'repo add', { name: 'vault', tlsHost: 'vault.example.net', tlsPort: 9443, path: '/var/lib/pgbackrest', certFile: '/r/a.crt' }],
    [['repo', 'serve', '--ca-file', '/r/ca.crt', '--cert-file', '/r/a.crt', '--key-file', '/r/a.key', '--allow', 'h1,h2', '--allow', 'h3'], 'repo serve', { stop: false, port: 8432, allow: ['h1', 'h2', 'h3'] }],
    [['repo', 'serve', '--stop', '-y'], 'repo serve', { stop: true, yes: true }],
    [['repo', 'backup-clients', '--all'], 'repo backup-clients', { stanzas: [], all: true, type: 'auto' }],
    [['tls', 'show', '--json'], 'tls show', { json: true }],
    [['tls', 'renew', '--all'], 'tls renew', { names: [], all: true }],
    [['tls', 'enable', 'app1', '--dry-run'], 'tls enable', { name: 'app1', enable: true, dryRun: true }],
    [['repo', 'attach', 'offsite', 'a1', 'a2'], 'repo attach', { repo: 'offsite', names: ['a1', 'a2'], all: false }],
    [['repo', 'detach', 'offsite', '--all'], 'repo detach', { repo: 'offsite', names: [], all: true }],
    [['repo', 'remove', 'offsite', '-y'], 'repo remove', { name: 'offsite', yes: true }],
    [['backup', 'a1', '--repo', 'offsite'], 'backup', { names: ['a1'], repo: 'offsite' }],
    [['recover', 'app1', '--from-repo', 'offsite', '--as', 'app1_copy', '--to', '2026-01-19 10:40:00+00'], 'recover', { app: 'app1', fromRepo: 'offsite', as: 'app1_copy', force: false, to: expect.objectContaining({ text: '2026-01-19 10:40:00.000000+00' }) }],
    [['recover', 'app1', '--from-repo', 'offsite', '--force', '--yes'], 'recover', { app: 'app1', fromRepo: 'offsite', force: true, yes: true }],
    [['repo', 'list', '--apps', 'offsite', '--json'], 'repo list', { apps: 'offsite', json: true }],
  ] as const)('%j', async (argv, command, options) => {
    expect(await parse([...argv])).toEqual({ command, options: expect.objectContaining(options) });
  });

  it.each([
    ['initcluster', ['-a', 'app1', '-p', '5433', '-y'], 'initcluster', { name: 'app1', port: 5433, yes: true }],
    ['pitr', ['-a', 'app1', '-t', '2026-01-19 10:40:00+00', '-y'], 'pitr', { ref: { version: undefined, name: 'app1' }, yes: true }],
    ['pgbranch', ['-c', '-a', 'app1', '-n', 'dev'], 'branch create', { parent: 'app1', label: 'dev' }],
    ['pgbranch', ['-b', 'app1_dev', 'sync', '-y'], 'branch sync', { name: 'app1_dev', yes: true }],
    ['pgbackup', ['-path', '/mnt/x'], 'backup', { all: true, exportTo: '/mnt/x' }],
  ] as const)('legacy %s %j', async (name, argv, command, options) => {
    expect(await parse([...argv], name)).toEqual({ command, options: expect.objectContaining(options) });
  });
});

describe('an unknown command', () => {
  async function errorOf(argv: string[]): Promise<string> {
    const err: string[] = [];
    const commands = await Promise.all(commandsFor(argv).map((c) => c.load()));
    const program = buildProgram(async () => fakeContext().ctx, { version: 't', selfPath: '/p', write: () => undefined, writeErr: (s) => void err.push(s), commands });
    await expect(program.parseAsync(argv, { from: 'user' })).rejects.toBeInstanceOf(CommanderError);
    return err.join('');
  }
  it('never suggests a command that changes anything (stop is not drop)', async () => {
    expect(await errorOf(['stp'])).toBe("pgmam: unknown command 'stp'; see pgmam --help\n");
    expect(await errorOf(['dorp'])).not.toMatch(/drop/);
  });
  it('suggests a near command that only reads', async () => {
    expect(await errorOf(['lst'])).toBe("pgmam: unknown command 'lst' (did you mean list? it only reads); see pgmam --help\n");
    expect(await errorOf(['branch', 'lsit'])).toMatch(/did you mean list\?/);
  });
});

describe('usage errors (exit 2) before anything runs', () => {
  it.each([
    [['initcluster', 'App1']],
    [['initcluster', 'app1', '-p', '80']],
    [['initcluster', 'app1', '--pg-version', 'fifteen']],
    [['initcluster', 'app1', '--owner', 'o']],
    [['pitr', 'app1']],
    [['pitr', 'app1', '--latest', '--undo']],
    [['pitr', 'app1', '--to', 'yesterday']],
    [['branch', 'create', 'app1', '--name', 'Dev']],
    [['backup']],
    [['recover', 'app1']],
    [['recover', 'app1', '--from-repo', 'local']],
    [['recover', 'app1', '--from-repo', 'offsite', '--latest', '--to', '2026-01-19 10:40:00+00']],
    [['recover', 'app1', '--from-repo', 'offsite', '--as', 'app1']],
    [['recover', 'app1', '--from-repo', 'offsite', '--as', 'Copy']],
    [['repo', 'list', '--apps', 'Off-site']],
    [['backup', 'a1', '--all']],
    [['backup', '--all', '--export-to', 'relative']],
    [['export', 'a1', '--verify', '/x']],
    [['schedule', 'sometimes']],
    [['check', '--prometheus', 'relative.prom']],
    [['adopt', '15/a/b']],
    [['prune', 'app1', '--older-than', 'a week']],
    [['install-links', '--prefix', 'bin']],
    [['halt', 'app1']],
    [['stop', 'App1']],
    [['list', '--nope']],
    [['resetwal', 'app1', '--keep-on-error']],
    [['backup', '--all', '--keep-on-error']],
    [['branch', 'create', 'app1', '--name', 'x'.repeat(48)]],
    [['branch', 'create', 'app1', '--at', '2026-01-19 10:40:00']],
    [['repo', 'add', 'offsite', '--s3-bucket', 'pgb', '--s3-key-file', '/root/k']],
    [['repo', 'add', 'offsite', '--s3-endpoint', 'http://h', '--s3-bucket', 'pgb', '--s3-key-file', '/root/k']],
    [['repo', 'add', 'local', '--s3-endpoint', 'h', '--s3-bucket', 'pgb', '--s3-key-file', '/root/k']],
    [['repo', 'add', 'offsite', '--s3-endpoint', 'h', '--s3-bucket', 'pgb', '--s3-key-file', 'rel/k']],
    [['repo', 'add', 'offsite', '--s3-endpoint', 'h', '--s3-bucket', 'pgb', '--s3-key-file', '/k', '--retention-full', '0']],
    [['repo', 'add', 'offsite', '--s3-endpoint', 'h', '--s3-bucket', 'pgb', '--s3-key-file', '/k', '--full-interval', 'weekly']],
    [['repo', 'attach', 'offsite']],
    [['repo', 'attach', 'local', 'a1']],
    [['repo', 'detach', 'offsite', 'a1', '--all']],
    [['backup', 'a1', '--repo', 'Off']],
    [['repo', 'serve', '--ca-file', '/r/ca.crt', '--cert-file', '/r/a.crt', '--key-file', '/r/a.key']],
    [['repo', 'serve', '--stop', '--allow', 'h1']],
    [['repo', 'serve', '--ca-file', '/r/ca.crt', '--cert-file', '/r/a.crt', '--key-file', '/r/a.key', '--allow', 'h1', '--port', '80']],
    [['repo', 'backup-clients']],
    [['tls', 'renew']],
    [['tls', 'renew', 'a1', '--all']],
    [['tls', 'enable', 'Bad-Name']],
    [['repo', 'add', 'vault', '--tls-host', 'h', '--ca-file', '/r/ca.crt', '--key-file', '/r/a.key']],
  ])('%j', async (argv) => {
    expect(await parse(argv)).toEqual({ exitCode: 2 });
  });
});

describe('help', () => {
  it.each([['initcluster'], ['pitr'], ['backup'], ['export'], ['resetwal'], ['drop'], ['schedule'], ['branch', 'create'], ['branch', 'sync'], ['branch', 'list'], ['branch', 'drop'], ['list'], ['install-links'], ['check'], ['adopt'], ['prune'], ['repo', 'add'], ['repo', 'list'], ['repo', 'attach'], ['repo', 'detach'], ['repo', 'remove'], ['repo', 'serve'], ['repo', 'backup-clients'], ['recover'], ['tls', 'show'], ['tls', 'renew'], ['tls', 'enable']])(
    '%s %s --help shows an example',
    async (...names: string[]) => {
      let text = '';
      const args = [...names, '--help'];
      const commands = await Promise.all(commandsFor(args).map((c) => c.load()));
      const program = buildProgram(async () => fakeContext().ctx, { version: 't', selfPath: '/x', write: (s) => void (text += s), writeErr: () => undefined, commands });
      await expect(program.parseAsync(args, { from: 'user' })).rejects.toMatchObject({ exitCode: 0 });
      expect(text).toMatch(new RegExp(`Example:\\n  pgmam ${names.join(' ')}`));
    },
  );
});

describe('loading only what a command line needs', () => {
  it("each loader's name is its command's spec name", async () => {
    expect((await loadAllCommands()).map(commandName)).toEqual(COMMAND_LOADERS.map((l) => l.name));
  });
  it.each([
    [['--version'], []],
    [['list', '--json'], ['list']],
    [['--config', '/x', '-q', 'branch', 'create', 'app1'], ['branch create']],
    [['pitr', 'app1', '--to', 'x'], ['pitr']],
    [['tls', '--help'], ['tls show', 'tls renew', 'tls enable']],
    [['branch', 'nosuch'], ['branch create', 'branch sync', 'branch list', 'branch drop']],
  ])('%j loads %j', (args, names) => {
    expect(commandsFor(args).map((l) => l.name)).toEqual(names);
  });
  it.each([[[]], [['--help']], [['restore', 'app1']]])('%j loads every command (help lists them)', (args) => {
    expect(commandsFor(args)).toBe(COMMAND_LOADERS);
  });
});

describe('the --config a command line names, before commander parses it', () => {
  it.each([
    [['list', '--json'], undefined],
    [['--config', '/etc/a.conf', 'list'], '/etc/a.conf'],
    [['check', '--config=/etc/b.conf'], '/etc/b.conf'],
    [['list', '--', '--config', '/x'], undefined],
  ])('%j → %s', (args, expected) => expect(configFlag(args)).toBe(expected));
});
