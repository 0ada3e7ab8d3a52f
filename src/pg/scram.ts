// Computes a SCRAM-SHA-256 verifier locally, so the plain password never reaches the server, its
// logs, argv or ps (PostgreSQL stores a pre-hashed password as is).
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';

export function scramSha256Verifier(password: string, salt: Buffer = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** A new password for a role pgmam creates: 24 characters of base64url from 18 random bytes (144 bits). */
export const newPassword = () => randomBytes(18).toString('base64url');
