// A second host for off-host tests (hostb.sh): namespaces of its own with private PostgreSQL,
// pgBackRest and pgmam directories, its own host name and a network reaching this host by address.
// pgmam and psql run inside it through nsenter; stopping it ends every process it started.
import { execa } from 'execa';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { FILE_TAG, PGMAM, TEST_ROOT, type Run } from './helpers.js';
import { startGateway, startRgw, type Rgw } from './rgw.js';

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

/**
 * Two hosts sharing one repository: this file's Ceph RGW, host B, and a gateway on this host's end of
 * the link that both reach by address; the repository `repo` added on A (through `runA`, attach-new as
 * configured there) and on B (attach-new no, from its own copies of the key and CA files).
 */
export async function startFleet(o: { runA: (args: string[]) => Promise<Run>; repo: string; path: string; bConfig: string[] }): Promise<{ rgw: Rgw; b: HostB; endpoint: string }> {
  const rgw = await startRgw();
  const b = await startHostB(`${TEST_ROOT}/hostb`, o.bConfig);
  const port = rgw.port + 2;
  await startGateway(rgw, 'fleet', port, b.addrA);
  const endpoint = `${b.addrA}:${port}`;
  const add = await o.runA(['repo', 'add', o.repo, '--s3-endpoint', endpoint, '--s3-bucket', rgw.bucket, '--s3-key-file', rgw.keyFile, '--ca-file', rgw.ca, '--path', o.path]);
  if (add.code !== 0) throw new Error(`repo add on A: ${add.stderr}`);
  for (const [from, to] of [[rgw.keyFile, 's3.key'], [rgw.ca, 'ca.crt']] as const) copyFileSync(from, `${b.root}/etc-pgmam/${to}`);
  const addB = await pgmamOnB(b, ['repo', 'add', o.repo, '--s3-endpoint', endpoint, '--s3-bucket', rgw.bucket, '--s3-key-file', '/etc/pgmam/s3.key', '--ca-file', '/etc/pgmam/ca.crt', '--path', o.path, '--attach-new', 'no']);
  if (addB.code !== 0) throw new Error(`repo add on B: ${addB.stderr}`);
  return { rgw, b, endpoint };
}
