// The certificate files a user gives pgmam (a CA, this host's certificate, its key), read-only: each
// certificate as PEM, and the key only when it is root's alone (a key others can read is never read).
import type { HostFs } from '../host-fs.js';

export interface TlsFiles {
  ca: string | undefined;
  cert: string | undefined;
  key: { exists: boolean; private: boolean; pem: string | undefined };
}

export const NO_TLS_FILES: TlsFiles = { ca: undefined, cert: undefined, key: { exists: false, private: false, pem: undefined } };

const pemOf = (text: string | undefined, kind: RegExp) => (text && kind.test(text) ? text : undefined);

export async function readTlsFiles(fs: HostFs, paths: { caFile?: string | undefined; certFile?: string | undefined; keyFile?: string | undefined }): Promise<TlsFiles> {
  const cert = async (file: string | undefined) => (file ? pemOf(await fs.readText(file).catch(() => undefined), /-----BEGIN CERTIFICATE-----/) : undefined);
  const st = paths.keyFile ? await fs.stat(paths.keyFile) : undefined;
  const priv = st !== undefined && st.uid === 0 && (st.mode & 0o077) === 0;
  return {
    ca: await cert(paths.caFile),
    cert: await cert(paths.certFile),
    key: { exists: st !== undefined, private: priv, pem: priv && paths.keyFile ? pemOf(await fs.readText(paths.keyFile), /-----BEGIN [A-Z ]*PRIVATE KEY-----/) : undefined },
  };
}
