// This host's pgBackRest server (`pgmam repo serve`): its record and files under <state-dir>/serve/,
// root-owned; and the registrations that apps on other hosts leave in this host's repository
// (pgmam/clients/<stanza>.json) so that `pgmam repo backup-clients` here can back them up.
import { z } from 'zod';
import type { HostFs } from '../host-fs.js';

export const serveDir = (stateDir: string) => `${stateDir}/serve`;
export const serveRecordPath = (stateDir: string) => `${serveDir(stateDir)}/serve.json`;
/** What a client's remote side loads (its repo-host-config / pg-host-config): the same file the server starts with. */
export const serverConfigPath = (stateDir: string) => `${serveDir(stateDir)}/pgbackrest-server.conf`;
export const serverPidPath = (stateDir: string) => `${serveDir(stateDir)}/server.pid`;
export const serveCaPath = (stateDir: string) => `${serveDir(stateDir)}/ca.crt`;
export const serveCertPath = (stateDir: string) => `${serveDir(stateDir)}/server.crt`;
export const serveKeyPath = (stateDir: string) => `${serveDir(stateDir)}/server.key`;
/** The configuration each served app's backup runs with (pg1-host: the app's host). */
export const clientConfigPath = (stateDir: string, stanza: string) => `${serveDir(stateDir)}/clients/${stanza}.conf`;

export const SERVER_UNIT = 'pgmam-pgbackrest-server.service';
export const SERVE_CRON_FILE = '/etc/cron.d/pgmam-serve';
/** Debian's pgBackRest: what the unit and the @reboot line start. */
export const PGBACKREST_BIN = '/usr/bin/pgbackrest';

export const serveSchema = z.object({
  format: z.literal(1),
  /** The address the server listens on and clients reach it by (its certificate names it). */
  address: z.string(),
  port: z.number().int(),
  /** Client certificate CNs the server lets in, for every stanza. */
  allow: z.array(z.string()),
  /** How it starts at boot. */
  via: z.enum(['systemd', 'cron']),
  createdAt: z.string(),
});
export type ServeRecord = z.infer<typeof serveSchema>;

export async function readServe(fs: HostFs, stateDir: string): Promise<ServeRecord | undefined> {
  const text = await fs.readText(serveRecordPath(stateDir));
  if (text === undefined) return undefined;
  try {
    return serveSchema.parse(JSON.parse(text));
  } catch {
    return undefined;
  }
}

/** Where an app's registration lives in a repository (relative to the repository's path). */
export const CLIENTS_DIR = 'pgmam/clients';
export const registrationPath = (stanza: string) => `${CLIENTS_DIR}/${stanza}.json`;

/** What the repository host needs to back an app up through the app host's server (no secrets). */
export const registrationSchema = z.object({
  format: z.literal(1),
  stanza: z.string(),
  app: z.string(),
  role: z.string(),
  /** The app's host: its name (annotations) and the address and port of its pgBackRest server. */
  host: z.string(),
  address: z.string(),
  port: z.number().int(),
  hostConfig: z.string(),
  pgPath: z.string(),
  pgPort: z.number().int(),
  socketPath: z.string(),
  registeredAt: z.string(),
});
export type Registration = z.infer<typeof registrationSchema>;

/**
 * What detach leaves in place of a registration: pgBackRest 2.45 cannot remove a file through a
 * repository host (`repo-rm` asserts on 'compress-level-network'), so the file says the app left.
 */
export const detachedSchema = z.object({ format: z.literal(1), stanza: z.string(), detachedAt: z.string() });
export type Detached = z.infer<typeof detachedSchema>;
