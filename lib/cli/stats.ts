/** `fanotify stats PATH...`: a live view of the busiest files and processes and of event rates. */
import { parseArgs } from 'node:util';
import type { FanotifyEvent, WatchOptions } from '../index';
import {
  EXIT,
  UsageError,
  checkKernel,
  clock,
  defaultEvents,
  fit,
  globMatcher,
  loadLibrary,
  onStop,
  parseEvents,
  parseMark,
  parseNumber,
  resolvePaths,
} from './common';

export const summary = 'live view of the busiest files and processes and of event rates';

export const usage = `Usage: fanotify stats PATH... [options]

Counts events on PATH and shows the busiest files, the busiest processes
and the event rates, redrawn every interval in a terminal. When stdout is
not a terminal, prints one plain snapshot per interval instead.

Options:
  -i, --interval S      seconds between redraws (default 2)
  -e, --events LIST     events to count (default: every notification event;
                        with --mark mount: open,access,modify,close);
                        names as in 'fanotify watch --help' (fs_error with
                        --mark filesystem: filesystem errors, counted in the
                        header line)
  -r, --recursive       the whole tree under each directory
  -m, --mark TYPE       inode (default), mount or filesystem (those two: root)
      --exclude GLOB    do not count paths matching GLOB (repeatable)
      --top N           rows per table (default 10)
      --duration S      exit after S seconds (after a last snapshot)
  -h, --help            this help

Events caused by this command itself are not counted.`;

interface Counter {
  total: number;
  recent: number;
}

/** What stats has counted so far. */
export class Tally {
  readonly started = Date.now();
  total = 0;
  recent = 0;
  overflows = 0;
  /** Filesystem errors (FS_ERROR events, each counting the errors the kernel merged into it). */
  fsErrors = 0;
  readonly types = new Map<string, Counter>();
  readonly files = new Map<string, Counter>();
  readonly processes = new Map<string, Counter>();
  lastSnapshot = Date.now();

  add(ev: FanotifyEvent): void {
    if (ev.isOverflow()) {
      this.overflows++;
      return;
    }
    this.total++;
    this.recent++;
    if (ev.error) this.fsErrors += ev.error.count;
    for (const type of ev.types()) if (type !== 'ONDIR') bump(this.types, type);
    bump(this.files, ev.newPath ?? ev.path ?? (ev.name !== null ? `?/${ev.name}` : '(unknown)'));
    bump(this.processes, `${ev.pid}\t${ev.process?.comm ?? '?'}`);
  }

  /** The tables as lines; resets the per-interval counts. */
  snapshot(title: string, top: number, width: number): string[] {
    const now = Date.now();
    const seconds = Math.max((now - this.lastSnapshot) / 1000, 0.001);
    const up = Math.max((now - this.started) / 1000, 0.001);
    const rate = (n: number) => (n / seconds).toFixed(1);
    const lines: string[] = [];
    lines.push(`fanotify stats  ${title}  ${clock(new Date(now))}  up ${formatUptime(up)}`);
    lines.push(
      `events: ${this.total} total, ${rate(this.recent)}/s now (last ${seconds.toFixed(1)} s), ` +
        `${(this.total / up).toFixed(1)}/s average, ${this.overflows} overflow${this.overflows === 1 ? '' : 's'}` +
        (this.fsErrors ? `, ${this.fsErrors} filesystem error${this.fsErrors === 1 ? '' : 's'}` : ''),
    );
    lines.push('');
    lines.push('   rate/s     total  event');
    for (const [type, c] of sorted(this.types, top)) lines.push(`${rate(c.recent).padStart(9)} ${String(c.total).padStart(9)}  ${type}`);
    lines.push('');
    lines.push('busiest files');
    lines.push('      now     total  path');
    const pathWidth = Math.max(20, width - 22);
    for (const [file, c] of sorted(this.files, top)) lines.push(`${String(c.recent).padStart(9)} ${String(c.total).padStart(9)}  ${fit(file, pathWidth).trimEnd()}`);
    lines.push('');
    lines.push('busiest processes');
    lines.push('      now     total      pid  command');
    for (const [key, c] of sorted(this.processes, top)) {
      const [pid, comm] = key.split('\t');
      lines.push(`${String(c.recent).padStart(9)} ${String(c.total).padStart(9)} ${pid.padStart(8)}  ${comm}`);
    }
    this.recent = 0;
    for (const map of [this.types, this.files, this.processes]) for (const c of map.values()) c.recent = 0;
    this.lastSnapshot = now;
    return lines;
  }
}

