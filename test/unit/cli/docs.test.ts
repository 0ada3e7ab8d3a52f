// The package's generated files: the commented default configuration, man pages and bash completion.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { bashCompletion, docsProgram, leaves, manPages } from '../../../src/cli/docs.js';
import { configKeys, renderDefaultConfig } from '../../../src/config/help.js';
import { configSource, parseConfig } from '../../../src/config/load.js';
import { defaultConfig } from '../../../src/config/schema.js';

const source = configSource('/etc/pgmam/pgmam.conf', undefined);

describe('the default configuration file', () => {
  const text = renderDefaultConfig();
  it('as shipped (all commented) gives the defaults', () => {
    expect(parseConfig(source, text)).toEqual(defaultConfig);
  });
  it('shows every key once, at its default: uncommented, it still gives the defaults', () => {
    const keyLines = text.split('\n').filter((l) => /^#[a-z-]+ = /.test(l));
    expect(keyLines.map((l) => l.slice(1).split(' = ')[0])).toEqual(configKeys());
    expect(parseConfig(source, keyLines.map((l) => l.slice(1)).join('\n'))).toEqual(defaultConfig);
  });
});

describe('man pages', () => {
  let pages: Awaited<ReturnType<typeof manPages>>;
  let program: Awaited<ReturnType<typeof docsProgram>>['program'];
  beforeAll(async () => {
    pages = await manPages('1.2.3', '2026-12-02');
    program = (await docsProgram('1.2.3')).program;
  });
  it('pgmam(8), one per command, one per legacy name', () => {
    const names = pages.map((p) => p.name);
    expect(names).toContain('pgmam');
    for (const { path } of leaves(program)) expect(names).toContain(`pgmam-${path.replace(/ /g, '-')}`);
    expect(pages.find((p) => p.name === 'initcluster')!.text).toBe('.so man8/pgmam-initcluster.8\n');
    expect(pages.find((p) => p.name === 'pgbranch')!.text).toBe('.so man8/pgmam-branch-create.8\n');
  });
  it("each command's page lists each of its flags", () => {
    const page = pages.find((p) => p.name === 'pgmam-branch-create')!.text;
    const cmd = leaves(program).find((l) => l.path === 'branch create')!.cmd;
    for (const o of cmd.options) expect(page).toContain(`.B ${o.flags.replace(/-/g, '\\-')}`);
    expect(page).toMatch(/^\.TH PGMAM\\-BRANCH\\-CREATE 8 "2026-12-02" "pgmam 1\.2\.3"/);
  });
  it('man renders every page without a warning', { timeout: 60_000 }, () => {
    const dir = mkdtempSync('/tmp/pgmam-man-');
    for (const p of pages.filter((x) => !x.text.startsWith('.so'))) {
      writeFileSync(`${dir}/${p.name}.8`, p.text);
      const out = execFileSync('sh', ['-c', `LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l ${dir}/${p.name}.8 2>&1 >/dev/null`], { encoding: 'utf8' });
      expect(out, p.name).toBe('');
    }
    rmSync(dir, { recursive: true });
  });
});

describe('bash completion', () => {
  let text: string;
  beforeAll(async () => {
    text = await bashCompletion('1.2.3');
  });
  const complete = (words: string[]) =>
    execFileSync('bash', ['-c', `${text}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _pgmam; echo "\${COMPREPLY[*]}"`], { encoding: 'utf8' }).trim();
  it('pgmam br → branch; branch c → create; a flag; a flag choice', () => {
    expect(complete(['pgmam', 'br'])).toBe('branch');
    expect(complete(['pgmam', 'branch', 'c'])).toBe('create');
    expect(complete(['pgmam', 'branch', 'create', '--at'])).toBe('--at');
    expect(complete(['pgmam', 'backup', '--type', ''])).toBe('full diff incr auto');
    expect(complete(['pgmam', '-y', 'repl'])).toBe('replica');
  });
});
