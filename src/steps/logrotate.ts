// pgmam's logs rotated by logrotate: the one file `schedule install` writes and the Debian package
// ships (/etc/logrotate.d/pgmam). Each pgmam run (and cron's redirect) opens the log anew, so a
// rotation needs no signal and no copytruncate.
import type { Step } from '../plan/types.js';

export const LOGROTATE_FILE = '/etc/logrotate.d/pgmam';
export const DEFAULT_LOG_DIR = '/var/log/pgmam';

/** The package's file for the default log directory; one of pgmam's own beside it for another (logrotate refuses one log in two files). */
export const logrotateFileFor = (logDir: string) => (logDir === DEFAULT_LOG_DIR ? LOGROTATE_FILE : `${LOGROTATE_FILE}-${logDir.replace(/^\/+/, '').replace(/[^A-Za-z0-9]+/g, '-')}`);

/** Weekly, eight kept, compressed; for every log in pgmam's log directory (pgmam.log, cron.log). */
export function renderLogrotate(logDir: string): string {
  return [
    '# Written by pgmam (schedule install, or the Debian package): its logs, rotated weekly, eight kept.',
    `${logDir}/*.log {`,
    '\tweekly',
    '\trotate 8',
    '\tcompress',
    '\tdelaycompress',
    '\tmissingok',
    '\tnotifempty',
    '\tcreate 0640 root root',
    '}',
    '',
  ].join('\n');
}

export function logrotateStep(logDir: string): Step {
  const text = renderLogrotate(logDir);
  const file = logrotateFileFor(logDir);
  return {
    id: 'write-logrotate',
    title: `write ${file} (rotate ${logDir}/*.log weekly)`,
    effect: 'write',
    run: (c) => c.fs.writeFileAtomic(file, text, { mode: 0o644 }),
    show: text.trimEnd().split('\n').map((l) => `  | ${l}`),
  };
}

/** schedule remove: a file of pgmam's own for another log directory goes; the package's stays (dpkg owns it). */
export const removeLogrotateSteps = (logDir: string): Step[] =>
  logDir === DEFAULT_LOG_DIR ? [] : [{ id: 'remove-logrotate', title: `remove ${logrotateFileFor(logDir)}`, effect: 'destroy', run: (c) => c.fs.rm(logrotateFileFor(logDir)), show: [`rm -f ${logrotateFileFor(logDir)}`] }];
