// npm run deb: pgmam_<version>_amd64.deb from dist/pgmam (npm run build), with dpkg-deb and no network.
// /usr/sbin/pgmam and the legacy names as links beside it, man pages and bash completion made from the
// command specs, /etc/pgmam/pgmam.conf (a conffile, every key commented at its default), copyright and
// changelog. Removing the package leaves clusters, stanzas, backups and /var/lib/pgmam alone; purging
// removes the configuration and the schedule pgmam wrote (cron file or timer units), nothing else.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { join, relative } from 'node:path';

const { version, description } = JSON.parse(readFileSync('package.json', 'utf8'));
const arch = 'amd64';
const MAINTAINER = 'pgmam maintainers <pgmam@example.org>';
const LEGACY = ['initcluster', 'pitr', 'pgbranch', 'pgbackup'];
const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], ...opts });

if (process.getuid() !== 0 && !process.env.FAKEROOTKEY) console.warn('deb: not root; dpkg-deb --root-owner-group still makes every file root-owned');
if (!existsSync('dist/pgmam')) throw new Error('dist/pgmam is missing: run npm run build first');

// One date for everything dated in the package: the last commit's (reproducible), else now.
const epoch = Number(process.env.SOURCE_DATE_EPOCH ?? (tryRun('git', ['log', '-1', '--format=%ct']) || Math.floor(Date.now() / 1000)));
const when = new Date(epoch * 1000);
const day = when.toISOString().slice(0, 10);

const work = 'dist/deb';
const root = `${work}/pgmam_${version}_${arch}`;
rmSync(work, { recursive: true, force: true });
mkdirSync(`${root}/DEBIAN`, { recursive: true });

// Man pages, completion and the default configuration, from the sources.
await build({ entryPoints: ['scripts/docs.ts'], outfile: `${work}/docs.mjs`, bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'warning',
  banner: { js: "import { createRequire as __c } from 'node:module'; const require = __c(import.meta.url);" } });
run(process.execPath, [`${work}/docs.mjs`, `${work}/gen`, version, day]);

const dir = (p) => (mkdirSync(`${root}/${p}`, { recursive: true }), `${root}/${p}`);
copyFileSync('dist/pgmam', `${dir('usr/sbin')}/pgmam`);
chmodSync(`${root}/usr/sbin/pgmam`, 0o755);
for (const n of LEGACY) symlinkSync('pgmam', `${root}/usr/sbin/${n}`);

for (const f of readdirSync(`${work}/gen/man8`)) {
  const text = readFileSync(`${work}/gen/man8/${f}`);
  writeFileSync(`${dir('usr/share/man/man8')}/${f}.gz`, gzipSync(text, { level: 9 }));
}
copyFileSync(`${work}/gen/pgmam.bash-completion`, `${dir('usr/share/bash-completion/completions')}/pgmam`);
copyFileSync(`${work}/gen/pgmam.conf`, `${dir('etc/pgmam')}/pgmam.conf`);
copyFileSync(`${work}/gen/pgmam.logrotate`, `${dir('etc/logrotate.d')}/pgmam`);

// Tags a Node single executable cannot avoid, each with its reason (lintian prints it beside the tag).
writeFileSync(`${dir('usr/share/lintian/overrides')}/pgmam`, [
  '# Node.js links its own zlib into the executable, and pgmam runs inside that Node.js runtime.',
  'pgmam: embedded-library zlib [usr/sbin/pgmam]',
  '# The executable is the Node.js 20 binary of the build host (not position-independent), with pgmam injected.',
  'pgmam: hardening-no-pie [usr/sbin/pgmam]',
  "# Misspellings in strings of the embedded Node.js runtime and bundled npm libraries, not pgmam's own text.",
  'pgmam: spelling-error-in-binary * [usr/sbin/pgmam]',
  '',
].join('\n'));

const doc = dir('usr/share/doc/pgmam');
writeFileSync(`${doc}/copyright`, copyright());
// A native package's changelog (no Debian revision): changelog.gz.
writeFileSync(`${doc}/changelog.gz`, gzipSync(changelog(), { level: 9 }));
for (const f of walk(root)) chmodSync(f, f.endsWith('/usr/sbin/pgmam') ? 0o755 : 0o644);
for (const d of walkDirs(root)) chmodSync(d, 0o755);

writeFileSync(`${root}/DEBIAN/conffiles`, '/etc/pgmam/pgmam.conf\n/etc/logrotate.d/pgmam\n');
writeFileSync(`${root}/DEBIAN/postrm`, postrm());
writeFileSync(`${root}/DEBIAN/prerm`, prerm());
chmodSync(`${root}/DEBIAN/postrm`, 0o755);
chmodSync(`${root}/DEBIAN/prerm`, 0o755);
writeFileSync(`${root}/DEBIAN/md5sums`, walk(root).filter((f) => !f.includes('/DEBIAN/') && !f.includes('/etc/')).map((f) => `${createHash('md5').update(readFileSync(f)).digest('hex')}  ${relative(root, f)}\n`).join(''));
chmodSync(`${root}/DEBIAN/md5sums`, 0o644);
chmodSync(`${root}/DEBIAN/conffiles`, 0o644);

writeFileSync(`${root}/DEBIAN/control`, control(shlibDepends(), installedSize()));
chmodSync(`${root}/DEBIAN/control`, 0o644);

const deb = `pgmam_${version}_${arch}.deb`;
run('dpkg-deb', ['--root-owner-group', '-Zxz', '-z1', '--build', root, deb], { env: { ...process.env, SOURCE_DATE_EPOCH: String(epoch) } });
console.log(deb);

