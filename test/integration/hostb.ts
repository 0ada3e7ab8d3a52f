// A second host for off-host tests (hostb.sh): namespaces of its own with private PostgreSQL,
// pgBackRest and pgmam directories, its own host name and a network reaching this host by address.
// pgmam and psql run inside it through nsenter; stopping it ends every process it started.
import { execa } from 'execa';
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { FILE_TAG, PGMAM, type Run } from './helpers.js';

const SCRIPT = resolve(import.meta.dirname, 'hostb.sh');
const WORKER = Math.max(1, Number(process.env['VITEST_POOL_ID'] ?? 1));

export interface HostB {
  dir: string;
  name: string;
  /** This host's address on the link (NET.1) and host B's (NET.2). */
  addrA: string;
  addrB: string;
  /** Host B's files, as this host sees them: DIR/root/<etc-pgmam, var-lib-pgmam, …>. */
  root: string;
  startMs: number;
}

export async function startHostB(dir: string, configLines: string[]): Promise<HostB> {
  const net = `10.214.${40 + WORKER}`;
  const name = `hostb-${FILE_TAG}`;
  const t0 = performance.now();
  const r = await execa(SCRIPT, ['start', dir, name, net, FILE_TAG.slice(0, 6)], { reject: false, stdin: 'ignore' });
  if (r.exitCode !== 0) throw new Error(`host B did not start: ${r.stderr}\n${r.stdout}`);
  const b: HostB = { dir, name, addrA: `${net}.1`, addrB: `${net}.2`, root: `${dir}/root`, startMs: Math.round(performance.now() - t0) };
  mkdirSync(`${b.root}/etc-pgmam`, { recursive: true });
  writeFileSync(`${b.root}/etc-pgmam/pgmam.conf`, `${configLines.join('\n')}\n`);
  return b;
}

export async function stopHostB(b: HostB | undefined): Promise<void> {
  if (b) await execa(SCRIPT, ['stop', b.dir], { reject: false, stdin: 'ignore' });
}

/** A command as root on host B. */
export async function onB(b: HostB, argv: string[], opts: { input?: string } = {}): Promise<Run> {
  const r = await execa(SCRIPT, ['run', b.dir, ...argv], { reject: false, input: opts.input, stdin: opts.input === undefined ? 'ignore' : undefined, env: { PGMAM_CONFIG: '/etc/pgmam/pgmam.conf' } });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** pgmam on host B, with B's own /etc/pgmam/pgmam.conf. */
export const pgmamOnB = (b: HostB, args: string[]) => onB(b, [PGMAM, ...args]);

/** One value from a query on host B's cluster at `port`. */
export async function sqlOnB(b: HostB, port: number, query: string): Promise<string> {
  const r = await onB(b, ['runuser', '-u', 'postgres', '--', 'psql', '-X', '-q', '-At', '-h', '/var/run/postgresql', '-p', String(port), '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-c', query]);
  if (r.code !== 0) throw new Error(`psql on host B (port ${port}): ${r.stderr}`);
  return r.stdout.trim();
}