function bump(map: Map<string, Counter>, key: string): void {
  const c = map.get(key);
  if (c) {
    c.total++;
    c.recent++;
  } else {
    map.set(key, { total: 1, recent: 1 });
  }
}

function sorted(map: Map<string, Counter>, top: number): Array<[string, Counter]> {
  return [...map].sort((a, b) => b[1].recent - a[1].recent || b[1].total - a[1].total || (a[0] < b[0] ? -1 : 1)).slice(0, top);
}

function formatUptime(seconds: number): string {
  const s = Math.floor(seconds);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(Math.floor(s / 3600))}:${p(Math.floor(s / 60) % 60)}:${p(s % 60)}`;
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      interval: { type: 'string', short: 'i' },
      events: { type: 'string', short: 'e' },
      recursive: { type: 'boolean', short: 'r' },
      mark: { type: 'string', short: 'm' },
      exclude: { type: 'string', multiple: true },
      top: { type: 'string' },
      duration: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(usage + '\n');
    return EXIT.OK;
  }
  if (positionals.length === 0) throw new UsageError('stats needs at least one PATH');
  const mark = parseMark(values.mark);
  const interval = parseNumber(values.interval, '--interval', 0.05, 86400) ?? 2;
  const top = parseNumber(values.top, '--top', 1, 1000, true) ?? 10;
  const duration = parseNumber(values.duration, '--duration', 0.001, 2 ** 31 / 1000);
  const excludes = (values.exclude ?? []).map(globMatcher);

  const lib = loadLibrary();
  const mask = values.events !== undefined ? parseEvents(values.events, lib.MaskFlags) : defaultEvents(lib, mark, true);
  checkKernel(lib);

  const paths = resolvePaths(positionals);
  const afan = new lib.AsyncFanotify({ processInfo: true });
  const watchOptions: WatchOptions = { mark };
  if (values.recursive) watchOptions.recursive = true;
  try {
    for (const p of paths) await afan.addWatch(p, mask, watchOptions);
  } catch (err) {
    await afan.close();
    throw err;
  }

  const tty = process.stdout.isTTY === true;
  if (!tty) process.stderr.write(`fanotify stats: watching ${positionals.join(' ')}; a snapshot every ${interval} s; Ctrl-C to stop\n`);
  const title = `${paths.join(', ')} (${mark} mark${values.recursive ? ', recursive' : ''})`;
  const tally = new Tally();
  const draw = () => {
    const lines = tally.snapshot(title, top, tty ? process.stdout.columns || 80 : 100);
    // In a terminal: home, clear, redraw. Elsewhere: one plain snapshot per interval.
    process.stdout.write(tty ? `\x1b[H\x1b[2J${lines.join('\n')}\n` : `${lines.join('\n')}\n\n`);
  };

  afan.on('event', (ev) => {
    if (ev.pid === process.pid && !ev.isOverflow()) return;
    const paths = [ev.path, ev.newPath].filter((p): p is string => p !== null);
    if (excludes.length > 0 && paths.length > 0 && paths.every((p) => excludes.some((match) => match(p)))) return;
    tally.add(ev);
  });
  afan.on('error', (err) => process.stderr.write(`fanotify stats: ${err.message}\n`));
  afan.on('warning', (message) => process.stderr.write(`fanotify stats: ${message}\n`));

  if (tty) draw();
  await new Promise<void>((resolve) => {
    const ticker = setInterval(draw, interval * 1000);
    let timer: NodeJS.Timeout | undefined;
    const removeHandlers = onStop((why) => finish(why !== 'EPIPE'));
    function finish(last: boolean) {
      clearInterval(ticker);
      if (timer) clearTimeout(timer);
      removeHandlers();
      if (last && !tty) draw();
      void afan.close().then(resolve);
    }
    if (duration !== undefined) timer = setTimeout(() => finish(true), duration * 1000);
  });
  return EXIT.OK;
}