function tryRun(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

function walk(d) {
  return readdirSync(d, { withFileTypes: true }).flatMap((e) => {
    const p = join(d, e.name);
    if (e.isSymbolicLink()) return [];
    return e.isDirectory() ? walk(p) : [p];
  });
}
function walkDirs(d) {
  return readdirSync(d, { withFileTypes: true }).filter((e) => e.isDirectory()).flatMap((e) => [join(d, e.name), ...walkDirs(join(d, e.name))]);
}

/** The executable's shared libraries as dpkg-shlibdeps computes them (it wants a debian/control beside it). */
function shlibDepends() {
  const tmp = `${work}/shlibdeps`;
  mkdirSync(`${tmp}/debian`, { recursive: true });
  writeFileSync(`${tmp}/debian/control`, `Source: pgmam\n\nPackage: pgmam\nArchitecture: ${arch}\n`);
  const out = run('dpkg-shlibdeps', ['-O', `-e${process.cwd()}/${root}/usr/sbin/pgmam`], { cwd: tmp });
  const m = /^shlibs:Depends=(.*)$/m.exec(out);
  if (!m) throw new Error(`dpkg-shlibdeps printed no shlibs:Depends: ${out}`);
  return m[1].trim();
}

function installedSize() {
  return Math.ceil(walk(root).filter((f) => !f.includes('/DEBIAN/')).reduce((n, f) => n + statSync(f).size, 0) / 1024);
}

function control(shlibs, size) {
  return [
    'Package: pgmam',
    `Version: ${version}`,
    `Architecture: ${arch}`,
    `Maintainer: ${MAINTAINER}`,
    `Installed-Size: ${size}`,
    `Depends: postgresql-common, pgbackrest, ${shlibs}`,
    // logrotate: /etc/logrotate.d/pgmam rotates /var/log/pgmam/*.log.
    'Recommends: postgresql, logrotate',
    // xfs_info tells whether an XFS filesystem shares blocks (branch create --cow).
    'Suggests: xfsprogs',
    'Section: admin',
    'Priority: optional',
    `Description: ${description.replace(/:.*$/, '').replace(/\.$/, '')}`.slice(0, 93),
    ' pgmam runs many PostgreSQL applications on one Debian host: one app is one',
    ' cluster, with its own data directory, port, WAL stream, pgBackRest stanza and',
    ' backup history. Every cluster is created with WAL archiving and a first full',
    ' backup; point-in-time recovery keeps the old data directory; branches are',
    " independent clusters restored from a parent's backups. Every destructive step",
    ' is preceded by guard checks, and every command is journaled so that an',
    ' interrupted one can be finished or undone.',
    ' .',
    ' The executable is standalone: it embeds its own Node.js runtime.',
    '',
  ].join('\n');
}

function prerm() {
  return [
    '#!/bin/sh',
    'set -e',
    // Clusters, stanzas, backups and pgmam's state stay; a schedule pgmam installed stays too (until purge).
    'if [ "$1" = remove ] && { [ -e /etc/cron.d/pgmam ] || [ -e /etc/systemd/system/pgmam-backup.timer ]; }; then',
    '  echo "pgmam: the backup schedule stays installed and fails until pgmam is installed again; purge removes it" >&2',
    'fi',
    '',
  ].join('\n');
}

function postrm() {
  return [
    '#!/bin/sh',
    'set -e',
    // Purge: the configuration (dpkg removes the conffile itself) and the schedule pgmam wrote. Never
    // clusters, stanzas, backups, /var/lib/pgmam, /etc/pgmam/tls or the log.
    'if [ "$1" = purge ]; then',
    '  rm -f /etc/cron.d/pgmam',
    '  if [ -e /etc/systemd/system/pgmam-backup.timer ] || [ -e /etc/systemd/system/pgmam-drill.timer ]; then',
    '    if [ -d /run/systemd/system ]; then systemctl disable --now pgmam-backup.timer pgmam-drill.timer >/dev/null 2>&1 || true; fi',
    '    rm -f /etc/systemd/system/pgmam-backup.timer /etc/systemd/system/pgmam-backup.service /etc/systemd/system/pgmam-drill.timer /etc/systemd/system/pgmam-drill.service',
    '    if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || true; fi',
    '  fi',
    'fi',
    '',
  ].join('\n');
}

function changelog() {
  const rfc = when.toUTCString().replace('GMT', '+0000');
  return [
    `pgmam (${version}) unstable; urgency=medium`,
    '',
    '  * Release built from the pgmam sources (see the README for what it does).',
    '',
    ` -- ${MAINTAINER}  ${rfc}`,
    '',
  ].join('\n');
}

function copyright() {
  const license = readFileSync('LICENSE', 'utf8').trim();
  return [
    'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/',
    'Upstream-Name: pgmam',
    '',
    'Files: *',
    'Copyright: pgmam developers',
    'License: MIT',
    '',
    'Files: usr/sbin/pgmam',
    'Copyright: Node.js contributors and the authors of the npm packages bundled in it',
    'Comment: The executable is a Node.js single executable application: the Node.js',
    ' runtime (MIT, with the third-party licences of its bundled libraries listed in',
    ' https://github.com/nodejs/node/blob/main/LICENSE) and the JavaScript of',
    ' commander, execa, zod, pino, ini and @inquirer/prompts with their dependencies',
    ' (MIT or ISC).',
    'License: MIT',
    '',
    'License: MIT',
    ...license.split('\n').map((l) => (l.trim() === '' ? ' .' : ` ${l}`)),
    '',
  ].join('\n');
}
