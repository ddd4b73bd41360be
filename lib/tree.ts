/**
 * Filesystem facts that recursive watches need: which mounts lie inside a
 * tree (each needs its own filesystem mark), and which directories a tree
 * holds (unprivileged mode marks each one). Synchronous on purpose: they run
 * inside addWatch and the reader's hand-over, where order matters.
 */
import { isUtf8 } from 'node:buffer';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** `child` is `root` or lies below it. */
export function isUnder(child: string, root: string): boolean {
  if (root === '/') return child.startsWith('/');
  return child === root || (child.startsWith(root) && child[root.length] === '/');
}

/** /proc/self/mountinfo escapes space, tab, newline and backslash as octal. */
function unescapeMountPath(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/**
 * The mount points strictly inside `root`, one per filesystem that is not
 * already the root's (the root's own filesystem mark covers those).
 */
export function mountsInside(root: string): string[] {
  let info: string;
  try {
    info = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const seen = new Set<number>();
  try {
    seen.add(fs.statSync(root).dev);
  } catch {
    return [];
  }
  const mounts: string[] = [];
  for (const line of info.split('\n')) {
    const mountPoint = line.split(' ')[4];
    if (!mountPoint) continue;
    const p = unescapeMountPath(mountPoint);
    if (p === root || !isUnder(p, root)) continue;
    try {
      const dev = fs.statSync(p).dev;
      if (!seen.has(dev)) {
        seen.add(dev);
        mounts.push(p);
      }
    } catch {
      // unmounted meanwhile, or hidden from us
    }
  }
  return mounts.sort();
}

/**
 * The id of the mount `p` lies on (where its mount marks go): the last
 * mounted of the deepest mount points above it. Undefined if unknown.
 */
export function mountIdOf(p: string): string | undefined {
  let info: string;
  try {
    info = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return undefined;
  }
  const real = realPath(p);
  let best: string | undefined;
  let depth = -1;
  for (const line of info.split('\n')) {
    const fields = line.split(' ');
    if (fields.length < 5) continue;
    const mountPoint = unescapeMountPath(fields[4]);
    if (!isUnder(real, mountPoint) || mountPoint.length < depth) continue;
    depth = mountPoint.length;
    best = fields[0];
  }
  return best;
}

/**
 * `root` and every directory below it, parents first; symbolic links are not
 * followed. Marks are placed by string path, so a directory whose name is not
 * UTF-8 (which no string names) is left out, with what lies below it.
 */
export function directoriesUnder(root: string): string[] {
  const dirs = [root];
  for (let i = 0; i < dirs.length; i++) {
    let entries: Array<fs.Dirent<Buffer>>;
    try {
      entries = fs.readdirSync(dirs[i], { withFileTypes: true, encoding: 'buffer' });
    } catch {
      continue; // vanished or unreadable: nothing to mark below it
    }
    for (const entry of entries) {
      if (entry.isDirectory() && isUtf8(entry.name)) dirs.push(path.join(dirs[i], entry.name.toString('utf8')));
    }
  }
  return dirs;
}

/** The entries of a directory as [name as bytes, isDirectory]; empty if it is gone. */
export function entriesOf(dir: string): Array<[Buffer, boolean]> {
  try {
    return fs.readdirSync(dir, { withFileTypes: true, encoding: 'buffer' }).map((e) => [e.name, e.isDirectory()] as [Buffer, boolean]);
  } catch {
    return [];
  }
}

/** The path with symbolic links resolved, or the path itself if that fails. */
export function realPath(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return p;
  }
}
