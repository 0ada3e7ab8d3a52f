// The import rule that keeps the layers apart (STYLE.md): only cli/ and main.ts import commands/;
// a command never imports another command; commands never touch execa, node:fs, child processes or process.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = join(import.meta.dirname, '../../src');

/** Every module a file imports (static, re-exports and dynamic), as paths relative to src/ or bare names. */
export function importsOf(file: string, text: string): string[] {
  const specs = [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm)].map((m) => m[1]!);
  return specs.map((s) => (s.startsWith('.') ? normalize(join(dirname(file), s)).replace(/\.js$/, '.ts') : s));
}

/** The command a file under commands/ belongs to: commands/pitr/pitr.ts → pitr, commands/branch/sync.ts → branch. */
const commandOf = (file: string) => (file.startsWith('commands/') ? file.split('/')[1]!.replace(/\.ts$/, '') : undefined);
const FORBIDDEN_IN_COMMANDS = ['execa', 'node:fs', 'fs', 'node:fs/promises', 'node:child_process', 'child_process', 'node:process', 'process'];

/** Wrong-way imports in `files` (path relative to src/ → text), one line each. */
export function importViolations(files: Record<string, string>): string[] {
  const out: string[] = [];
  for (const [file, text] of Object.entries(files)) {
    const own = commandOf(file);
    for (const dep of importsOf(file, text)) {
      const target = commandOf(dep);
      if (target && !file.startsWith('cli/') && file !== 'main.ts' && !own) out.push(`${file} imports ${dep}: only cli/ and main.ts import commands/`);
      if (target && own && target !== own) out.push(`${file} imports ${dep}: a command never imports another command`);
      if (own && FORBIDDEN_IN_COMMANDS.includes(dep)) out.push(`${file} imports ${dep}: commands reach the host only through the context`);
    }
    if (own && /\bprocess\.(env|argv|exit|cwd|kill|on)\b/.test(text)) out.push(`${file} uses process: only main.ts touches process`);
  }
  return out;
}

function sources(dir = SRC): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) Object.assign(out, sources(p));
    else if (e.name.endsWith('.ts')) out[relative(SRC, p)] = readFileSync(p, 'utf8');
  }
  return out;
}

describe('import rule', () => {
  it('src/ has no wrong-way import', () => {
    expect(importViolations(sources())).toEqual([]);
  });

  it('src/commands/ holds one folder per command and no loose files', () => {
    expect(readdirSync(join(SRC, 'commands'), { withFileTypes: true }).filter((e) => !e.isDirectory()).map((e) => e.name)).toEqual([]);
  });

  it('finds each kind of wrong-way import', () => {
    expect(
      importViolations({
        'restore/sequence.ts': "import { pitrCommand } from '../commands/pitr.js';",
        'commands/branch/sync.ts': "import { x } from './parent.js';\nimport { planPitr } from '../pitr.js';",
        'commands/drop.ts': "import { execa } from 'execa';\nconst v = await import('../commands/pitr.js');",
        'commands/list.ts': 'const home = process.env.HOME;',
        'cli/program.ts': "import { pitrCommand } from '../commands/pitr.js';",
      }),
    ).toEqual([
      'restore/sequence.ts imports commands/pitr.ts: only cli/ and main.ts import commands/',
      'commands/branch/sync.ts imports commands/pitr.ts: a command never imports another command',
      'commands/drop.ts imports execa: commands reach the host only through the context',
      'commands/drop.ts imports commands/pitr.ts: a command never imports another command',
      'commands/list.ts uses process: only main.ts touches process',
    ]);
  });
});
