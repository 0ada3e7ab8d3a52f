// Which names a server certificate carries, and how a certificate reads back (Node's X509Certificate:
// parsing only). Pure.
import { X509Certificate } from 'node:crypto';
import type { SanEntry } from './openssl.js';

/** The host's name and FQDN, localhost, 127.0.0.1 and ::1 as IP and DNS names, then tls-names; each once. */
export function serverSans(hostName: string, fqdn: string | undefined, extra: readonly string[]): SanEntry[] {
  const dns = [hostName, fqdn, 'localhost', '127.0.0.1', '::1', ...extra].filter((x): x is string => Boolean(x));
  const out: SanEntry[] = [...new Set(dns)].map((value) => ({ kind: 'DNS' as const, value }));
  return [...out, { kind: 'IP', value: '127.0.0.1' }, { kind: 'IP', value: '::1' }];
}

export interface CertInfo {
  subject: string;
  issuer: string;
  /** As Node prints them: "DNS:host, IP Address:127.0.0.1, …". */
  sans: string[];
  serial: string;
  notBefore: string;
  notAfter: string;
  fingerprint256: string;
}

export function readCertificate(pem: string): CertInfo | undefined {
  try {
    const c = new X509Certificate(pem);
    return {
      subject: c.subject.replace(/\n/g, ', '),
      issuer: c.issuer.replace(/\n/g, ', '),
      sans: (c.subjectAltName ?? '').split(', ').filter(Boolean),
      serial: c.serialNumber,
      notBefore: new Date(c.validFrom).toISOString(),
      notAfter: new Date(c.validTo).toISOString(),
      fingerprint256: c.fingerprint256,
    };
  } catch {
    return undefined;
  }
}
