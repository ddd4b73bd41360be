/**
 * The kernel decision cache (`allow({ cache: true })`): after an allow, an
 * ignore mark for the permission events on that file, in the group that
 * reported it, so the kernel answers later accesses alone until the file is
 * modified (fanotify(7), "the ignore mask as a cache"). This file decides
 * the mark's flags and bits, keeps the entries it asked for, and reads back
 * from the kernel which of them it really holds.
 */
import * as fs from 'node:fs';
import { capability } from './capabilities';
import { EventClass, FAN } from './constants';
import { fromNative } from './errors';
import type { Marks } from './marks';
import type { NativeReader } from './native';

const CACHEABLE = EventClass.PERMISSION | EventClass.PRE_CONTENT;

interface Entry {
  group: number;
  /** The file's path when cached, to remove the mark by; null when it had none. */
  path: string | null;
  /** The ignore bits asked for. */
  bits: number;
  /** The mark flags it was added with (the ignore flag and SURV_MODIFY), to repeat on removal. */
  flags: number;
}

/** "ino:sdev" in hex, as /proc/self/fdinfo of a group writes an inode mark (and native ignoreMark returns). */
function objectKey(st: fs.BigIntStats): string {
  const dev = st.dev;
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return `${st.ino.toString(16)}:${((major << 20n) | minor).toString(16)}`;
}

/** The objectKey of the file at `path` now; undefined if it cannot be found. */
function keyAt(path: string): string | undefined {
  try {
    return objectKey(fs.statSync(path, { bigint: true }));
  } catch {
    return undefined;
  }
}

export class DecisionCache {
  private readonly reader: NativeReader;
  private readonly marks: Marks;
  /** By `${group}:${objectKey}`. */
  private readonly entries = new Map<string, Entry>();
  /**
   * Entries the kernel dropped (modified, evicted) stay here until size()
   * looks; add() looks once the table reaches this, so it stays bounded by
   * about twice what the kernel holds (amortised: one fdinfo read per
   * doubling).
   */
  private pruneAt = PRUNE_MIN;
  /** Per group index: the permission bits its watches cover (see watchesChanged). */
  private covered: Map<number, number> | undefined;

  constructor(reader: NativeReader, marks: Marks) {
    this.reader = reader;
    this.marks = marks;
  }

  /** The watches changed: the bits each group covers are computed again on the next add. */
  watchesChanged(): void {
    this.covered = undefined;
  }

  private coveredBits(group: number): number {
    if (!this.covered) {
      this.covered = new Map();
      for (const record of this.marks.records.values()) {
        if (record.scope === 'ignore') continue;
        for (const placement of record.placements.values()) {
          const index = this.marks.groups.get(placement.kind);
          if (index === undefined) continue;
          this.covered.set(index, (this.covered.get(index) ?? 0) | (placement.bits & CACHEABLE));
        }
      }
    }
    return this.covered.get(group) ?? 0;
  }

