// Where postgresql-common puts a new cluster's data directory: the `data_directory` template of
// createcluster.conf (%v = major, %c = cluster name), or pgmam's `data-root` setting in its place.
// Parse and expand only; reading the file is the caller's.

export const CREATECLUSTER_CONF = '/etc/postgresql-common/createcluster.conf';
/** postgresql-common's own default when createcluster.conf sets no data_directory. */
export const POSTGRESQL_COMMON_DATA_ROOT = '/var/lib/postgresql/%v/%c';

/** The data_directory template createcluster.conf sets, if any (the last assignment wins, as in PgCommon). */
export function parseDataDirectory(text: string): string | undefined {
  let found: string | undefined;
  for (const line of text.split('\n')) {
    const m = /^\s*data_directory\s*=?\s*(?:'([^']*)'|"([^"]*)"|([^\s#]+))/.exec(line);
    if (m) found = m[1] ?? m[2] ?? m[3];
  }
  return found || undefined;
}

/** %v → major, %c → cluster name, %% → %. */
export function expandDataRoot(template: string, c: { version: string; name: string }): string {
  return template.replace(/%([vc%])/g, (_, k: string) => (k === 'v' ? c.version : k === 'c' ? c.name : '%'));
}
