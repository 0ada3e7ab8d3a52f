// File-system access for commands, behind an interface so planners and guards stay pure and testable.
// Root never follows a link another user can plant (rule 3): in a directory root does not own, files
// and directories are made by a child running as the directory's owner; in a root-owned directory the
// temporary file is created exclusively and without following links, its owner and mode set through
// the descriptor.
import { runAsOwner } from './runner/execa-runner.js';
import { createHash, randomBytes } from 'node:crypto';
import { constants, createReadStream, lstatSync, readdirSync, readFileSync, readlinkSync, statSync, promises as fsp } from 'node:fs';
import { connect } from 'node:net';
import * as path from 'node:path';

const tmpName = (file: string) => `${file}.pgmam-tmp-${randomBytes(8).toString('hex')}`;

/** The owner of `dir` when this process is root and the directory (or the link at its name) is another user's. */
async function foreignOwner(dir: string): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const st = await fsp.lstat(dir).catch(() => undefined);
  if (!st || st.uid === 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.split(':')[2] === String(st.uid));
  if (!line) throw new Error(`${dir} belongs to uid ${st.uid}, which has no user name: pgmam does not write there as root`);
  return line.split(':')[0];
}

/** As `user`: rename the finished temporary file over `file` (a link at that name is replaced, not followed), then sync the directory. */
async function placeAs(user: string, tmp: string, file: string): Promise<void> {
  await runAsOwner(user, ['mv', '-f', '-T', tmp, file]);
  await runAsOwner(user, ['sync', path.dirname(file)]);
}

export interface FileStat {
  uid: number;
  gid: number;
  mode: number;
  size: number;
  mtimeMs: number;
  isDirectory: boolean;
}

export interface Owner {
  uid: number;
  gid: number;
}

export interface HostFs {
  /** undefined when the file does not exist. */
  readText(file: string): Promise<string | undefined>;
  /** The bytes from `offset` to the end (a log followed as it grows), and where the end is; undefined when the file does not exist. */
  readFrom(file: string, offset: number): Promise<{ text: string; end: number } | undefined>;
  exists(file: string): Promise<boolean>;
  /** [] when the directory does not exist. */
  readdir(dir: string): Promise<string[]>;
  stat(file: string): Promise<FileStat | undefined>;
  /** Free bytes on the filesystem that holds `file` (or its nearest existing ancestor). */
  freeBytes(file: string): Promise<number>;
  /** The filesystem that holds `file` (or its nearest existing ancestor): its device and kind (xfs, btrfs, ext4, … or the magic number in hex). */
  filesystem(file: string): Promise<{ device: number; type: string }>;
  /** Write to a temporary name, fsync, rename: readers never see a half-written file. */
  writeFileAtomic(file: string, data: string, opts: { mode: number; owner?: Owner }): Promise<void>;
  /** Create exclusively; false when the file already exists. */
  createExclusive(file: string, data: string, mode: number): Promise<boolean>;
  mkdirp(dir: string, opts: { mode: number; owner?: Owner }): Promise<void>;
  rm(file: string, opts?: { recursive?: boolean }): Promise<void>;
  /** Same filesystem only: a rename, never a copy. */
  rename(from: string, to: string): Promise<void>;
  symlink(target: string, file: string): Promise<void>;
  readlink(file: string): Promise<string | undefined>;
  isExecutable(file: string): Promise<boolean>;
  /** Every regular file below `dir`, as paths relative to it ([] when it does not exist). */
  walk(dir: string): Promise<string[]>;
  /**
   * Bytes under `dir` as `du -sb` counts them (every entry's own size, links not followed), without a
   * child process; undefined when it does not exist. Entries vanishing meanwhile (a running cluster) are skipped.
   */
  treeBytes(dir: string): Promise<number | undefined>;
  /** Copy one file (parents created with `owner`), keeping its mode; then fsync. */
  copyFile(from: string, to: string, owner?: Owner): Promise<void>;
  /** Copy many files (paths relative to both directories), keeping mode and time; the caller verifies them. */
  copyFiles(fromDir: string, toDir: string, rels: string[], owner?: Owner): Promise<void>;
  sha256(file: string): Promise<string>;
  /** A Unix socket is at `file` and something accepts a connection on it (a server listening there). */
  socketAccepts(file: string): Promise<boolean>;
}

