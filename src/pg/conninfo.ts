// How to reach a cluster, as a libpq URI (conninfo, initcluster's success line). Never a password.
import { SOCKET_DIR } from './commands.js';

export interface Conninfo {
  uri: string;
  host: string;
  port: number;
  dbname: string;
  user: string;
  sslmode: string | null;
  sslrootcert: string | null;
  passwordFile: string | null;
}

export interface ConninfoTarget {
  port: number;
  /** listen_addresses as the cluster reads it; undefined: localhost (PostgreSQL's default). */
  listen: string | undefined;
  /** The host's name for other hosts (its FQDN where it has one). */
  host: string;
  /** The cluster has pgmam's TLS: verify-full against pgmam's CA. */
  tls: boolean;
  caFile: string;
  passwordFile: string | undefined;
}

/**
 * Without a role: the local socket as the postgres OS user (peer). With one: TCP — to localhost when
 * the cluster listens only there, else to the host's name — with TLS verified where it has pgmam's.
 */
export function conninfoOf(t: ConninfoTarget, o: { db?: string | undefined; role?: string | undefined }): Conninfo {
  const db = o.db ?? 'postgres';
  if (!o.role) {
    const uri = `postgresql:///${encodeURIComponent(db)}?host=${encodeURIComponent(SOCKET_DIR)}&port=${t.port}&user=postgres`;
    return { uri, host: SOCKET_DIR, port: t.port, dbname: db, user: 'postgres', sslmode: null, sslrootcert: null, passwordFile: null };
  }
  const addrs = (t.listen ?? 'localhost').split(',').map((a) => a.trim());
  const onlyLocal = addrs.every((a) => ['localhost', '127.0.0.1', '::1', ''].includes(a));
  const host = onlyLocal ? 'localhost' : t.host;
  const params = t.tls ? `?sslmode=verify-full&sslrootcert=${encodeURIComponent(t.caFile)}` : '?sslmode=prefer';
  const uri = `postgresql://${encodeURIComponent(o.role)}@${host}:${t.port}/${encodeURIComponent(db)}${params}`;
  return { uri, host, port: t.port, dbname: db, user: o.role, sslmode: t.tls ? 'verify-full' : 'prefer', sslrootcert: t.tls ? t.caFile : null, passwordFile: t.passwordFile ?? null };
}
