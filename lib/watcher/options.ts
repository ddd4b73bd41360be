/**
 * The options of `fanotify/watcher`: their validation, and @parcel/watcher's
 * `ignore` list turned into the same matcher its native code runs (paths,
 * picomatch globs and flag-less RegExps, matched as std::regex_match would).
 */
import * as path from 'node:path';
import { invalidArgument } from '../errors';

// The same two packages @parcel/watcher's wrapper.js uses, so a pattern means what it means there.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const picomatch = require('picomatch') as { makeRe(glob: string, options: { dot: boolean; windows: boolean }): RegExp };
// eslint-disable-next-line @typescript-eslint/no-require-imports
const isGlob = require('is-glob') as (value: string) => boolean;

/** @parcel/watcher's backend names, and `'fanotify'`: accepted, and ignored (fanotify is always used). */
export type BackendType = 'fanotify' | 'fs-events' | 'watchman' | 'inotify' | 'kqueue' | 'windows' | 'brute-force' | 'wasm';
const BACKENDS: ReadonlySet<string> = new Set<BackendType>(['fanotify', 'fs-events', 'watchman', 'inotify', 'kqueue', 'windows', 'brute-force', 'wasm']);

/** The options every function takes, as in @parcel/watcher. */
export interface Options {
  /**
   * What to leave out: paths (absolute, or relative to the watched
   * directory; a directory with everything below it), glob patterns
   * (picomatch, matched on paths relative to the watched directory), and
   * RegExps without flags (tested on those relative paths).
   */
  ignore?: (string | RegExp)[];
  /** Accepted for compatibility and ignored: fanotify is always the backend. */
  backend?: BackendType;
}

/** Extensions of `subscribe` beyond @parcel/watcher; both off by default. */
export interface SubscribeOptions extends Options {
  /**
   * Report a rename inside the watched tree as one event
   * `{ type: 'rename', oldPath, path }` instead of a `delete` of the old
   * path and a `create` of the new (Linux 5.17, FAN_RENAME). A move into or
   * out of the tree stays a `create` or a `delete`.
   */
  reportRenames?: boolean;
  /** Give each event the `pid` of the process that made the path's latest change in the batch (0 when unknown). */
  reportPid?: boolean;
}

/** The ignore list as the native matcher of @parcel/watcher holds it. */
export class IgnoreList {
  /** Absolute paths: each is ignored with everything below it. */
  readonly paths: string[] = [];
  /** Regular expressions over paths relative to the root, full-string matches. */
  readonly globs: RegExp[] = [];

  constructor(readonly root: string) {}

  /** Whether events about `p` (an absolute path) are left out. */
  isIgnored(p: string): boolean {
    for (const ignored of this.paths) {
      if (p === ignored || p.startsWith(`${ignored}/`)) return true;
    }
    if (this.globs.length === 0 || !p.startsWith(`${this.root}/`)) return false;
    const relative = p.slice(this.root.length + 1);
    return this.globs.some((glob) => glob.test(relative));
  }

  /** Identifies the list, for finding a subscription again (unsubscribe). */
  key(): string {
    return JSON.stringify([[...new Set(this.paths)].sort(), [...new Set(this.globs.map((g) => g.source))].sort()]);
  }
}

/** Validated options. */
export interface Normalized {
  ignore: IgnoreList;
  reportRenames: boolean;
  reportPid: boolean;
}

/**
 * Checks `opts` and builds the ignore list for `root` (already absolute) as
 * @parcel/watcher's wrapper does; `dir` is the directory as the caller gave
 * it (relative ignore paths resolve against it). The extensions are for
 * `subscribe` only: elsewhere they are an InvalidArgument.
 */
export function normalizeOptions(fn: string, dir: string, root: string, opts: unknown, subscribing: boolean): Normalized {
  const ignore = new IgnoreList(root);
  if (opts === undefined || opts === null) return { ignore, reportRenames: false, reportPid: false };
  if (typeof opts !== 'object' || Array.isArray(opts)) throw invalidArgument(`${fn}: options must be an object, got ${describe(opts)}`);
  const known = subscribing ? ['ignore', 'backend', 'reportRenames', 'reportPid'] : ['ignore', 'backend'];
  for (const key of Object.keys(opts)) {
    if (!known.includes(key)) {
      const extension = key === 'reportRenames' || key === 'reportPid';
      throw invalidArgument(`${fn}: unknown option '${key}'${extension ? ` (it applies to subscribe only)` : ''}; known: ${known.join(', ')}`);
    }
  }
  const o = opts as SubscribeOptions;
  if (o.backend !== undefined && (typeof o.backend !== 'string' || !BACKENDS.has(o.backend))) {
    throw invalidArgument(`${fn}: backend must be one of ${[...BACKENDS].join(', ')} (it is ignored: fanotify is used), got ${describe(o.backend)}`);
  }
  for (const key of ['reportRenames', 'reportPid'] as const) {
    if (o[key] !== undefined && typeof o[key] !== 'boolean') throw invalidArgument(`${fn}: ${key} must be a boolean, got ${describe(o[key])}`);
  }
  if (o.ignore !== undefined) {
    if (!Array.isArray(o.ignore)) throw invalidArgument(`${fn}: ignore must be an array of paths, glob patterns and RegExps, got ${describe(o.ignore)}`);
    for (const value of o.ignore as unknown[]) {
      if (value instanceof RegExp) {
        if (value.flags !== '') {
          // @parcel/watcher's own message, word for word.
          throw invalidArgument(`RegExp ignore patterns must not have flags (got /${value.source}/${value.flags}). Flags are not supported by the native matcher.`);
        }
        // JavaScript's .test() semantics (a match anywhere), as @parcel/watcher wraps it.
        ignore.globs.push(fullMatch(`^[\\s\\S]*(?:${value.source})[\\s\\S]*$`));
      } else if (typeof value === 'string' && value !== '') {
        if (isGlob(value)) ignore.globs.push(fullMatch(picomatch.makeRe(value, { dot: true, windows: false }).source));
        else ignore.paths.push(path.resolve(dir, value));
      } else {
        throw invalidArgument(`${fn}: each ignore entry must be a non-empty path or glob string, or a RegExp, got ${describe(value)}`);
      }
    }
  }
  return { ignore, reportRenames: o.reportRenames === true, reportPid: o.reportPid === true };
}

/** std::regex_match: the whole string must match. */
function fullMatch(source: string): RegExp {
  return new RegExp(`^(?:${source})$`);
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null || Array.isArray(value)) return value === null ? 'null' : 'an array';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}
