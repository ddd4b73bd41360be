/** `fanotify watch PATH...`: one line per event, human-readable or JSON Lines. */
import { parseArgs } from 'node:util';
import type { FanotifyEvent, WatchOptions } from '../index';
import {
  EXIT,
  UsageError,
  checkKernel,
  clock,
  defaultEvents,
  describeFsError,
  globMatcher,
  loadLibrary,
  onStop,
  parseEvents,
  parseMark,
  parseNumber,
  resolvePaths,
} from './common';

export const summary = 'print one line per event (human-readable, or JSON Lines with --json)';

export const usage = `Usage: fanotify watch PATH... [options]
       fanotify watch --mounts [PATH...] [options]

Prints one line per event on PATH (a file or a directory: its entries too):
time, event types, path, pid and command name. Stops on Ctrl-C / SIGTERM.

Options:
  -e, --events LIST     comma-separated events to watch (default:
                        create,delete,rename (move before Linux 5.17),
                        modify,close_write,attrib;
                        with --mark mount: open,modify,close). Known:
                        access, modify, attrib, close_write, close_nowrite,
                        close, open, open_exec, moved_from, moved_to, move,
                        create, delete, delete_self, move_self, rename,
                        fs_error (filesystem errors: with --mark filesystem,
                        Linux 5.16), all
  -r, --recursive       the whole tree under each directory
      --mounts          also mounts attached, detached and moved in this
                        command's mount namespace (root, Linux 6.15): one
                        line each with the mount point and the mount id
  -m, --mark TYPE       inode (default), mount or filesystem (those two: root)
  -j, --json            JSON Lines: one object per event (for jq and log pipelines)
      --pid N           only events caused by process N
      --comm NAME       only events from processes whose command name is NAME
      --exclude GLOB    skip paths matching GLOB (repeatable); '*.log' matches
                        any path component, 'build/**' a relative tail
  -n, --count N         exit after N events
      --duration S      exit after S seconds
  -h, --help            this help

Events caused by this command itself are not shown.`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      events: { type: 'string', short: 'e' },
      recursive: { type: 'boolean', short: 'r' },
      mounts: { type: 'boolean' },
      mark: { type: 'string', short: 'm' },
      json: { type: 'boolean', short: 'j' },
      pid: { type: 'string' },
      comm: { type: 'string' },
      exclude: { type: 'string', multiple: true },
      count: { type: 'string', short: 'n' },
      duration: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(usage + '\n');
    return EXIT.OK;
  }
  if (positionals.length === 0 && !values.mounts) throw new UsageError('watch needs at least one PATH (or --mounts)');
  const mark = parseMark(values.mark);
  const pid = parseNumber(values.pid, '--pid', 1, 2 ** 31, true);
  const count = parseNumber(values.count, '--count', 1, Number.MAX_SAFE_INTEGER, true);
  const duration = parseNumber(values.duration, '--duration', 0.001, 2 ** 31 / 1000);
  if (values.comm !== undefined && values.comm === '') throw new UsageError('--comm needs a command name');
  const excludes = (values.exclude ?? []).map(globMatcher);

  const lib = loadLibrary();
  const mask = values.events !== undefined ? parseEvents(values.events, lib.MaskFlags) : defaultEvents(lib, mark, false);
  checkKernel(lib);

  const afan = new lib.AsyncFanotify({ processInfo: true });
  const watchOptions: WatchOptions = { mark };
  if (values.recursive) watchOptions.recursive = true;
  try {
    for (const p of resolvePaths(positionals)) await afan.addWatch(p, mask, watchOptions);
    if (values.mounts) await afan.addWatch('/proc/self/ns/mnt', lib.MaskFlags.MNT_ATTACH | lib.MaskFlags.MNT_DETACH, { mark: 'mntns' });
  } catch (err) {
    await afan.close();
    throw err;
  }

  // On stderr, so that stdout holds events only: ready, and how to stop.
  const watched = [...positionals, ...(values.mounts ? ['mounts'] : [])];
  process.stderr.write(`fanotify watch: watching ${watched.join(' ')}; Ctrl-C to stop\n`);
  const json = values.json === true;
  let shown = 0;
  let timer: NodeJS.Timeout | undefined;
  const stop = () => void afan.close();
  const removeHandlers = onStop(stop);
  if (duration !== undefined) timer = setTimeout(stop, duration * 1000);
  afan.on('error', (err) => process.stderr.write(`fanotify watch: ${err.message}\n`));
  afan.on('warning', (message) => process.stderr.write(`fanotify watch: ${message}\n`));

  try {
    for await (const ev of afan) {
      if (ev.pid === process.pid && !ev.isOverflow()) continue;
      if (pid !== undefined && ev.pid !== pid && !ev.isOverflow()) continue;
      if (values.comm !== undefined && ev.process?.comm !== values.comm && !ev.isOverflow()) continue;
      if (excludes.length > 0 && excluded(ev, excludes)) continue;
      process.stdout.write((json ? jsonLine(ev) : humanLine(ev)) + '\n');
      if (ev.isOverflow()) process.stderr.write('fanotify watch: the kernel queue overflowed: some events were lost\n');
      if (count !== undefined && ++shown >= count) break;
    }
  } finally {
    if (timer) clearTimeout(timer);
    removeHandlers();
    await afan.close();
  }
  return EXIT.OK;
}

function excluded(ev: FanotifyEvent, excludes: Array<(p: string) => boolean>): boolean {
  const paths = [ev.path, ev.oldPath, ev.newPath].filter((p): p is string => p !== null);
  return paths.length > 0 && paths.every((p) => excludes.some((match) => match(p)));
}

/**
 * `12:00:01.234  CREATE        /srv/data/new.txt  pid 4242 touch`;
 * a filesystem error: `12:00:01.234  FS_ERROR      /mnt/disk/dir  EUCLEAN (errno 117)  pid 4242 cat`;
 * a mount: `12:00:01.234  MNT_ATTACH    /mnt/usb  mount 2147483731  pid 4242 mount`.
 */
export function humanLine(ev: FanotifyEvent, now = new Date()): string {
  const types = ev.isOverflow() ? 'OVERFLOW' : ev.types().join('|');
  const where =
    ev.oldPath !== null && ev.newPath !== null && ev.oldPath !== ev.newPath
      ? `${ev.oldPath} -> ${ev.newPath}`
      : (ev.path ?? (ev.name !== null ? `?/${ev.name}` : '-'));
  const who = ev.isOverflow() ? '' : `  pid ${ev.pid} ${ev.process?.comm ?? '?'}`;
  const error = ev.error ? `  ${describeFsError(ev.error)}` : '';
  const mount = ev.mountId !== null ? `  mount ${ev.mountId}` : '';
  return `${clock(now)}  ${types.padEnd(12)}  ${where}${error}${mount}${who}`;
}

/** One JSON object: the time, then the event's own JSON (types, path, pid, process...). */
export function jsonLine(ev: FanotifyEvent, now = new Date()): string {
  return JSON.stringify({ time: now.toISOString(), ...ev.toJSON(), comm: ev.process?.comm ?? null });
}
