// openssl as pgmam uses it for its CA and the clusters' server certificates: command builders and
// the parsing of what they print. Keys are made by openssl and come back on stdout (never a file
// another user could read, never logged); requests go to the signature on stdin. No ASN.1 of our own.
import { randomBytes } from 'node:crypto';
import type { Cmd } from '../runner/types.js';

/** Ten years, as the issue and the container image we learn from have it. */
export const CERT_DAYS = 3650;
const NEW_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', '-'];

/** A positive random 128-bit serial: no two certificates pgmam issues share one. */
export const newSerial = () => {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f;
  return `0x${b.toString('hex')}`;
};

/** The CA: a new EC P-256 key and its self-signed certificate, both on stdout. */
export const newCa = (cn: string): Cmd => ({
  argv: ['openssl', 'req', '-x509', '-new', ...NEW_KEY, '-days', String(CERT_DAYS), '-sha256', '-set_serial', newSerial(), '-subj', `/CN=${cn}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-addext', 'subjectKeyIdentifier=hash'],
  effect: 'write',
  input: '',
});

/** The CA's certificate again from its key (a file of root's): a crash left the key without it. */
export const caCertFromKey = (keyFile: string, cn: string): Cmd => ({
  argv: ['openssl', 'req', '-x509', '-new', '-key', keyFile, '-days', String(CERT_DAYS), '-sha256', '-set_serial', newSerial(), '-subj', `/CN=${cn}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-addext', 'subjectKeyIdentifier=hash'],
  effect: 'write',
});

export interface SanEntry {
  kind: 'DNS' | 'IP';
  value: string;
}
export const renderSans = (sans: readonly SanEntry[]) => sans.map((s) => `${s.kind}:${s.value}`).join(',');

/** A server: a new key and its certificate request with the names and uses the signature copies, both on stdout. */
export const newServerRequest = (cn: string, sans: readonly SanEntry[]): Cmd => ({
  argv: ['openssl', 'req', '-new', ...NEW_KEY, '-subj', `/CN=${cn}`, '-addext', `subjectAltName=${renderSans(sans)}`, '-addext', 'basicConstraints=critical,CA:FALSE', '-addext', 'keyUsage=critical,digitalSignature,keyEncipherment', '-addext', 'extendedKeyUsage=serverAuth'],
  effect: 'write',
  input: '',
});

/** The CA signs a request (on stdin), copying its extensions; root runs it (the CA key is root's alone). */
export const signRequest = (csr: string, ca: { cert: string; key: string }): Cmd => ({
  argv: ['openssl', 'x509', '-req', '-CA', ca.cert, '-CAkey', ca.key, '-days', String(CERT_DAYS), '-sha256', '-set_serial', newSerial(), '-copy_extensions', 'copyall'],
  effect: 'write',
  input: csr,
});

/** One PEM block of a kind out of openssl's output (undefined when it is not there). */
export function pemBlock(text: string, kind: 'PRIVATE KEY' | 'CERTIFICATE' | 'CERTIFICATE REQUEST'): string | undefined {
  const m = new RegExp(`-----BEGIN ${kind}-----\\n[A-Za-z0-9+/=\\n]+?-----END ${kind}-----`).exec(text);
  return m ? `${m[0]}\n` : undefined;
}
