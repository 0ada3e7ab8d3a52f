// pgBackRest's TLS server (`pgbackrest server`) as pgmam runs it: its configuration file, the unit or
// @reboot line that starts it, the ping that says it answers, and the configuration with which the
// repository host backs up an app on another host through that host's server (pg1-host, type tls).
// Builders and renderers only.
import type { Retention } from '../config/schema.js';
import type { Cmd } from '../runner/types.js';
import type { Annotations } from './config.js';
import { annotationLines } from './config.js';

export interface ServerFiles {
  ca: string;
  cert: string;
  key: string;
}

/**
 * The server's configuration, which every remote it forks loads too (clients name it as their
 * host-config): only the TLS lines — a repository path here would clash with the index a client gives
 * its own (pgBackRest refuses two local repositories on one path), so each client sends the path.
 */
export function renderServerConfig(s: { address: string; port: number; allow: readonly string[]; files: ServerFiles }): string {
  return [
    '# Written by pgmam repo serve. Do not edit by hand.',
    '[global]',
    `tls-server-address=${s.address}`,
    `tls-server-port=${s.port}`,
    `tls-server-ca-file=${s.files.ca}`,
    `tls-server-cert-file=${s.files.cert}`,
    `tls-server-key-file=${s.files.key}`,
    // Each allowed certificate CN, for every stanza: a repository host backs up all of an app host's apps.
    ...s.allow.map((cn) => `tls-server-auth=${cn}=*`),
    '',
  ].join('\n');
}

export function renderServerUnit(configFile: string, bin: string): string {
  return [
    '[Unit]',
    'Description=pgBackRest server for pgmam (pgmam repo serve)',
    'After=network-online.target',
    'Wants=network-online.target',
    '',
    '[Service]',
    'User=postgres',
    `ExecStart=${bin} --config=${configFile} server`,
    'Restart=on-failure',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

/** start-stop-daemon (Debian's dpkg): in the background as postgres, its PID in pgmam's own root-owned file. */
export const startServerArgv = (pidFile: string, configFile: string, bin: string) => ['start-stop-daemon', '--start', '--quiet', '--background', '--make-pidfile', '--pidfile', pidFile, '--chuid', 'postgres', '--exec', bin, '--', `--config=${configFile}`, 'server'];
/** Only the process the PID file names, and only if it is pgBackRest: never another process. */
export const stopServerArgv = (pidFile: string, bin: string) => ['start-stop-daemon', '--stop', '--quiet', '--oknodo', '--retry', 'TERM/5/KILL/2', '--pidfile', pidFile, '--exec', bin];

export function renderServeCron(pidFile: string, configFile: string, bin: string): string {
  return [
    '# Written by pgmam repo serve: start the pgBackRest server at boot. Remove with pgmam repo serve --stop.',
    'SHELL=/bin/sh',
    'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    `@reboot root ${startServerArgv(pidFile, configFile, bin).join(' ')}`,
    '',
  ].join('\n');
}

/** Answers once the server accepts connections (a TLS handshake, no client certificate needed). */
export const serverPing = (address: string, port: number): Cmd => ({
  argv: ['pgbackrest', '--config=/dev/null', '--log-level-console=warn', '--log-level-file=off', '--io-timeout=2', `--tls-server-port=${port}`, 'server-ping', address],
  asUser: 'postgres',
  effect: 'read',
  // A just-started server takes a moment to listen.
  retry: { exitCode: 49, attempts: 40, delayMs: 250 },
  timeoutMs: 30_000,
});

export interface ClientBackupSettings {
  repoPath: string;
  retention: Retention;
  compressType: string;
  processMax: number;
}

/**
 * The repository host's view of one served app: its data through the app host's server, the local
 * repository as repo1 with this host's retention (the one expire applies), and the app's annotations.
 */
export function renderClientConfig(
  r: { stanza: string; address: string; port: number; hostConfig: string; pgPath: string; pgPort: number; socketPath: string },
  files: ServerFiles,
  s: ClientBackupSettings,
  annotations: Annotations,
): string {
  return [
    '# Written by pgmam repo backup-clients for this served app only. Do not edit by hand.',
    `[${r.stanza}]`,
    `pg1-host=${r.address}`,
    'pg1-host-type=tls',
    `pg1-host-port=${r.port}`,
    `pg1-host-ca-file=${files.ca}`,
    `pg1-host-cert-file=${files.cert}`,
    `pg1-host-key-file=${files.key}`,
    `pg1-host-config=${r.hostConfig}`,
    `pg1-path=${r.pgPath}`,
    `pg1-port=${r.pgPort}`,
    `pg1-socket-path=${r.socketPath}`,
    `repo1-path=${s.repoPath}`,
    `repo1-retention-full=${s.retention.full}`,
    `repo1-retention-full-type=${s.retention.fullType}`,
    `compress-type=${s.compressType}`,
    `process-max=${s.processMax}`,
    'start-fast=y',
    ...annotationLines(annotations),
    '',
  ].join('\n');
}
