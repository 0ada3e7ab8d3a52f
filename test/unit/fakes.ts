// An in-memory host for unit tests of planners, guards and the executor.
import pino from 'pino';
import type { Context } from '../../src/context.js';
import { pathsFrom } from '../../src/context.js';
import { defaultConfig } from '../../src/config/schema.js';
import type { FileStat, HostFs } from '../../src/host-fs.js';
import { ChildGroups } from '../../src/runner/children.js';
import { RecordingRunner } from '../../src/runner/wrappers.js';
import { checkGuards, confirmPlan, executeSteps, withLocks, type ExecuteFlags } from '../../src/plan/executor.js';
import { renderPlan } from '../../src/plan/render.js';
import type { Plan } from '../../src/plan/types.js';

export class MemoryFs implements HostFs {
  files = new Map<string, string>();
  dirs = new Set<string>(['/']);
  writes: string[] = [];
  free = 10 * 1024 ** 3;
  async readText(f: string) {
    return this.files.get(f);
  }
  async readFrom(f: string, offset: number) {
    const t = this.files.get(f);
    return t === undefined ? undefined : { text: t.slice(offset > t.length ? 0 : offset), end: t.length };
  }
  async exists(f: string) {
    return this.files.has(f) || this.dirs.has(f);
  }
  async readdir(d: string) {
    const pre = d.endsWith('/') ? d : `${d}/`;
    return [...new Set([...this.files.keys(), ...this.dirs].filter((p) => p.startsWith(pre)).map((p) => p.slice(pre.length).split('/')[0]!))].sort();
  }
  async stat(f: string): Promise<FileStat | undefined> {
    if (!(await this.exists(f))) return undefined;
    return { uid: 0, gid: 0, mode: 0o644, size: this.files.get(f)?.length ?? 0, mtimeMs: 0, isDirectory: this.dirs.has(f) };
  }
  /** Sockets something listens on (tests add them). */
  listening = new Set<string>();
  async socketAccepts(f: string) {
    return this.listening.has(f);
  }
  async freeBytes() {
    return this.free;
  }
  /** Every path on one filesystem of this kind (tests set it). */
  fsType = 'ext4';
  async filesystem() {
    return { device: 1, type: this.fsType };
  }
  async writeFileAtomic(f: string, data: string) {
    this.writes.push(`write ${f}`);
    this.files.set(f, data);
  }
  async createExclusive(f: string, data: string) {
    if (this.files.has(f)) return false;
    this.files.set(f, data);
    return true;
  }
  async mkdirp(d: string) {
    this.writes.push(`mkdir ${d}`);
    this.dirs.add(d);
  }
  async rm(f: string) {
    this.writes.push(`rm ${f}`);
    this.files.delete(f);
    this.dirs.delete(f);
  }
  async rename(a: string, b: string) {
    this.writes.push(`rename ${a} ${b}`);
    if (this.files.has(a)) this.files.set(b, this.files.get(a)!);
    if (this.dirs.has(a)) this.dirs.add(b);
    this.files.delete(a);
    this.dirs.delete(a);
  }
  async symlink(t: string, f: string) {
    this.writes.push(`symlink ${f}`);
    this.files.set(f, `-> ${t}`);
  }
  async readlink(f: string) {
    const v = this.files.get(f);
    return v?.startsWith('-> ') ? v.slice(3) : undefined;
  }
  async walk(d: string) {
    const pre = d.endsWith('/') ? d : `${d}/`;
    return [...this.files.keys()].filter((f) => f.startsWith(pre)).map((f) => f.slice(pre.length)).sort();
  }
  async treeBytes(d: string) {
    const pre = d.endsWith('/') ? d : `${d}/`;
    const below = [...this.files].filter(([f]) => f.startsWith(pre));
    return below.length ? below.reduce((a, [, v]) => a + v.length, 0) : undefined;
  }
  async copyFile(a: string, b: string) {
    this.writes.push(`copy ${a} ${b}`);
    this.files.set(b, this.files.get(a) ?? '');
  }
  async copyFiles(a: string, b: string, rels: string[]) {
    for (const r of rels) await this.copyFile(`${a}/${r}`, `${b}/${r}`);
  }
  async sha256(f: string) {
    return `sha(${this.files.get(f) ?? ''})`;
  }
  async isExecutable(f: string) {
    return this.files.has(f);
  }
}

export function fakeContext(over: { uid?: number; interactive?: boolean; confirm?: boolean } = {}) {
  const fs = new MemoryFs();
  const runner = new RecordingRunner();
  const out: string[] = [];
  const err: string[] = [];
  const ctx: Context = {
    runner,
    fs,
    clock: { now: () => new Date('2026-11-22T10:00:00Z') },
    log: pino({ level: 'silent' }),
    io: { out: (s) => out.push(s), err: (s) => err.push(s), interactive: over.interactive ?? false },
    prompter: {
      confirm: async () => over.confirm ?? false,
      typeToConfirm: async () => over.confirm ?? false,
      choose: async (_m: string, choices: string[]) => choices[0]!,
      ask: async (_m: string, d: string) => d,
    },
    config: defaultConfig,
    configFile: undefined,
    paths: pathsFrom(defaultConfig),
    host: { uid: over.uid ?? 0, name: 'hosta', systemd: false, path: '/usr/bin', pid: 4242, isProcessAlive: (pid) => pid === 4242, isGroupAlive: () => false, interrupted: () => undefined, pauseBefore: undefined },
    children: new ChildGroups(),
    version: 'test',
  };
  return { ctx, fs, runner, out, err };
}

/** One assembled plan through the executor's parts, as runCommand runs them (guards, dry-run, confirm, lock, steps). */
export async function executePlan(ctx: Context, plan: Plan, flags: ExecuteFlags): Promise<'done' | 'dry-run'> {
  checkGuards(plan);
  if (flags.dryRun) {
    ctx.io.out(renderPlan(plan, ctx.host.uid));
    return 'dry-run';
  }
  await confirmPlan(ctx, plan, flags);
  await withLocks(ctx, plan, () => executeSteps(ctx, plan, flags));
  return 'done';
}

/** What openssl prints for pgmam's CA, a server's key and request, and a signature (fake PEM blocks). */
export const FAKE_PEM = {
  key: '-----BEGIN PRIVATE KEY-----\nS0VZ\n-----END PRIVATE KEY-----\n',
  cert: '-----BEGIN CERTIFICATE-----\nQ0VSVA==\n-----END CERTIFICATE-----\n',
  csr: '-----BEGIN CERTIFICATE REQUEST-----\nQ1NS\n-----END CERTIFICATE REQUEST-----\n',
};
/** The three openssl runs a new cluster's certificate takes (the CA's once, when it is missing). */
export function stubOpenssl(runner: RecordingRunner): RecordingRunner {
  return runner
    .register(/^openssl req -x509 -new -newkey/, { stdout: FAKE_PEM.key + FAKE_PEM.cert })
    .register(/^openssl req -new -newkey/, { stdout: FAKE_PEM.key + FAKE_PEM.csr })
    .register(/^openssl x509 -req/, { stdout: FAKE_PEM.cert });
}
