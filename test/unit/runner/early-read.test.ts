// The early reads of list and check: the same result shape as the execa runner, real tiny processes.
import { describe, expect, it } from 'vitest';
import { ChildGroups } from '../../../src/runner/children.js';
import { startEarlyRead } from '../../../src/runner/early-read.js';

const uid = process.getuid?.() ?? 0;
const read = (argv: string[]) => ({ argv, effect: 'read' as const });

describe('startEarlyRead', () => {
  it('returns stdout without its final newline, stderr and the exit code, and forgets the child once it ended', async () => {
    const children = new ChildGroups();
    const r = await startEarlyRead(read(['printf', 'a\\nb\\n']), uid, process.env, children);
    expect(r).toMatchObject({ argv: ['printf', 'a\\nb\\n'], exitCode: 0, stdout: 'a\nb', stderr: '' });
    expect(children.current()).toEqual([]);
  });
  it('a failing read keeps its exit code and stderr', async () => {
    const r = await startEarlyRead(read(['ls', '/nonexistent-pgmam-dir']), uid, process.env, new ChildGroups());
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('nonexistent-pgmam-dir');
  });
  it('a missing program is exit code 127, as the execa runner reports it', async () => {
    const r = await startEarlyRead(read(['pgmam-no-such-program']), uid, process.env, new ChildGroups());
    expect(r.exitCode).toBe(127);
    expect(r.stderr).toContain('ENOENT');
  });
});
