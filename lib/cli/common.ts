/**
 * What the `fanotify` commands share: exit codes, argument errors, loading
 * the library, event names, path globs, and turning errors into one clear
 * line on stderr with the right exit code.
 */
import * as path from 'node:path';
import * as util from 'node:util';
import type * as Library from '../index';

/** The exit codes of every command (also listed by `fanotify --help` and in the README). */
export const EXIT = Object.freeze({
  /** Done (also after Ctrl-C / SIGTERM). */
  OK: 0,
  /** A runtime error: an I/O error, a limit reached, anything unexpected. */
  ERROR: 1,
  /** Bad command line: unknown command or option, bad value, unknown event name. */
  USAGE: 2,
  /** Not permitted: the message names the capability (usually CAP_SYS_ADMIN: run as root). */
  NOT_PERMITTED: 3,
  /** Not supported: kernel too old, built without fanotify, filesystem cannot report, feature not available. */
  NOT_SUPPORTED: 4,
  /** No such path (or not a directory where one was needed). */
  NO_SUCH_PATH: 5,
});

/** A mistake on the command line: reported with a pointer to --help, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** An error the command already explained: print the message, exit with `code`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/**
 * The library, loaded when a command needs it (not for --help), so that a
 * missing addon or a non-Linux system is reported as "not supported".
 */
export function loadLibrary(): typeof Library {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('../index') as typeof Library;
}

/** Exit code for an error thrown by the library or by a command. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof UsageError) return EXIT.USAGE;
  if (err instanceof CliError) return err.code;
  const kind = (err as { kind?: unknown } | null)?.kind;
  switch (kind) {
    case 'InvalidArgument':
      return EXIT.USAGE;
    case 'PermissionDenied':
      return EXIT.NOT_PERMITTED;
    case 'NotSupported':
      return EXIT.NOT_SUPPORTED;
    case 'InvalidPath':
      return EXIT.NO_SUCH_PATH;
    default:
      return EXIT.ERROR;
  }
}

/** Prints `err` as one or two lines on stderr and returns the exit code. */
export function report(command: string, err: unknown): number {
  const code = exitCodeFor(err);
  const message = err instanceof Error ? err.message : String(err);
  const prefix = command ? `fanotify ${command}` : 'fanotify';
  process.stderr.write(`${prefix}: ${message}\n`);
  if (code === EXIT.USAGE) process.stderr.write(`Run 'fanotify ${command ? command + ' ' : ''}--help' for usage.\n`);
  if (code === EXIT.NOT_PERMITTED && !/CAP_[A-Z_]+/.test(message)) {
    process.stderr.write('This needs CAP_SYS_ADMIN (run as root) or read access to the path.\n');
  }
  if (code === EXIT.ERROR && process.env.FANOTIFY_DEBUG && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n');
  return code;
}

/** Event names for --events: the MaskFlags names in lower case (`close_write` or `close-write`). */
export const NOTIFICATION_EVENTS = [
  'access',
  'modify',
  'attrib',
  'close_write',
  'close_nowrite',
  'close',
  'open',
  'open_exec',
  'moved_from',
  'moved_to',
  'move',
  'create',
  'delete',
  'delete_self',
  'move_self',
  'rename',
  'fs_error',
  'all',
] as const;

const PERMISSION_EVENTS = ['open_perm', 'access_perm', 'open_exec_perm', 'pre_access'];

/** Turns "create,modify" into a mask; unknown or permission event names are usage errors. */
export function parseEvents(list: string, MaskFlags: typeof Library.MaskFlags): number {
  let mask = 0;
  const names = list.split(',').map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) throw new UsageError('--events needs at least one event name');
  for (const raw of names) {
    const name = raw.toLowerCase().replace(/-/g, '_');
    if (PERMISSION_EVENTS.includes(name)) {
      throw new UsageError(
        `'${raw}' is a permission event: this command only observes (see examples/permission_monitor.ts to allow or deny accesses)`,
      );
    }
    if (!(NOTIFICATION_EVENTS as readonly string[]).includes(name)) {
      throw new UsageError(`unknown event '${raw}'; known events: ${NOTIFICATION_EVENTS.join(', ')}`);
    }
    mask |= name === 'all' ? MaskFlags.ALL_EVENTS : (MaskFlags as Record<string, number>)[name.toUpperCase()];
  }
  return mask;
}

export type MarkName = 'inode' | 'mount' | 'filesystem';

export function parseMark(value: string | undefined): MarkName {
  if (value === undefined) return 'inode';
  if (value === 'inode' || value === 'mount' || value === 'filesystem') return value;
  throw new UsageError(`--mark must be inode, mount or filesystem, not '${value}'`);
}

/**
 * The events a command watches when --events is not given. A mount mark
 * cannot report directory-entry or attribute events (a kernel rule), so it
 * gets the file-content ones.
 */
