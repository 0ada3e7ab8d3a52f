// What counts as a secret in pgmam's logs and error messages, and how it is blanked out.
/** Keys whose values are secrets wherever they appear in a logged object. */
export const SECRET_KEYS = ['password', 'passwd', 'secret', 'token', 'input', 'PGPASSWORD', 'repo1-s3-key', 'repo1-s3-key-secret', 'repo1-cipher-pass', 'accessKey', 'secretKey', 'cipherPass', 'env', 'verifier'];

/** SCRAM verifiers and key=value secrets inside free text (a message, a tool's stderr). */
export function redactText(text: string): string {
  return text
    .replace(/SCRAM-SHA-256\$[^\s'"]+/g, 'SCRAM-SHA-256$[redacted]')
    .replace(/\b(password|passwd|PGPASSWORD|repo\d+-s3-key(?:-secret)?|repo\d+-cipher-pass|PGBACKREST_REPO\d+_(?:S3_KEY(?:_SECRET)?|CIPHER_PASS)|access-key|secret-key)(\s*[=:]\s*)('[^']*'|"[^"]*"|\S+)/gi, '$1$2[redacted]');
}

const SECRET = new Set(SECRET_KEYS);
const isPlain = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Error);

/**
 * A logged object with secrets blanked: a secret key's value at the top or one level down, and
 * secrets inside text there. (pino's own `redact` compiles its paths at every start: slower.)
 */
export function redactFields(o: Record<string, unknown>, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (SECRET.has(k)) out[k] = '[redacted]';
    else if (typeof v === 'string') out[k] = redactText(v);
    else if (depth === 0 && isPlain(v)) out[k] = redactFields(v, 1);
    else out[k] = v;
  }
  return out;
}
