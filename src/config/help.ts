// What each configuration key means: one line of text per key (the type makes every key have one).
// The commented default file the Debian package ships (/etc/pgmam/pgmam.conf) and its man page are
// made from it.
import { configKeySpecs, defaultConfig, type Config } from './schema.js';

export const CONFIG_HELP: { readonly [K in keyof Config]: string } = {
  'pg-version': 'PostgreSQL major for new clusters; empty: the newest installed that pgBackRest supports.',
  'port-min': 'Lowest port chosen for a new cluster when none is given.',
  'port-max': 'Highest port chosen for a new cluster when none is given.',
  'repo-path': "Repository for new stanzas; empty: repo1-path of pgBackRest's own configuration (/etc/pgbackrest.conf), else /var/lib/pgbackrest.",
  'retention-full': 'repo1-retention-full of each stanza: full backups kept (or days, with retention-full-type = time).',
  'compress-type': 'compress-type of each stanza (lz4, zst, gz, bz2 or none).',
  'process-max': 'process-max of each stanza.',
  'archive-timeout': 'archive_timeout of each cluster, in seconds.',
  'stanza-dir': "pgBackRest's include directory, where one stanza file per cluster goes.",
  'data-root':
    "Where new clusters' data directories go: a template with %v (major) and %c (name), passed to pg_createcluster -d; empty: data_directory of postgresql-common's createcluster.conf. A branch goes beside its parent.",
  'state-dir': "pgmam's own state: cluster records, locks, journals, repositories.",
  'log-file': 'JSON-lines log of every command pgmam runs and every step.',
  'min-free-mb': 'Refuse to create or restore when a filesystem pgmam writes to has less free (MB).',
  'preserved-max-mb': "check: an app whose preserved data directories take more than this (MB) is unhealthy, with the prune that frees them; 0: never.",
  'archive-wait-timeout': 'Seconds to wait for a switched WAL segment to be archived.',
  'recovery-timeout': 'Seconds a recovery after a restore may take before pgmam gives up waiting.',
  'full-interval': 'backup --type auto: a full when none is newer than this (durations: 3600, 90m, 12h, 7d, 2w).',
  'diff-interval': 'backup --type auto: else a diff when none is newer than this, else an incr.',
  'retention-full-type': 'count keeps retention-full full backups; time keeps retention-full days.',
  'export-dir': 'Where pgmam export writes.',
  'export-keep-daily': 'How long daily exports are kept.',
  'export-keep-weekly': 'How long weekly exports are kept.',
  'export-keep-monthly': 'How long monthly exports are kept.',
  'backup-max-age': 'check: a cluster whose newest backup is older is unhealthy (a due full is never skipped, so full-interval plus slack).',
  'archive-ready-max-age': 'check: a WAL file waiting longer to be archived makes its cluster unhealthy.',
  'repo-suspend-mb':
    'backup suspends an attached repository for an app once this much WAL waits in pg_wal only for it; the next backup that finds it answering puts it back with a full. The local repository is never suspended.',
  'slot-max-wal-mb': "max_slot_wal_keep_size of a primary with replicas: a stopped replica's slot keeps at most this much WAL (MB).",
  'archive-io-timeout': "archive-push's own io-timeout (seconds): how long a repository that does not answer holds each round of archiving.",
  'takeover-min-idle': 'recover without --as (a takeover) is refused unless the stanza received no WAL for this long (--force overrides).',
  'fence-on-takeover': 'check stops a cluster another host took over, disables its start at boot and records it (yes or no).',
  'backup-parallel': 'Clusters backed up at once by backup --all.',
  'lock-wait': 'Seconds backup waits for a cluster locked by another pgmam command before skipping it.',
  'tls-dir': "pgmam's CA (ca.crt, ca.key root 0600) and each cluster's server certificate (clusters/<version>-<name>/).",
  'secrets-dir': "Passwords pgmam generates (initcluster --owner without --password-file): <app>-<role>.pw, root's alone (0600).",
  'tls-names': "More DNS names every server certificate carries (comma-separated), beside the host's name and FQDN, localhost and the loopback addresses.",
  'tls-required': 'pg_hba.conf refuses every TCP connection without TLS; no: only replication connections (refused without TLS always).',
  'tls-warn-days': 'check: a server certificate expiring within this many days makes its cluster unhealthy.',
  schedule: 'When schedule install runs pgmam backup --all (cron syntax; systemd timers get OnCalendar from it when it is hourly or daily).',
  'drill-schedule': 'When schedule install runs pgmam drill --all (cron syntax; default weekly, Sunday 04:30); empty: no scheduled drills.',
  'drill-max-age': 'check: an app whose last successful restore drill is older is unhealthy (an app younger than this with no drill yet is not).',
  'drill-probe-dir': "Per-app SQL probes of pgmam drill: <app>.sql, run with psql (\\connect DB works) on the restored copy; its output must not be empty.",
};

const DAY = 86400;
/** A default as a user would write it: durations in their largest whole unit (604800 → 7d). */
function shown(key: keyof Config): string {
  const v = defaultConfig[key];
  if (Array.isArray(v)) return v.join(', ');
  if (typeof v === 'number' && isDuration(key)) {
    for (const [unit, s] of [['d', DAY], ['h', 3600], ['m', 60]] as const) if (v > 0 && v % s === 0) return `${v / s}${unit}`;
  }
  return String(v);
}

/** A key that takes "90m" is a duration (whole-number keys refuse it). */
const isDuration = (key: keyof Config) => 'duration' in configKeySpecs[key];

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const w of text.split(' ')) {
    if (line && line.length + 1 + w.length > width) {
      lines.push(line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  return line ? [...lines, line] : lines;
}

export const configKeys = () => Object.keys(configKeySpecs) as Array<keyof Config>;

/** The configuration file with every key commented out at its default: uncomment a line to change it. */
export function renderDefaultConfig(): string {
  const head = [
    '# pgmam configuration (INI). Every key is shown commented out at its default;',
    '# uncomment a line to change it. An unknown key or a bad value makes every',
    '# pgmam command exit 3 listing each problem. See pgmam(8).',
  ];
  const keys = configKeys().flatMap((k) => ['', ...wrap(CONFIG_HELP[k], 76).map((l) => `# ${l}`), `#${k} = ${shown(k)}`]);
  return [...head, ...keys, ''].join('\n');
}

/** Key, default and meaning, for the man page. */
export const configTable = () => configKeys().map((k) => ({ key: k, value: shown(k), help: CONFIG_HELP[k] }));
