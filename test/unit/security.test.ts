// No shell anywhere, and secrets never in logs or error messages.
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { CommandFailedError } from '../../src/runner/types.js';

const SRC = resolve(import.meta.dirname, '../../src');
const files = (dir: string): string[] => readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? files(join(dir, f)) : f.endsWith('.ts') ? [join(dir, f)] : []));

describe('no shell', () => {
  it('no source file asks for a shell or runs a command string', () => {
    const offenders: string[] = [];
    for (const f of files(SRC)) {
      // The early reads of list and check spawn with node's own module (argv only, checked below).
      const text = readFileSync(f, 'utf8').replace(f.endsWith('runner/early-read.ts') ? /import \{ spawn \} from 'node:child_process';/ : /$^/, '');
      for (const [what, re] of [
        ['shell option', /shell:\s*(true|['"`])/],
        ['execaCommand', /execaCommand/],
        ['execa template string', /\$`/],
        ['child_process', /child_process/],
        ['execSync/spawnSync', /\b(execSync|spawnSync|execFileSync)\b/],
        ['sh -c', /['"](ba)?sh['"],\s*['"]-c['"]/],
      ] as const)
        if (re.test(text)) offenders.push(`${f}: ${what}`);
    }
    expect(offenders).toEqual([]);
  });

  it('only the runner starts processes', () => {
    const starters = files(SRC).filter((f) => /from 'execa'|import\('execa'\)|from 'node:child_process'/.test(readFileSync(f, 'utf8')));
    expect(starters.map((f) => f.slice(SRC.length + 1)).sort()).toEqual(['runner/early-read.ts', 'runner/execa-runner.ts']);
  });
});

describe('secrets', () => {
  it('the log redacts passwords, stdin scripts and SCRAM verifiers, on stderr and in the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgmam-log-'));
    const file = join(dir, 'pgmam.log');
    let err = '';
    const { log } = createLogger({ file, stderrLevel: 'debug', writeErr: (s) => void (err += s), command: 'test' });
    log.info({ password: 'hunter2', cmd: { input: "CREATE ROLE x PASSWORD 'SCRAM-SHA-256$4096:abc$def:ghi'" }, env: { PGPASSWORD: 'hunter3' }, conf: { 'repo1-cipher-pass': 'hunter4' } }, 'connect with password=hunter5 now');
    log.warn("role made with SCRAM-SHA-256$4096:salt$stored:server and PGPASSWORD='hunter6'");
    const written = readFileSync(file, 'utf8');
    for (const out of [written, err]) for (const secret of ['hunter2', 'hunter3', 'hunter4', 'hunter5', 'hunter6', '4096:abc', '4096:salt']) expect(out).not.toContain(secret);
    expect(written).toContain('[redacted]');
    expect(err).toContain('connect with password=[redacted] now');
  });

  it('a failed command reports its stderr tail without a verifier in it', () => {
    const e = new CommandFailedError({ argv: ['psql'], exitCode: 3, stdout: '', stderr: "ERROR: at or near \"PASSWORD 'SCRAM-SHA-256$4096:s$k:v'\"", durationMs: 1 });
    expect(e.message).not.toContain('4096:s');
    expect(e.message).toContain('SCRAM-SHA-256$[redacted]');
  });
});
