// The user's certificate files must be usable before anything is written: both certificates PEM, the key root's alone.
import type { TlsFiles } from '../host/tls-files.js';
import { fail, pass, type Guard } from '../plan/types.js';

/** `applies`: false where the facts were not gathered (not root: runs-as-root refuses already). */
export function tlsFilesAreUsable(f: TlsFiles, paths: { caFile?: string | undefined; certFile?: string | undefined; keyFile?: string | undefined }, applies: boolean): Guard[] {
  const key = paths.keyFile ?? '';
  return [
    { id: 'ca-file-is-a-certificate', check: () => (!applies || f.ca ? pass : fail(`the CA file ${paths.caFile} is missing or holds no PEM certificate`)) },
    { id: 'cert-file-is-a-certificate', check: () => (!applies || f.cert ? pass : fail(`the certificate file ${paths.certFile} is missing or holds no PEM certificate`)) },
    {
      id: 'key-file-is-private',
      check: () =>
        !applies ? pass : !f.key.exists ? fail(`the key file ${key} does not exist`) : !f.key.private ? fail(`the key file ${key} can be read by users other than root`, `chown root:root ${key} && chmod 0600 ${key}`) : !f.key.pem ? fail(`the key file ${key} holds no PEM private key`) : pass,
    },
  ];
}
