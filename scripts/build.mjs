// Builds two forms of pgmam from src/main.ts:
// - dist/pgmam.mjs, one ESM bundle that bin/pgmam loads in a clone (commander needs `require`: see
//   research/build-notes.md);
// - dist/pgmam, a standalone executable (Node's single executable application): a CommonJS bundle
//   with its V8 code cache, injected into a stripped copy of the node binary that runs this script.
// `--no-standalone` skips the second (a quick rebuild while developing).
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
// What pgmam never uses stays out of the bundle (a smaller bundle starts faster: bench/startup.mjs):
// @inquirer/prompts' editor prompt (its character set tables are half a megabyte), zod's
// translated messages other than English, and zod's JSON Schema importer.
const leanBundle = {
  name: 'lean-bundle',
  setup(b) {
    b.onResolve({ filter: /^@inquirer\/editor$/ }, () => ({ path: 'inquirer-editor', namespace: 'lean' }));
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (a) => (/zod[\\/]v4[\\/](classic|core)$/.test(a.resolveDir) ? { path: 'zod-locales', namespace: 'lean' } : undefined));
    b.onLoad({ filter: /^inquirer-editor$/, namespace: 'lean' }, () => ({ contents: "export default function editor() { throw new Error('pgmam has no editor prompt'); }", loader: 'js' }));
    const en = createRequire(import.meta.url).resolve('zod/v4/locales/en.js');
    b.onLoad({ filter: /^zod-locales$/, namespace: 'lean' }, () => ({ contents: "export { default as en } from './en.js';", resolveDir: dirname(en), loader: 'js' }));
    // zod's JSON Schema importer: built at every start (about 1.5 ms of list's), never used by pgmam.
    b.onResolve({ filter: /^\.\/from-json-schema\.js$/ }, (a) => (/zod[\\/]v4[\\/]classic$/.test(a.resolveDir) ? { path: 'zod-from-json-schema', namespace: 'lean' } : undefined));
    b.onLoad({ filter: /^zod-from-json-schema$/, namespace: 'lean' }, () => ({ contents: "export function fromJSONSchema() { throw new Error('pgmam has no JSON Schema import'); }", loader: 'js' }));
  },
};

const common = {
  entryPoints: ['src/main.ts'],
  plugins: [leanBundle],
  bundle: true,
  platform: 'node',
  target: 'node20',
  legalComments: 'none',
  define: { PGMAM_VERSION: JSON.stringify(version) },
  logLevel: 'warning',
};

await build({
  ...common,
  outfile: 'dist/pgmam.mjs',
  format: 'esm',
  sourcemap: 'linked',
  banner: { js: "import { createRequire as __pgmamCreateRequire } from 'node:module'; const require = __pgmamCreateRequire(import.meta.url);" },
});

if (!process.argv.includes('--no-standalone')) await standalone();

async function standalone() {
  const work = 'dist/sea';
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  // A single executable's entry is CommonJS and may require only built-in modules: everything is
  // bundled; import.meta.url (main.ts's own location) becomes the executable's path.
  await build({
    ...common,
    define: { ...common.define, 'import.meta.url': '__pgmamSelfUrl' },
    outfile: `${work}/pgmam.cjs`,
    format: 'cjs',
    minifyWhitespace: true,
    minifySyntax: true,
    banner: { js: "const __pgmamSelfUrl = require('node:url').pathToFileURL(__filename).href;" },
  });
  writeFileSync(`${work}/sea-config.json`, JSON.stringify({ main: `${work}/pgmam.cjs`, output: `${work}/pgmam.blob`, disableExperimentalSEAWarning: true, useCodeCache: true }));
  run(process.execPath, ['--experimental-sea-config', `${work}/sea-config.json`], { quiet: true });

  const exe = `${work}/pgmam`;
  copyFileSync(process.execPath, exe);
  chmodSync(exe, 0o755);
  // node ships with its debug symbols (about 10 MB here): a user's executable needs none of them.
  // strip warns about each of node's many notes ("Can't find string offset"): shown only if it fails.
  run('strip', ['--strip-all', exe], { quiet: true });
  const postject = createRequire(import.meta.url).resolve('postject/dist/cli.js');
  run(process.execPath, [postject, exe, 'NODE_SEA_BLOB', `${work}/pgmam.blob`, '--sentinel-fuse', 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2'], { quiet: true });
  // The stripped, injected file must still start: a broken dist/pgmam is never left in place.
  const said = run(exe, ['--version']).trim();
  if (said !== version) throw new Error(`${exe} --version printed "${said}", not ${version}`);
  renameSync(exe, 'dist/pgmam');
  rmSync(work, { recursive: true, force: true });
}

function run(cmd, args, { quiet = false } = {}) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', quiet ? 'pipe' : 'inherit'] });
  } catch (e) {
    if (quiet && e.stderr) process.stderr.write(e.stderr);
    throw e;
  }
}