export function defaultEvents(lib: typeof Library, mark: MarkName, wide: boolean): number {
  const M = lib.MaskFlags;
  if (mark === 'mount') return M.OPEN | M.MODIFY | M.CLOSE | (wide ? M.ACCESS : 0);
  const move = lib.capabilities().rename ? M.RENAME : M.MOVE;
  const entries = M.CREATE | M.DELETE | move | M.MODIFY | M.CLOSE_WRITE | M.ATTRIB;
  return wide ? entries | M.OPEN | M.ACCESS | M.CLOSE_NOWRITE : entries;
}

/** Errors filesystems report in FS_ERROR events that libuv has no name for. */
const FS_ERROR_NAMES: Record<number, string> = { 117: 'EUCLEAN', 108: 'ESHUTDOWN', 74: 'EBADMSG' };

/** An FS_ERROR event's error, for a line: `EUCLEAN (errno 117), 2 times`. */
export function describeFsError(error: { errno: number; count: number }): string {
  let name = FS_ERROR_NAMES[error.errno];
  if (!name) {
    const known = error.errno > 0 ? util.getSystemErrorName(-error.errno) : '';
    name = known && !known.startsWith('Unknown') ? known : 'error';
  }
  return `${name} (errno ${error.errno})${error.count > 1 ? `, ${error.count} times` : ''}`;
}

/** A number option: an integer or decimal within [min, max]. */
export function parseNumber(value: string | undefined, option: string, min: number, max = Number.MAX_SAFE_INTEGER, integer = false): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw new UsageError(`${option} must be ${integer ? 'an integer' : 'a number'} from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ' up'}, not '${value}'`);
  }
  return n;
}

/**
 * A path glob: `*` and `?` stay within one path component, `**` spans
 * components, `[abc]` is a character class. A glob without a slash matches
 * any single component (`*.log`, `node_modules`); one with a slash matches
 * the whole path (absolute) or its end at a component boundary (relative).
 */
export function globMatcher(glob: string): (file: string) => boolean {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') {
      if (glob[i + 1] === '*') {
        i++;
        if (glob[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else {
          re += '.*';
        }
      } else {
        re += '[^/]*';
      }
    } else if (c === '?') {
      re += '[^/]';
    } else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) {
        re += '\\[';
      } else {
        const body = glob.slice(i + 1, end).replace(/\\/g, '\\\\');
        re += `[${body.startsWith('!') ? '^' + body.slice(1) : body}]`;
        i = end;
      }
    } else {
      re += c.replace(/[.+^${}()|\\]/g, '\\$&');
    }
  }
  if (!glob.includes('/')) {
    const one = new RegExp(`^${re}$`);
    return (file) => file.split('/').some((part) => part !== '' && one.test(part));
  }
  const whole = glob.startsWith('/') ? new RegExp(`^${re}$`) : new RegExp(`(?:^|/)${re}$`);
  return (file) => whole.test(file);
}

/** Absolute, normalised paths from the command line. */
export function resolvePaths(paths: string[]): string[] {
  return paths.map((p) => path.resolve(p));
}

/** HH:MM:SS.mmm in local time. */
export function clock(date: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(date.getHours())}:${p(date.getMinutes())}:${p(date.getSeconds())}.${p(date.getMilliseconds(), 3)}`;
}

/**
 * Without privileges, fanotify needs Linux 5.13 (FID reporting for normal
 * users). Says so clearly instead of an EPERM from fanotify_init.
 */
export function checkKernel(lib: typeof Library): void {
  const caps = lib.capabilities();
  if (!caps.privileged && !caps.unprivileged) {
    throw new CliError(
      `kernel too old: watching as a normal user needs Linux 5.13 or later (this kernel is ${caps.kernel}); run as root (CAP_SYS_ADMIN) instead`,
      EXIT.NOT_SUPPORTED,
    );
  }
  if (!caps.fid && !caps.privileged) {
    throw new CliError(`this kernel (${caps.kernel}) cannot report file ids to fanotify (Linux 5.1); run as root`, EXIT.NOT_SUPPORTED);
  }
}

/**
 * Calls `stop` once on SIGINT, SIGTERM or a closed stdout (EPIPE, as when
 * piped into `head`). Returns a function that removes the handlers.
 */
export function onStop(stop: (why: string) => void): () => void {
  let stopped = false;
  const once = (why: string) => {
    if (stopped) return;
    stopped = true;
    stop(why);
  };
  const onSigint = () => once('SIGINT');
  const onSigterm = () => once('SIGTERM');
  const onStdoutError = (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') once('EPIPE');
    else throw err;
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  process.stdout.on('error', onStdoutError);
  return () => {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
    process.stdout.off('error', onStdoutError);
  };
}

/** Pads or cuts `text` to `width` columns (cutting in the middle, keeping both ends of a path). */
export function fit(text: string, width: number): string {
  if (text.length <= width) return text.padEnd(width);
  if (width <= 1) return text.slice(0, width);
  const keep = width - 1;
  const head = Math.ceil(keep / 3);
  return text.slice(0, head) + '…' + text.slice(text.length - (keep - head));
}
