// Bundles src/main.ts into one ESM file, dist/pgmam.mjs (commander needs `require`: see build-notes.md).
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
await build({
  entryPoints: ['src/main.ts'],
  outfile: 'dist/pgmam.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'linked',
  legalComments: 'none',
  define: { PGMAM_VERSION: JSON.stringify(version) },
  banner: { js: "import { createRequire as __pgmamCreateRequire } from 'node:module'; const require = __pgmamCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});
