// What counts as a secret in pgmam's logs and error messages, and how it is blanked out.
/** Keys whose values are secrets wherever they appear in a logged object. */
export const SECRET_KEYS = ['password', 'passwd', 'secret', 'token', 'input', 'PGPASSWORD', 'repo1-s3-key', 'repo1-s3-key-secret', 'repo1-cipher-pass', 'accessKey', 'secretKey', 'cipherPass', 'env', 'verifier'];

/** SCRAM verifiers and key=value secrets inside free text (a message, a tool's stderr). */
export function redactText(text: string): string {
  return text
    .replace(/SCRAM-SHA-256\$[^\s'"]+/g, 'SCRAM-SHA-256$[redacted]')
    .replace(/\b(password|passwd|PGPASSWORD|repo\d+-s3-key(?:-secret)?|repo\d+-cipher-pass|PGBACKREST_REPO\d+_(?:S3_KEY(?:_SECRET)?|CIPHER_PASS)|access-key|secret-key)(\s*[=:]\s*)('[^']*'|"[^"]*"|\S+)/gi, '$1$2[redacted]');
}
