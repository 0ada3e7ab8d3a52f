// One racer of the lock race test (lock-race.test.ts): in each round, waits for the start file, tries
// to take a lock the test left stale, reports won or lost, and holds what it won until the round ends.
import { existsSync, writeFileSync } from 'node:fs';
import pino from 'pino';
import { nodeFs } from '../../../src/host-fs.js';
import { acquireLock } from '../../../src/state/lock.js';

const [locksDir, syncDir, id, roundsArg] = process.argv.slice(2) as [string, string, string, string];
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const deps = { fs: nodeFs, log: pino({ level: 'silent' }), locksDir, pid: process.pid, host: { isProcessAlive: alive, isGroupAlive: () => false }, now: () => new Date() };
const spin = (file: string) => {
  while (!existsSync(file)) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
};
for (let r = 0; r < Number(roundsArg); r++) {
  spin(`${syncDir}/go-${r}`);
  let result = 'lost';
  try {
    await acquireLock(deps, 'race', `racer ${id}`);
    result = 'won';
  } catch {
    // held by the other racer
  }
  writeFileSync(`${syncDir}/${result}-${r}-${id}`, '');
  spin(`${syncDir}/end-${r}`);
}
