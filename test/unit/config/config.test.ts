import { describe, expect, it } from 'vitest';
import { configSource, parseConfig } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/errors.js';

const src = { path: '/etc/pgmam/pgmam.conf', explicit: false };

describe('configuration', () => {
  it('every key has a default; the default file is optional', () => {
    const c = parseConfig(src, undefined);
    expect(c).toMatchObject({ 'compress-type': 'lz4', 'process-max': 2, 'port-min': 5433, 'stanza-dir': '/etc/pgbackrest/conf.d', 'state-dir': '/var/lib/pgmam', 'repo-path': '' });
  });
  it('an explicitly named file must exist', () => {
    expect(() => parseConfig({ path: '/x.conf', explicit: true }, undefined)).toThrow(ConfigError);
  });
  it('reads values', () => {
    const c = parseConfig(src, 'pg-version = 15\nport-min = 6000\nport-max = 6100\nrepo-path = /srv/repo\ncompress-type = zst\n');
    expect(c).toMatchObject({ 'pg-version': '15', 'port-min': 6000, 'port-max': 6100, 'repo-path': '/srv/repo', 'compress-type': 'zst' });
  });
  it('lists every unknown key and bad value at once (exit 3)', () => {
    let err: ConfigError | undefined;
    try {
      parseConfig(src, 'colour = blue\nport-min = abc\nprocess-max = 0\nrepo-path = relative\n[extra]\nx=1\n');
    } catch (e) {
      err = e as ConfigError;
    }
    expect(err?.exitCode).toBe(3);
    const text = err!.lines.join('\n');
    for (const k of ['colour: unknown key', 'port-min', 'process-max', 'repo-path', '[extra]']) expect(text).toContain(k);
  });
  it('data-root is an absolute template naming the cluster (%c), or empty for createcluster.conf', () => {
    expect(parseConfig(src, 'data-root = /srv/pg/%v/%c\n')['data-root']).toBe('/srv/pg/%v/%c');
    expect(parseConfig(src, undefined)['data-root']).toBe('');
    for (const bad of ['srv/%v/%c', '/srv/pg/%v']) expect(() => parseConfig(src, `data-root = ${bad}\n`)).toThrow(ConfigError);
  });
  it('port-min may not exceed port-max', () => {
    expect(() => parseConfig(src, 'port-min = 7000\nport-max = 6000\n')).toThrow(ConfigError);
  });
  it('--config wins over PGMAM_CONFIG, which wins over the default', () => {
    expect(configSource('/a', '/b')).toEqual({ path: '/a', explicit: true });
    expect(configSource(undefined, '/b')).toEqual({ path: '/b', explicit: true });
    expect(configSource(undefined, undefined).explicit).toBe(false);
  });
});
