/**
 * Snapshots for `writeSnapshot` / `getEventsSince`: the tree read as
 * @parcel/watcher's brute-force backend reads it on Linux (each path's
 * modification time in nanoseconds and whether it is a directory, symlinks
 * not followed, ignored paths skipped), its snapshot file format (so either
 * library reads the other's files), and the comparison of two trees.
 */
import * as fs from 'node:fs';
import { FanotifyError, errnoName } from '../errors';
import { EventList, type Event } from './events';
import type { IgnoreList } from './options';

/** Path → modification time (ns) and whether it is a directory. */
export type Tree = Map<string, { mtime: bigint; isDir: boolean }>;

/** The root as a directory, or the error @parcel/watcher gives (a FanotifyError here). */
export async function checkRoot(root: string): Promise<fs.BigIntStats> {
  let st: fs.BigIntStats;
  try {
    st = await fs.promises.lstat(root, { bigint: true });
  } catch (err) {
    throw systemError(err, root);
  }
  // Like fts with FTS_PHYSICAL: a symlink as the root is not a directory.
  if (!st.isDirectory()) {
    throw new FanotifyError('InvalidPath', `Not a directory: ${root}`, { code: 'ENOTDIR', errno: -20, syscall: 'lstat', path: root });
  }
  return st;
}

/** Reads the tree under `root` (which it includes), leaving out what `ignore` says. */
export async function readTree(root: string, ignore: IgnoreList): Promise<Tree> {
  const st = await checkRoot(root);
  const tree: Tree = new Map();
  if (ignore.isIgnored(root)) return tree;
  tree.set(root, { mtime: st.mtimeNs, isDir: true });
  let dirs = [root];
  while (dirs.length > 0) {
    const next: string[] = [];
    for (const dir of dirs) {
      let names: string[];
      try {
        names = await fs.promises.readdir(dir);
      } catch (err) {
        if (vanished(err)) continue;
        throw systemError(err, dir);
      }
      const paths = names.map((name) => `${dir}/${name}`).filter((p) => !ignore.isIgnored(p));
      const stats = await Promise.all(
        paths.map((p) =>
          fs.promises.lstat(p, { bigint: true }).catch((err: unknown) => {
            if (vanished(err)) return null;
            throw systemError(err, p);
          }),
        ),
      );
      paths.forEach((p, i) => {
        const s = stats[i];
        if (!s) return;
        tree.set(p, { mtime: s.mtimeNs, isDir: s.isDirectory() });
        if (s.isDirectory()) next.push(p);
      });
    }
    dirs = next;
  }
  return tree;
}

/** @parcel/watcher's format: the count, then `<byte length><path><mtime> <isDir>` per line. */
export function formatSnapshot(tree: Tree): Buffer {
  const parts: string[] = [`${tree.size}\n`];
  for (const [p, { mtime, isDir }] of tree) parts.push(`${Buffer.byteLength(p)}${p}${mtime} ${isDir ? 1 : 0}\n`);
  return Buffer.from(parts.join(''));
}

/** Reads a snapshot file; a file in another format is an InvalidArgument. */
export async function readSnapshot(file: string): Promise<Tree> {
  let data: Buffer;
  try {
    data = await fs.promises.readFile(file);
  } catch (err) {
    const e = systemError(err, file);
    // @parcel/watcher's message, then the path.
    throw new FanotifyError(e.kind, `Unable to open snapshot file: ${strerror(err)}: ${file}`, { code: e.code, errno: e.errno, syscall: 'open', path: file, cause: err });
  }
  let at = 0;
  const bad = (): FanotifyError => new FanotifyError('InvalidArgument', `not a snapshot file (byte ${at} is not what writeSnapshot writes): ${file}`, { path: file });
  const skipSpace = (): void => {
    while (at < data.length && (data[at] === 0x20 || data[at] === 0x0a || data[at] === 0x09 || data[at] === 0x0d)) at++;
  };
  const number = (): bigint => {
    skipSpace();
    const start = at;
    while (at < data.length && data[at]! >= 0x30 && data[at]! <= 0x39) at++;
    if (at === start) throw bad();
    return BigInt(data.toString('latin1', start, at));
  };
  const tree: Tree = new Map();
  const count = number();
  for (let i = 0n; i < count; i++) {
    const length = Number(number());
    if (at + length > data.length) throw bad();
    const p = data.toString('utf8', at, at + length);
    at += length;
    const mtime = number();
    const isDir = number();
    if (isDir > 1n) throw bad();
    tree.set(p, { mtime, isDir: isDir === 1n });
  }
  return tree;
}

/**
 * What changed from `before` to `after`, as @parcel/watcher's DirTree
 * decides: new paths are creates, vanished ones deletes, and a file (not a
 * directory) whose modification time differs an update.
 */
export function changes(before: Tree, after: Tree): Event[] {
  const list = new EventList();
  for (const [p, now] of after) {
    const then = before.get(p);
    if (then === undefined) list.create(p);
    else if (then.mtime !== now.mtime && !then.isDir && !now.isDir) list.update(p);
  }
  for (const p of before.keys()) {
    if (!after.has(p)) list.remove(p);
  }
  return list.take(false) as Event[];
}

function vanished(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function strerror(err: unknown): string {
  const code = (err as { code?: string }).code;
  const messages: Record<string, string> = {
    ENOENT: 'No such file or directory',
    ENOTDIR: 'Not a directory',
    EACCES: 'Permission denied',
    ELOOP: 'Too many levels of symbolic links',
    EISDIR: 'Is a directory',
  };
  return (code && messages[code]) ?? (err as Error).message;
}

/** A failed system call on `p` as a FanotifyError, with @parcel/watcher's wording first. */
export function systemError(err: unknown, p: string): FanotifyError {
  const e = err as NodeJS.ErrnoException;
  const code = e.code ?? (typeof e.errno === 'number' ? errnoName(-e.errno) : undefined);
  const kind = code === 'ENOENT' || code === 'ENOTDIR' ? 'InvalidPath' : code === 'EACCES' || code === 'EPERM' ? 'PermissionDenied' : 'Io';
  return new FanotifyError(kind, `${strerror(err)}: ${p}`, { code, errno: e.errno, syscall: e.syscall, path: p, cause: err });
}