  /**
   * Called before the allow is written, while the event is pending: adds the
   * ignore mark through the event's fd. Evictable where the kernel knows it
   * (the cache never pins an inode in memory); with SURV_MODIFY for a
   * pre-content event (the file is filled: a write does not empty it again,
   * and the group's own read-write event fd would otherwise count as a
   * writer, for which the kernel adds no ignore mark). Directories are not
   * cached (an ignore mask on a directory also applies to its children's
   * events). Returns whether the kernel took the request; it may still
   * create no mark (a file open for writing elsewhere, see README), which
   * `size` tells.
   */
  add(id: number, group: number, mask: number, isDirectory: boolean, path: string | Buffer | null): boolean {
    if (isDirectory) return false;
    const bits = this.coveredBits(group) || (mask & CACHEABLE);
    if (bits === 0) return false;
    let flags = capability('markIgnore') ? FAN.FAN_MARK_IGNORE : FAN.FAN_MARK_IGNORED_MASK;
    if (mask & FAN.FAN_PRE_ACCESS) flags |= FAN.FAN_MARK_IGNORED_SURV_MODIFY;
    let result = this.reader.ignoreMark(id, FAN.FAN_MARK_ADD | flags | (capability('evictable') ? FAN.FAN_MARK_EVICTABLE : 0), bits);
    // EEXIST: the file has a mark of this group already that is not
    // evictable (a watch on the file itself); it keeps the inode anyway.
    if (result === EEXIST && capability('evictable')) result = this.reader.ignoreMark(id, FAN.FAN_MARK_ADD | flags, bits);
    // Not pending any more, or refused (ENOSPC: the marks limit): the allow
    // goes out uncached, which is only slower.
    if (typeof result !== 'string') return false;
    const where = typeof path === 'string' ? path : path !== null && Buffer.isBuffer(path) ? path.toString('utf8') : null;
    this.entries.set(`${group}:${result}`, { group, path: where, bits, flags });
    if (this.entries.size >= this.pruneAt) this.pruneAt = Math.max(PRUNE_MIN, 2 * this.size());
    return true;
  }

  /**
   * The entries the kernel holds now: the group's inode marks (from
   * /proc/self/fdinfo) that still have the cached bits in their ignore mask.
   * Entries the kernel dropped (the file was modified, its inode evicted,
   * or no mark was ever made) are forgotten here.
   */
  size(): number {
    if (this.entries.size === 0) return 0;
    const held = new Set<string>();
    const groups = new Set<number>();
    for (const entry of this.entries.values()) groups.add(entry.group);
    for (const group of groups) {
      const fd = this.reader.groupFd(group);
      if (fd < 0) continue;
      let text: string;
      try {
        text = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'latin1');
      } catch {
        continue;
      }
      for (const m of text.matchAll(/^fanotify ino:([0-9a-f]+) sdev:([0-9a-f]+) .*?ignored_mask:([0-9a-f]+)/gm)) {
        const key = `${group}:${m[1]}:${m[2]}`;
        const entry = this.entries.get(key);
        if (entry && (parseInt(m[3], 16) & entry.bits) !== 0) held.add(key);
      }
    }
    for (const key of this.entries.keys()) if (!held.has(key)) this.entries.delete(key);
    return held.size;
  }

  /**
   * Drops cache entries: those of the file at `path`, or every one (of the
   * given groups only, when `groups` is set). The kernel's mark is found by
   * the path the file had when cached; a file renamed since keeps its entry
   * (and is counted by size()) until it is modified or evicted (see README).
   */
  clear(path?: string, groups?: Set<number>): void {
    const only = path === undefined ? undefined : keyAt(path);
    if (path !== undefined && only === undefined) return;
    for (const [key, entry] of [...this.entries]) {
      if (groups && !groups.has(entry.group)) continue;
      if (only !== undefined && key !== `${entry.group}:${only}`) continue;
      // An entry whose file cannot be found by its path any more (renamed,
      // deleted while open) stays: cacheSize counts it while the kernel
      // holds it, until the file is modified or evicted.
      const target = only !== undefined ? path : entry.path;
      if (target === undefined || target === null) continue;
      if (only === undefined) {
        const now = keyAt(target);
        if (now === undefined || `${entry.group}:${now}` !== key) continue;
      }
      try {
        this.reader.mark(entry.group, FAN.FAN_MARK_REMOVE | entry.flags, entry.bits, FAN.AT_FDCWD, target);
      } catch (err) {
        // Gone already (evicted, deleted, or never made): nothing to drop.
        const e = fromNative(err, { action: 'removing a decision-cache mark from', path: target });
        if (e.code !== 'ENOENT') throw e;
      }
      this.entries.delete(key);
    }
  }

  /** The groups closed: their marks went with them. */
  forget(): void {
    this.entries.clear();
  }
}

const EEXIST = 17;
const PRUNE_MIN = 4096;
