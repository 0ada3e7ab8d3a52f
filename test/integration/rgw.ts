// A real S3 server for a test file: Ceph's RADOS Gateway from Debian (rgw.sh), started once per file
// on ports of the file's worker, stopped by the PIDs it recorded. A missing Ceph is a failure, not a skip.
import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { TEST_ROOT } from './helpers.js';

const SCRIPT = resolve(import.meta.dirname, 'rgw.sh');
const WORKER = Math.max(1, Number(process.env['VITEST_POOL_ID'] ?? 1));

export interface Rgw {
  dir: string;
  /** host:port of its HTTPS endpoint */
  endpoint: string;
  port: number;
  bucket: string;
  ca: string;
  /** A key file as `repo add --s3-key-file` takes it (0600 root). */
  keyFile: string;
  access: string;
  secret: string;
  startMs: number;
}

export async function startRgw(): Promise<Rgw> {
  const dir = `${TEST_ROOT}/rgw`;
  const base = 27000 + ((WORKER - 1) % 9) * 10;
  const t0 = performance.now();
  const r = await execa(SCRIPT, ['start', dir, String(base)], { reject: false, stdin: 'ignore' });
  if (r.exitCode !== 0) throw new Error(`the test S3 server (Ceph RGW) did not start: ${r.stderr}\n${r.stdout}`);
  const env = Object.fromEntries(readFileSync(`${dir}/env`, 'utf8').trim().split('\n').map((l) => l.split('=', 2) as [string, string]));
  return { dir, endpoint: env['endpoint']!, port: Number(env['port']), bucket: env['bucket']!, ca: env['ca']!, keyFile: env['key']!, access: env['access']!, secret: env['secret']!, startMs: Math.round(performance.now() - t0) };
}

export async function stopRgw(rgw: Rgw | undefined): Promise<number> {
  if (!rgw) return 0;
  const t0 = performance.now();
  await execa(SCRIPT, ['stop', rgw.dir], { reject: false, stdin: 'ignore' });
  return Math.round(performance.now() - t0);
}

/**
 * Another radosgw on the same RADOS cluster, HTTPS on `addr:port` (default 127.0.0.1; another address
 * gets a certificate naming it, for a second host): an outage test stops it without touching the file's first gateway.
 */
export async function startGateway(rgw: Rgw, name: string, port: number, addr = '127.0.0.1'): Promise<void> {
  const r = await execa(SCRIPT, ['gateway', rgw.dir, name, String(port), addr], { reject: false, stdin: 'ignore' });
  if (r.exitCode !== 0) throw new Error(`radosgw ${name} did not start: ${r.stderr}\n${r.stdout}`);
}

/** KILLs that gateway (an abrupt outage: connections refused) and waits until it is gone. */
export async function stopGateway(rgw: Rgw, name: string): Promise<void> {
  await execa(SCRIPT, ['gateway-stop', rgw.dir, name], { reject: false, stdin: 'ignore' });
}
