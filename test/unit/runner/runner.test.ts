// The execa runner against tiny real scripts (no mocked child_process).
import pino from 'pino';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ExecaRunner } from '../../../src/runner/execa-runner.js';
import { CommandFailedError, effectiveArgv, renderArgv } from '../../../src/runner/types.js';
import { ReadOnlyRunner, RecordingRunner } from '../../../src/runner/wrappers.js';

const log = pino({ level: 'silent' });
const runner = new ExecaRunner(log, 1000, process.env);

describe('ExecaRunner', () => {
  it('runs argv without a shell', async () => {
    const r = await runner.run({ argv: ['sh', '-c', 'echo "$1"', 'sh', '$(touch /tmp/never); a;b'], effect: 'read' });
    expect(r.stdout).toBe('$(touch /tmp/never); a;b');
    expect(r.exitCode).toBe(0);
    expect(r.durationMs).toBeGreaterThanOrEqual(0);
  });
  it('retry: runs again while the command exits with the given code (a lock held briefly), then reports as usual', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgmam-retry-'));
    // Exits 50 twice (the lock is held), then 0.
    const script = `n=$(cat ${dir}/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > ${dir}/n; [ $n -ge 3 ] || exit 50`;
    const r = await runner.run({ argv: ['sh', '-c', script], effect: 'write', retry: { exitCode: 50, attempts: 5, delayMs: 10 } });
    expect(r.exitCode).toBe(0);
    expect(readFileSync(`${dir}/n`, 'utf8').trim()).toBe('3');
    // Another failure is not retried; one that lasts past the attempts fails with its own code.
    await expect(runner.run({ argv: ['sh', '-c', 'exit 3'], effect: 'write', retry: { exitCode: 50, attempts: 5, delayMs: 10 } })).rejects.toThrow(/exit code 3/);
    await expect(runner.run({ argv: ['sh', '-c', 'exit 50'], effect: 'write', retry: { exitCode: 50, attempts: 3, delayMs: 10 } })).rejects.toThrow(/exit code 50/);
    rmSync(dir, { recursive: true, force: true });
  });
  it('hold: a session kept between scripts, each answered up to its marker; a failed statement rejects; close waits for the end', async () => {
    // A stand-in for psql reading stdin: prints each statement (without its semicolon), runs \\echo, exits 3 on "fail;".
    const fake = "let buf = ''; process.stdin.on('data', (d) => { buf += d; let i; while ((i = buf.indexOf('\\n')) >= 0) { const l = buf.slice(0, i); buf = buf.slice(i + 1); if (l.startsWith('\\\\echo ')) console.log(l.slice(6)); else if (l === 'fail;') { console.error('ERROR: boom'); process.exit(3); } else console.log(l.replace(/;$/, '')); } });";
    const s = await runner.hold({ argv: ['node', '-e', fake], effect: 'write' });
    expect(await s.query('select 1')).toBe('select 1');
    expect(await s.query('select 2;\nselect 3;')).toBe('select 2\nselect 3');
    const ended = await s.close();
    expect(ended.exitCode).toBe(0);
    const f = await runner.hold({ argv: ['node', '-e', fake], effect: 'write' });
    const err = await f.query('fail').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandFailedError);
    expect((err as CommandFailedError).result).toMatchObject({ exitCode: 3, stderr: 'ERROR: boom\n' });
  });
  it('hold under the read-only runner: a writing session is refused before it starts', async () => {
    await expect(new ReadOnlyRunner(runner).hold({ argv: ['node', '-e', ''], effect: 'write' })).rejects.toThrow(/a write was attempted/);
  });
  it('a failure carries argv, exit code and the stderr tail', async () => {
    const err = await runner
      .run({ argv: ['sh', '-c', 'for i in $(seq 1 30); do echo line$i >&2; done; exit 3'], effect: 'read' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandFailedError);
    const f = err as CommandFailedError;
    expect(f.result.exitCode).toBe(3);
    expect(f.result.argv[0]).toBe('sh');
    expect(f.message).toContain('exit code 3');
    expect(f.message).toContain('line30');
    expect(f.message).not.toContain('line1\n');
  });
  it('probes do not throw', async () => {
    expect((await runner.run({ argv: ['false'], effect: 'read' }, { check: false })).exitCode).toBe(1);
  });
  it('sends input on stdin, not argv', async () => {
    expect((await runner.run({ argv: ['cat'], effect: 'read', input: 'secret' })).stdout).toBe('secret');
  });
  it('a missing program is a failure, not a crash', async () => {
    await expect(runner.run({ argv: ['/nonexistent/tool'], effect: 'read' })).rejects.toBeInstanceOf(CommandFailedError);
  });
});

describe('runner wrappers', () => {
  it('postgres commands go through runuser only when root', () => {
    const cmd = { argv: ['pgbackrest', 'info'], asUser: 'postgres' as const, effect: 'read' as const };
    expect(effectiveArgv(cmd, 0)).toEqual(['runuser', '-u', 'postgres', '--', 'pgbackrest', 'info']);
    expect(effectiveArgv(cmd, 105)).toEqual(['pgbackrest', 'info']);
  });
  it('renders a copy-pasteable command line', () => {
    expect(renderArgv(['pitr', '--to', "2026-01-19 10:40:00+00", "it's"])).toBe(`pitr --to '2026-01-19 10:40:00+00' 'it'\\''s'`);
  });
  it('read-only runner refuses writes', async () => {
    const ro = new ReadOnlyRunner(new RecordingRunner().register(/.*/));
    await expect(ro.run({ argv: ['pg_createcluster'], effect: 'write' })).rejects.toThrow(/a write was attempted/);
  });
  it('recording runner fails on unexpected and unused commands', async () => {
    const rec = new RecordingRunner().register('a b').register('c');
    await rec.run({ argv: ['a', 'b'], effect: 'read' });
    await expect(rec.run({ argv: ['x'], effect: 'read' })).rejects.toThrow(/unexpected/);
    expect(() => rec.verify()).toThrow(/never used/);
  });
});
