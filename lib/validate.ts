/**
 * Argument checks that run before any system call, so bad input throws a
 * clear FanotifyError and changes no state.
 */
import { isUtf8 } from 'node:buffer';
import * as path from 'node:path';
import { FanotifyError, invalidArgument } from './errors';

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return `${typeof value} ${String(value)}`;
  return typeof value;
}

/**
 * A path to mark: a non-empty string (or file: URL, or Buffer of UTF-8)
 * without NUL bytes, made absolute against the cwd. Marks are placed by
 * string path, so a Buffer that is not UTF-8 is refused rather than read as
 * another path.
 */
export function checkPath(value: unknown, what = 'path'): string {
  if (typeof value !== 'string' && !(value instanceof URL) && !Buffer.isBuffer(value)) {
    throw new FanotifyError('InvalidPath', `${what} must be a string, got ${describe(value)}`);
  }
  let p: string;
  if (value instanceof URL) {
    if (value.protocol !== 'file:') throw new FanotifyError('InvalidPath', `${what} must be a file: URL, got ${value.href}`);
    p = decodeURIComponent(value.pathname);
  } else if (Buffer.isBuffer(value)) {
    if (!isUtf8(value)) {
      throw new FanotifyError('InvalidPath', `${what} is a Buffer that is not UTF-8, which is not supported for marks: watch a directory above it`);
    }
    p = value.toString('utf8');
  } else {
    p = value;
  }
  if (p.length === 0) throw new FanotifyError('InvalidPath', `${what} must not be empty`);
  if (p.includes('\0')) throw new FanotifyError('InvalidPath', `${what} must not contain NUL bytes`);
  if (path.isAbsolute(p)) return path.normalize(p);
  let cwd: string;
  try {
    cwd = process.cwd();
  } catch (cause) {
    throw new FanotifyError('InvalidPath', `${what} ${JSON.stringify(p)} is relative and the current directory no longer exists`, { cause });
  }
  return path.resolve(cwd, p);
}

export function checkInteger(value: unknown, what: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw invalidArgument(`${what} must be an integer, got ${describe(value)}`);
  }
  if (value < min || value > max) throw invalidArgument(`${what} must be between ${min} and ${max}, got ${value}`);
  return value;
}

/** A bit mask: a non-negative integer using only `known` bits. */
export function checkBits(value: unknown, what: string, known: number, allowZero: boolean): number {
  const bits = checkInteger(value, what, 0, 0xffffffff);
  const unknown = (bits & ~known) >>> 0;
  if (unknown !== 0) throw invalidArgument(`${what} has unknown bits 0x${unknown.toString(16)}`);
  if (!allowZero && bits === 0) throw invalidArgument(`${what} must not be 0`);
  return bits;
}

export function checkBoolean(value: unknown, what: string): boolean {
  if (typeof value !== 'boolean') throw invalidArgument(`${what} must be a boolean, got ${describe(value)}`);
  return value;
}

export function checkOneOf<T extends string>(value: unknown, what: string, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw invalidArgument(`${what} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${describe(value)}`);
  }
  return value as T;
}

/**
 * respond(event, response) of both front ends: an extra argument is an
 * error rather than ignored. `count` is the call's arguments.length.
 */
export function checkRespondArgs(count: number): void {
  if (count > 2) throw invalidArgument(`respond() takes an event and a response, got ${count} arguments`);
}

/**
 * An AbortSignal, checked by its shape as Node does (an `instanceof` test
 * would reject signals of another realm, such as a vm context, or of
 * another copy of the class).
 */
export function checkSignal(value: unknown, what: string): AbortSignal {
  const s = value as { aborted?: unknown; addEventListener?: unknown; removeEventListener?: unknown } | null;
  if (
    s === null ||
    typeof s !== 'object' ||
    typeof s.aborted !== 'boolean' ||
    typeof s.addEventListener !== 'function' ||
    typeof s.removeEventListener !== 'function'
  ) {
    throw invalidArgument(`${what} must be an AbortSignal, got ${describe(value)}`);
  }
  return value as AbortSignal;
}

/**
 * The Response an allow()/deny() call means: its options object (allow:
 * `cache`; deny: `errno`) and nothing more. `args` is the call's arguments
 * after the event, so an extra one is an error rather than ignored.
 */
export function answerFor(allow: boolean, args: ArrayLike<unknown>): { allow: boolean; cache?: boolean; errno?: number } {
  const name = allow ? 'allow' : 'deny';
  if (args.length > 1) throw invalidArgument(`${name}() takes one options object at most, got ${args.length} arguments`);
  const o = checkOptions<{ cache?: boolean; errno?: number }>(args[0], `${name}() options`, allow ? ['cache'] : ['errno']);
  return { ...o, allow };
}

/**
 * An options object: undefined, or a plain object whose keys are all known.
 * An unknown key is an error rather than silently ignored (a typo such as
 * `recursve: true` must not quietly watch less than asked).
 */
export function checkOptions<T extends object>(value: unknown, what: string, known: readonly string[]): Partial<T> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw invalidArgument(`${what} must be an object, got ${describe(value)}`);
  }
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) throw invalidArgument(`${what} has an unknown option '${key}' (known: ${known.join(', ')})`);
  }
  return value as Partial<T>;
}
