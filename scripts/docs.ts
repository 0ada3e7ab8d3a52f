// Writes what the Debian package ships beside the executable, made from the sources: man pages,
// bash completion, the commented default configuration. Usage: docs.mjs OUT_DIR VERSION DATE
import { mkdirSync, writeFileSync } from 'node:fs';
import { bashCompletion, manPages } from '../src/cli/docs.js';
import { renderDefaultConfig } from '../src/config/help.js';
import { renderLogrotate } from '../src/steps/logrotate.js';

const [out, version, date] = process.argv.slice(2) as [string, string, string];
mkdirSync(`${out}/man8`, { recursive: true });
for (const p of await manPages(version, date)) writeFileSync(`${out}/man8/${p.name}.8`, p.text);
writeFileSync(`${out}/pgmam.bash-completion`, await bashCompletion(version));
writeFileSync(`${out}/pgmam.conf`, renderDefaultConfig());
writeFileSync(`${out}/pgmam.logrotate`, renderLogrotate('/var/log/pgmam'));
