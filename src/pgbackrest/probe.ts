// What a failed repository probe (`pgbackrest repo-ls` / `repo-put`) means, from its exit code and
// message: the endpoint does not answer, its certificate is not trusted, the credentials are refused,
// the bucket is unknown. Pure; the message is pgBackRest's first error line, secrets redacted.
import { redactText } from '../redact.js';

export type ProbeProblem = 'unreachable' | 'untrusted' | 'refused' | 'no-bucket' | 'other';

export interface ProbeOutcome {
  ok: boolean;
  problem?: ProbeProblem;
  /** pgBackRest's own words, one line. */
  detail?: string;
}

export function classifyProbe(r: { exitCode: number; stdout: string; stderr: string; signal?: string }): ProbeOutcome {
  if (r.exitCode === 0) return { ok: true };
  const text = redactText(`${r.stderr}\n${r.stdout}`);
  const line = text.split('\n').find((l) => /ERROR:/.test(l))?.trim() ?? (r.signal ? `timed out (${r.signal})` : `exit code ${r.exitCode}`);
  const detail = line.replace(/^.*?ERROR:\s*/, '');
  const code = /ERROR: \[(\d+)\]/.exec(text)?.[1];
  if (r.signal || code === '049' || /unable to (connect|get address)|timeout/i.test(text)) return { ok: false, problem: 'unreachable', detail };
  if (code === '095' || /certificate|CryptoError|hostname/i.test(text)) return { ok: false, problem: 'untrusted', detail };
  // 403/401 from an S3 endpoint; [105] access denied from a pgBackRest server whose tls-server-auth lacks this certificate's CN.
  if (/\b40[13]\b/.test(line) || code === '105') return { ok: false, problem: 'refused', detail };
  if (/\b404\b/.test(line)) return { ok: false, problem: 'no-bucket', detail };
  return { ok: false, problem: 'other', detail };
}
