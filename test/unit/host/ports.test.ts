// What holds a port against a new postmaster (host/facts portHolder, choosePort): a socket and lock
// file a killed postmaster left behind hold nothing, since the next postmaster replaces them.
import { describe, expect, it } from 'vitest';
import { choosePort, portHolder } from '../../../src/host/facts.js';
import { fakeContext } from '../fakes.js';

const SOCK = '/var/run/postgresql/.s.PGSQL.5440';

describe('portHolder', () => {
  it('a TCP listener holds the port', async () => {
    const { ctx } = fakeContext();
    expect(await portHolder(ctx, new Set([5440]), 5440)).toBe('something is listening on it');
  });

  it('a Unix socket that answers holds the port', async () => {
    const { ctx, fs } = fakeContext();
    fs.listening.add(SOCK);
    expect(await portHolder(ctx, new Set(), 5440)).toBe(`something answers on its Unix socket ${SOCK}`);
  });

  it("a socket lock file naming a running process holds the port (postgres would refuse to start)", async () => {
    const { ctx, fs } = fakeContext(); // the fake host's running process is 4242
    fs.files.set(SOCK, '');
    fs.files.set(`${SOCK}.lock`, '4242\n/var/lib/postgresql/15/app1\n1796243399\n5440\n/var/run/postgresql\n');
    expect(await portHolder(ctx, new Set(), 5440)).toBe(`${SOCK}.lock names running process 4242`);
  });

  it("a single-user backend's negated PID counts as its PID", async () => {
    const { ctx, fs } = fakeContext();
    fs.files.set(`${SOCK}.lock`, '-4242\n/var/lib/postgresql/15/app1\n');
    expect(await portHolder(ctx, new Set(), 5440)).toBe(`${SOCK}.lock names running process 4242`);
  });

  it('a socket and lock file left by a killed postmaster hold nothing', async () => {
    const { ctx, fs } = fakeContext();
    fs.files.set(SOCK, '');
    fs.files.set(`${SOCK}.lock`, '2431\n/var/lib/postgresql/15/gone\n');
    expect(await portHolder(ctx, new Set(), 5440)).toBeUndefined();
  });

  it('an unreadable or garbled lock file holds nothing', async () => {
    const { ctx, fs } = fakeContext();
    fs.files.set(`${SOCK}.lock`, 'garbage\n');
    expect(await portHolder(ctx, new Set(), 5440)).toBeUndefined();
  });
});

describe('choosePort', () => {
  const range = (ctx: ReturnType<typeof fakeContext>['ctx']) => ({ ...ctx, config: { ...ctx.config, 'port-min': 5440, 'port-max': 5443 } });

  it('skips ports a cluster configures, a listener holds or a live lock names; takes a stale socket', async () => {
    const { ctx, fs } = fakeContext();
    fs.files.set('/var/run/postgresql/.s.PGSQL.5442.lock', '4242\n');
    fs.files.set('/var/run/postgresql/.s.PGSQL.5443', '');
    fs.files.set('/var/run/postgresql/.s.PGSQL.5443.lock', '2431\n');
    const clusters = [{ version: '15', name: 'app1', port: 5440 }] as Parameters<typeof choosePort>[1];
    expect(await choosePort(range(ctx), clusters, new Set([5441]), undefined)).toEqual({ port: 5443, portConfiguredBy: [], portHeldBy: undefined });
  });

  it('an asked port keeps what holds it, for the guard', async () => {
    const { ctx } = fakeContext();
    const clusters = [{ version: '15', name: 'app1', port: 5441 }] as Parameters<typeof choosePort>[1];
    expect(await choosePort(range(ctx), clusters, new Set([5441]), 5441)).toEqual({ port: 5441, portConfiguredBy: ['15/app1'], portHeldBy: 'something is listening on it' });
  });

  it('no port left: undefined, nothing holding', async () => {
    const { ctx } = fakeContext();
    expect(await choosePort(range(ctx), [], new Set([5440, 5441, 5442, 5443]), undefined)).toEqual({ port: undefined, portConfiguredBy: [], portHeldBy: undefined });
  });
});