const isMissing = (e: unknown) => (e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR';

/** Make a create, rename or removal in `dir` survive a power loss (the file's own fsync does not cover its name). */
async function syncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** statfs(2) magic numbers of the filesystems pgmam tells apart (reflink: xfs, btrfs). */
const FS_TYPES: Record<number, string> = { 0x58465342: 'xfs', 0x9123683e: 'btrfs', 0xef53: 'ext4', 0x01021994: 'tmpfs', 0x794c7630: 'overlay', 0x2fc12fc1: 'zfs' };

// The reads below are synchronous system calls behind the async interface: pgmam's reads are small
// files and directory listings, where the thread pool's round trips (open, stat, read, close, each a
// hop) cost more than the read (list of 20 clusters reads some 200 files: bench/scale.mjs).
export const nodeFs: HostFs = {
  async socketAccepts(file) {
    const st = await fsp.stat(file).catch(() => undefined);
    if (!st?.isSocket()) return false;
    return new Promise((done) => {
      const sock = connect({ path: file });
      const end = (ok: boolean) => {
        sock.destroy();
        done(ok);
      };
      sock.setTimeout(2000, () => end(false));
      sock.once('connect', () => end(true));
      sock.once('error', () => end(false));
    });
  },
  async readText(file) {
    try {
      return readFileSync(file, 'utf8');
    } catch (e) {
      if (isMissing(e)) return undefined;
      throw e;
    }
  },
  async readFrom(file, offset) {
    let h: fsp.FileHandle;
    try {
      h = await fsp.open(file, 'r');
    } catch (e) {
      if (isMissing(e)) return undefined;
      throw e;
    }
    try {
      const size = (await h.stat()).size;
      // A file rotated or truncated meanwhile: read it from its start.
      const from = offset > size ? 0 : offset;
      const buf = Buffer.alloc(size - from);
      if (buf.length) await h.read(buf, 0, buf.length, from);
      return { text: buf.toString('utf8'), end: size };
    } finally {
      await h.close();
    }
  },
  async exists(file) {
    try {
      // (throwIfNoEntry: a missing file is an answer, not an exception with its stack trace to build)
      return lstatSync(file, { throwIfNoEntry: false }) !== undefined;
    } catch (e) {
      if (isMissing(e)) return false;
      throw e;
    }
  },
  async readdir(dir) {
    try {
      return readdirSync(dir).sort();
    } catch (e) {
      if (isMissing(e)) return [];
      throw e;
    }
  },
  async stat(file) {
    try {
      const s = statSync(file, { throwIfNoEntry: false });
      if (!s) return undefined;
      return { uid: s.uid, gid: s.gid, mode: s.mode & 0o7777, size: s.size, mtimeMs: s.mtimeMs, isDirectory: s.isDirectory() };
    } catch (e) {
      if (isMissing(e)) return undefined;
      throw e;
    }
  },
  async filesystem(file) {
    let p = path.resolve(file);
    for (;;) {
      try {
        const [st, fs] = await Promise.all([fsp.stat(p), fsp.statfs(p)]);
        return { device: st.dev, type: FS_TYPES[fs.type] ?? `0x${fs.type.toString(16)}` };
      } catch (e) {
        if (!isMissing(e) || p === '/') throw e;
        p = path.dirname(p);
      }
    }
  },
  async freeBytes(file) {
    let p = path.resolve(file);
    for (;;) {
      try {
        const s = await fsp.statfs(p);
        return s.bavail * s.bsize;
      } catch (e) {
        if (!isMissing(e) || p === '/') throw e;
        p = path.dirname(p);
      }
    }
  },
  async writeFileAtomic(file, data, { mode, owner }) {
    const dir = path.dirname(file);
    const user = await foreignOwner(dir);
    if (user) {
      // Its owner writes it: a link planted in the directory can only lead where that user may write.
      const tmp = tmpName(file);
      await runAsOwner(user, ['dd', `of=${tmp}`, 'conv=fsync', 'status=none'], data);
      await runAsOwner(user, ['chmod', mode.toString(8), tmp]);
      await placeAs(user, tmp, file);
      return;
    }
    const tmp = tmpName(file);
    const fh = await fsp.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
    try {
      await fh.writeFile(data);
      await fh.chmod(mode);
      if (owner) await fh.chown(owner.uid, owner.gid);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, file);
    await syncDir(dir);
  },
  async createExclusive(file, data, mode) {
    // Written whole under a name of its own, then linked into place: link() fails when the name exists
    // (a link planted there included) and never shows a reader an empty or half-written file — an
    // O_EXCL create does, and a lock read in that instant looked stale (two racers both held it).
    const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.new`;
    const fh = await fsp.open(tmp, 'wx', mode);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await fsp.link(tmp, file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e;
    } finally {
      await fsp.rm(tmp, { force: true });
    }
    await syncDir(path.dirname(file));
    return true;
  },
  async mkdirp(dir, { mode, owner }) {
    // Missing parents get 0755 (so postgres can reach a repository below them); only the leaf
    // gets `mode` and `owner`.
    const parent = path.dirname(dir);
    if (parent !== dir && !(await nodeFs.exists(parent))) await nodeFs.mkdirp(parent, { mode: 0o755 });
    const user = await foreignOwner(parent);
    if (user) {
      // In another user's directory, that user makes it (and owns it).
      if (!(await nodeFs.exists(dir))) {
        await runAsOwner(user, ['mkdir', '-m', mode.toString(8), dir]);
        await runAsOwner(user, ['sync', parent]);
      }
      return;
    }
    try {
      await fsp.mkdir(dir, { mode });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return;
      throw e;
    }
    // Under a root-owned parent no one else can swap the new directory for a link before these.
    await fsp.chmod(dir, mode);
    if (owner) await fsp.chown(dir, owner.uid, owner.gid);
    await syncDir(parent);
  },
  async rm(file, opts) {
    await fsp.rm(file, { force: true, recursive: opts?.recursive ?? false });
    await syncDir(path.dirname(file)).catch(() => undefined);
  },
  async rename(from, to) {
    await fsp.rename(from, to);
    await syncDir(path.dirname(to));
    if (path.dirname(from) !== path.dirname(to)) await syncDir(path.dirname(from));
  },
  async symlink(target, file) {
    await fsp.symlink(target, file);
  },
  async readlink(file) {
    try {
      return lstatSync(file, { throwIfNoEntry: false })?.isSymbolicLink() ? readlinkSync(file) : undefined;
    } catch (e) {
      if (isMissing(e) || (e as NodeJS.ErrnoException).code === 'EINVAL') return undefined;
      throw e;
    }
  },
  async walk(dir) {
    const out: string[] = [];
    const visit = async (rel: string): Promise<void> => {
      let entries;
      try {
        entries = await fsp.readdir(path.join(dir, rel), { withFileTypes: true });
      } catch (e) {
        if (isMissing(e)) return;
        throw e;
      }
      for (const e of entries) {
        const r = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) await visit(r);
        else if (e.isFile()) out.push(r);
      }
    };
    await visit('');
    return out.sort();
  },
  async treeBytes(dir) {
    const top = await fsp.lstat(dir).catch((e) => {
      if (isMissing(e)) return undefined;
      throw e;
    });
    if (!top) return undefined;
    let total = top.size;
    const visit = async (d: string): Promise<void> => {
      const entries = await fsp.readdir(d).catch((e) => {
        if (isMissing(e)) return [];
        throw e;
      });
      for (const name of entries) {
        const p = path.join(d, name);
        const st = await fsp.lstat(p).catch(() => undefined);
        if (!st) continue;
        total += st.size;
        if (st.isDirectory()) await visit(p);
      }
    };
    if (top.isDirectory()) await visit(dir);
    return total;
  },
  async copyFile(from, to, owner) {
    // Missing parents get the copy's owner too (an export repository belongs to postgres).
    const missing: string[] = [];
    for (let p = path.dirname(to); !(await nodeFs.exists(p)); p = path.dirname(p)) missing.unshift(p);
    for (const p of missing) await nodeFs.mkdirp(p, { mode: 0o750, owner });
    const st = await fsp.stat(from);
    const tmp = tmpName(to);
    const user = await foreignOwner(path.dirname(to));
    if (user) {
      await runAsOwner(user, ['cp', '--preserve=mode,timestamps', '--', from, tmp]);
      await runAsOwner(user, ['sync', tmp]);
      await placeAs(user, tmp, to);
      return;
    }
    await fsp.copyFile(from, tmp, constants.COPYFILE_EXCL);
    const fh = await fsp.open(tmp, constants.O_RDWR | constants.O_NOFOLLOW);
    try {
      await fh.chmod(st.mode & 0o7777);
      if (owner) await fh.chown(owner.uid, owner.gid);
      await fh.sync();
      await fh.utimes(st.atimeMs / 1000, st.mtimeMs / 1000);
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, to);
    await syncDir(path.dirname(to));
  },
  async copyFiles(fromDir, toDir, rels, owner) {
    if (!rels.length) return;
    await nodeFs.mkdirp(toDir, { mode: 0o750, owner });
    const user = await foreignOwner(toDir);
    if (!user) {
      for (const r of rels) await nodeFs.copyFile(`${fromDir}/${r}`, `${toDir}/${r}`, owner);
      return;
    }
    // In another user's directory, that user copies (a child per file would take minutes for a
    // repository): cp as that user, in batches; a half-copied file has the wrong size or time and is
    // copied again next time; then the filesystem is synced.
    for (let i = 0; i < rels.length; i += 500)
      await runAsOwner(user, ['cp', '--preserve=mode,timestamps', '--parents', '-t', toDir, '--', ...rels.slice(i, i + 500)], undefined, fromDir);
    await runAsOwner(user, ['sync', '-f', toDir]);
  },
  sha256(file) {
    return new Promise((resolve, reject) => {
      const h = createHash('sha256');
      createReadStream(file)
        .on('data', (d) => h.update(d))
        .on('error', reject)
        .on('end', () => resolve(h.digest('hex')));
    });
  },
  async isExecutable(file) {
    try {
      await fsp.access(file, constants.X_OK);
      return (await fsp.stat(file)).isFile();
    } catch {
      return false;
    }
  },
};

/**
 * The filesystem seen while gathering facts and under --dry-run: reads pass through, every write
 * throws before it happens (a command that writes outside its steps is a bug).
 */
export function readOnlyFs(inner: HostFs): HostFs {
  const refuse = (what: string) => async (): Promise<never> => {
    throw new Error(`internal: a write was attempted while gathering facts or under --dry-run: ${what}`);
  };
  return {
    readText: (f) => inner.readText(f),
    readFrom: (f, o) => inner.readFrom(f, o),
    exists: (f) => inner.exists(f),
    readdir: (d) => inner.readdir(d),
    stat: (f) => inner.stat(f),
    freeBytes: (f) => inner.freeBytes(f),
    filesystem: (f) => inner.filesystem(f),
    readlink: (f) => inner.readlink(f),
    isExecutable: (f) => inner.isExecutable(f),
    walk: (d) => inner.walk(d),
    treeBytes: (d) => inner.treeBytes(d),
    sha256: (f) => inner.sha256(f),
    socketAccepts: (f) => inner.socketAccepts(f),
    writeFileAtomic: (f) => refuse(`write ${f}`)(),
    createExclusive: (f) => refuse(`create ${f}`)(),
    mkdirp: (d) => refuse(`mkdir ${d}`)(),
    rm: (f) => refuse(`rm ${f}`)(),
    rename: (a, b) => refuse(`mv ${a} ${b}`)(),
    symlink: (_t, f) => refuse(`ln -s ${f}`)(),
    copyFile: (a, b) => refuse(`cp ${a} ${b}`)(),
    copyFiles: (a, b) => refuse(`cp ${a}/… ${b}`)(),
  };
}
