import { describe, expect, it } from 'vitest';
import { translateLegacy } from '../../../src/cli/legacy.js';

describe('legacy argv → pgmam argv', () => {
  it.each([
    ['initcluster', ['-a', 'app1', '-p', '5432'], ['initcluster', 'app1', '--port', '5432']],
    ['initcluster', ['-a', 'app1', '--yes', '--dry-run'], ['initcluster', 'app1', '--yes', '--dry-run']],
    ['pitr', ['-a', 'app1', '-t', '2026-01-19 10:40:00+00'], ['pitr', 'app1', '--to', '2026-01-19 10:40:00+00']],
    ['pitr', ['-a', 'app1', '-t', '2026-01-19 10:40:00+00', '-y'], ['pitr', 'app1', '--to', '2026-01-19 10:40:00+00', '-y']],
    ['pgbranch', ['-c'], ['branch', 'create']],
    ['pgbranch', ['-c', '-a', 'app1', '-n', 'dev'], ['branch', 'create', 'app1', '--name', 'dev']],
    ['pgbranch', ['-b', 'app1_dev', 'sync'], ['branch', 'sync', 'app1_dev']],
    ['pgbackup', [], ['backup', '--all']],
    ['pgbackup', ['-path', '/mnt/x'], ['backup', '--all', '--export-to', '/mnt/x']],
    ['pgbackup', ['--path', '/mnt/x', '-q'], ['backup', '--all', '--export-to', '/mnt/x', '-q']],
  ] as const)('%s %j', (name, argv, expected) => {
    expect(translateLegacy(name, argv)).toEqual(expected);
  });
  it('help goes to the matching subcommand', () => {
    expect(translateLegacy('pgbranch', ['--help'])).toEqual(['branch', '--help']);
  });
  it('a flag without its value is a usage error', () => {
    expect(() => translateLegacy('initcluster', ['-a'])).toThrow(expect.objectContaining({ exitCode: 2 }));
    expect(() => translateLegacy('pgbranch', ['-b', 'x'])).toThrow(expect.objectContaining({ exitCode: 2 }));
  });
});
