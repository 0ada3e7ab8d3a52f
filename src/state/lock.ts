// Per-cluster locks, so two pgmam processes never change one cluster at once.
import type { HostFs } from '../host-fs.js';
import type { Logger } from 'pino';
import { ownerAlive, type Liveness } from './journal.js';

export interface LockHolder {
  pid: number;
  command: string;
  startedAt: string;
  /** Process groups of its children: the lock is stale only when the pid and all of these are gone. */
  groups?: number[];
}

export const lockPath = (locksDir: string, name: string) => `${locksDir}/${name}.lock`;

export async function readLock(fs: HostFs, locksDir: string, name: string): Promise<LockHolder | undefined> {
  const text = await fs.readText(lockPath(locksDir, name));
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as LockHolder;
  } catch {
    return { pid: 0, command: 'unknown', startedAt: '' };
  }
}

export class LockHeldError extends Error {
  constructor(
    readonly cluster: string,
    readonly holder: LockHolder,
  ) {
    super(`cluster ${cluster} is locked by ${holderText(holder)}`);
  }
}

/** "pgmam pitr (pid 41, child process groups 42, since …)": the groups say why a dead pid still holds it. */
export const holderText = (h: LockHolder) =>
  `pgmam ${h.command} (pid ${h.pid}${h.groups?.length ? `, child process groups ${h.groups.join(', ')}` : ''}, since ${h.startedAt})`;

export interface LockDeps {
  fs: HostFs;
  log: Logger;
  locksDir: string;
  pid: number;
  host: Liveness;
  now(): Date;
}

const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));

/**
 * Takes the lock (an exclusive create), taking over a stale one (its process and children are gone)
 * with a log line. A takeover happens only under a second exclusive file, `<lock>.takeover`, and
 * re-reads the lock under it: two processes that both saw the stale lock cannot both remove it and
 * both hold the new one. Returns the release function.
 */
export async function acquireLock(d: LockDeps, name: string, command: string): Promise<() => Promise<void>> {
  await d.fs.mkdirp(d.locksDir, { mode: 0o755 });
  const file = lockPath(d.locksDir, name);
  const guard = `${file}.takeover`;
  const me: LockHolder = { pid: d.pid, command, startedAt: d.now().toISOString() };
  const release = async () => {
    const holder = await readLock(d.fs, d.locksDir, name);
    if (holder?.pid === d.pid) await d.fs.rm(file);
  };
  for (let attempt = 0; attempt < 50; attempt++) {
    if (await d.fs.createExclusive(file, JSON.stringify(me), 0o644)) return release;
    const seen = await d.fs.readText(file);
    const holder = await readLock(d.fs, d.locksDir, name);
    if (seen === undefined) continue; // released meanwhile: try again
    if (holder && ownerAlive(d.host, holder)) throw new LockHeldError(name, holder);
    if (!(await d.fs.createExclusive(guard, JSON.stringify(me), 0o644))) {
      // Another process is taking it over: wait, then look again; a guard left by a dead process goes.
      const g = await d.fs.readText(guard);
      const gHolder = g ? (JSON.parse(g) as LockHolder) : undefined;
      if (gHolder && !ownerAlive(d.host, gHolder)) await d.fs.rm(guard);
      else await sleep(20);
      continue;
    }
    try {
      // Still the stale lock we saw (not one a live process took meanwhile): only then remove it.
      if ((await d.fs.readText(file)) === seen) {
        d.log.warn({ event: 'lock-stale', cluster: name, holder }, `taking over stale lock on ${name} (pid ${holder?.pid ?? '?'} and its children are gone)`);
        await d.fs.rm(file);
        if (await d.fs.createExclusive(file, JSON.stringify(me), 0o644)) return release;
      }
    } finally {
      await d.fs.rm(guard);
    }
  }
  throw new Error(`could not take the lock on ${name}`);
}

/** Rewrites a held lock with the process groups of the children now running. */
export async function recordLockGroups(fs: HostFs, locksDir: string, name: string, holder: LockHolder): Promise<void> {
  await fs.writeFileAtomic(lockPath(locksDir, name), JSON.stringify(holder), { mode: 0o644 });
}

export const lockDeps = (ctx: { fs: HostFs; log: Logger; paths: { locksDir: string }; host: Liveness & { pid: number }; clock: { now(): Date } }): LockDeps => ({
  fs: ctx.fs,
  log: ctx.log,
  locksDir: ctx.paths.locksDir,
  pid: ctx.host.pid,
  host: ctx.host,
  now: () => ctx.clock.now(),
});
