import { describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/errors.js';
import { parseClusterRef, parseName, parsePort } from '../../src/names.js';

describe('names and ports', () => {
  it.each(['app1', 'a', 'shop_eu_2', `a${'b'.repeat(47)}`])('accepts %j', (n) => expect(parseName(n)).toBe(n));
  it.each(['../x', 'a;b', 'App1', '1app', `a${'b'.repeat(48)}`, '', '_a', 'a-b', 'a b'])('refuses %j with a usage error', (n) => {
    expect(() => parseName(n)).toThrow(expect.objectContaining({ exitCode: ExitCode.usage }));
  });
  it.each([['1024', 1024], ['5432', 5432], ['65535', 65535]])('accepts port %s', (p, n) => expect(parsePort(p)).toBe(n));
  it.each(['80', '1023', '65536', '70000', 'abc', '', '5432x', '-1', '54.3'])('refuses port %j', (p) => {
    expect(() => parsePort(p)).toThrow(expect.objectContaining({ exitCode: ExitCode.usage }));
  });
  it('reads 15/app1 and app1', () => {
    expect(parseClusterRef('15/app1')).toEqual({ version: '15', name: 'app1' });
    expect(parseClusterRef('app1')).toEqual({ version: undefined, name: 'app1' });
    expect(() => parseClusterRef('15/App')).toThrow();
  });
});
