// Two processes race for a stale lock, round after round: exactly one of them holds it each time.
import { execa } from 'execa';
import { buildSync } from 'esbuild';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROUNDS = 40;

describe('lock takeover', () => {
  it('two processes taking over one stale lock: exactly one wins, every round', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pgmam-lock-race-'));
    const locks = join(dir, 'locks');
    const sync = join(dir, 'sync');
    const racer = join(dir, 'racer.mjs');
    buildSync({ entryPoints: [join(import.meta.dirname, 'lock-racer.ts')], bundle: true, platform: 'node', format: 'esm', outfile: racer, logLevel: 'silent', banner: { js: "import { createRequire } from 'module'; const require = createRequire(import.meta.url);" } });
    mkdirSync(locks, { recursive: true });
    mkdirSync(sync, { recursive: true });
    const racers = ['a', 'b'].map((id) => execa(process.execPath, [racer, locks, sync, id, String(ROUNDS)], { reject: false }));
    try {
      for (let r = 0; r < ROUNDS; r++) {
        // A stale lock: its holder (pid 2^22 + r, above Linux's pid_max default) is gone.
        rmSync(join(locks, 'race.lock'), { force: true });
        writeFileSync(join(locks, 'race.lock'), JSON.stringify({ pid: 4194304 + r, command: 'dead', startedAt: 'x' }));
        writeFileSync(join(sync, `go-${r}`), '');
        const reported = () => readdirSync(sync).filter((f) => new RegExp(`^(won|lost)-${r}-`).test(f));
        for (let i = 0; i < 2000 && reported().length < 2; i++) await new Promise((ok) => setTimeout(ok, 5));
        expect(reported().filter((f) => f.startsWith('won-')), `round ${r}`).toHaveLength(1);
        writeFileSync(join(sync, `end-${r}`), '');
      }
    } finally {
      for (const p of racers) p.kill();
      await Promise.all(racers);
      if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
