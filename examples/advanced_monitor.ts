/**
 * advanced_monitor: several paths, filtering, and statistics. Prints the
 * events that pass the filters, a statistics report every --interval
 * seconds, and a final report when it stops.
 *
 *   npm run example -- advanced_monitor --paths /tmp,/var/log [--events create,delete,modify,...]
 *        [--exclude GLOB...] [--pid N] [--interval S] [--count N] [--duration S] [--quiet]
 *
 * Works as a normal user (Linux 5.13 or later) on directories you can read;
 * paths that cannot be watched are reported and skipped.
 */
import { parseArgs } from 'node:util';
import { AsyncFanotify, FanotifyError, MaskFlags, type AsyncFanotifyOptions, type FanotifyEvent } from 'fanotify';

/** '*.tmp' style globs: `*` and `?` within one path component, `**` across; no slash matches any component. */
function globToRegExp(glob: string): RegExp {
  const body = glob
    .split('**')
    .map((part) => part.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]'))
    .join('.*');
  return glob.includes('/') ? new RegExp(`(^|/)${body}$`) : new RegExp(`(^|/)${body}(/|$)`);
}

/** Event names as in MaskFlags, lower case: create, modify, close_write... */
function parseMask(list: string): number {
  let mask = 0;
  for (const name of list.split(',').filter(Boolean)) {
    const bit = (MaskFlags as Record<string, number>)[name.trim().toUpperCase()];
    if (bit === undefined || name.toUpperCase().endsWith('_PERM')) throw new Error(`unknown event '${name}'`);
    mask |= bit;
  }
  return mask;
}

class Statistics {
  readonly started = Date.now();
  total = 0;
  filtered = 0;
  overflows = 0;
  readonly byType = new Map<string, number>();
  readonly byPath = new Map<string, number>();
  readonly byProcess = new Map<number, number>();

  record(event: FanotifyEvent): void {
    this.total++;
    for (const type of event.types()) this.byType.set(type, (this.byType.get(type) ?? 0) + 1);
    const where = event.path ?? event.name ?? '?';
    this.byPath.set(where, (this.byPath.get(where) ?? 0) + 1);
    this.byProcess.set(event.pid, (this.byProcess.get(event.pid) ?? 0) + 1);
  }

  report(): string {
    const seconds = (Date.now() - this.started) / 1000;
    const top = <K>(map: Map<K, number>) => [...map].sort((a, b) => b[1] - a[1]).slice(0, 5);
    return [
      `--- statistics after ${seconds.toFixed(1)} s: ${this.total} events (${(this.total / Math.max(seconds, 0.001)).toFixed(1)}/s), ${this.filtered} filtered out, ${this.overflows} overflows`,
      `  by type:    ${[...this.byType].map(([t, n]) => `${t}=${n}`).join(' ') || '-'}`,
      `  top paths:  ${top(this.byPath).map(([p, n]) => `${p} (${n})`).join(', ') || '-'}`,
      `  top pids:   ${top(this.byProcess).map(([p, n]) => `${p} (${n})`).join(', ') || '-'}`,
    ].join('\n');
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      paths: { type: 'string', short: 'p' },
      events: { type: 'string', short: 'e' },
      exclude: { type: 'string', multiple: true },
      pid: { type: 'string' },
      interval: { type: 'string', short: 'i' },
      count: { type: 'string', short: 'n' },
      duration: { type: 'string', short: 'd' },
      quiet: { type: 'boolean', short: 'q' },
    },
  });
  const paths = (values.paths ?? '').split(',').filter(Boolean);
  if (paths.length === 0) {
    console.error('usage: advanced_monitor --paths A,B [--events LIST] [--exclude GLOB...] [--pid N] [--interval S] [--count N] [--duration S] [--quiet]');
    return 2;
  }
  let mask: number;
  try {
    mask = values.events === undefined ? MaskFlags.CREATE | MaskFlags.DELETE | MaskFlags.MODIFY | MaskFlags.CLOSE_WRITE | MaskFlags.MOVE | MaskFlags.ATTRIB : parseMask(values.events);
  } catch (err) {
    console.error((err as Error).message);
    return 2;
  }
  const excludes = (values.exclude ?? []).map(globToRegExp);
  const onlyPid = values.pid === undefined ? undefined : Number(values.pid);
  const count = values.count === undefined ? Infinity : Number(values.count);
  const interval = Number(values.interval ?? 5) * 1000;

  const options: AsyncFanotifyOptions = {};
  if (values.duration !== undefined) options.signal = AbortSignal.timeout(Number(values.duration) * 1000);
  const fanotify = new AsyncFanotify(options);
  const stop = () => void fanotify.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);

  // Watch what can be watched; report the rest (error handling by kind).
  let watching = 0;
  for (const p of paths) {
    try {
      await fanotify.addWatch(p, mask);
      watching++;
      console.log(`watching ${p}`);
    } catch (err) {
      if (!(err instanceof FanotifyError)) throw err;
      console.error(`skipping ${p}: ${err.message} [${err.kind}]`);
    }
  }
  if (watching === 0) {
    await fanotify.close();
    console.error('nothing to watch');
    return 1;
  }

  const stats = new Statistics();
  const ticker = setInterval(() => console.log(stats.report()), interval);
  fanotify.on('overflow', () => {
    stats.overflows++;
    console.error('the kernel queue overflowed: some events were lost');
  });
  fanotify.on('event', (event) => {
    if (event.isOverflow()) return;
    const paths = [event.path, event.oldPath, event.newPath].filter((p): p is string => p !== null);
    const skip =
      (onlyPid !== undefined && event.pid !== onlyPid) ||
      (excludes.length > 0 && paths.length > 0 && paths.every((p) => excludes.some((re) => re.test(p))));
    if (skip) {
      stats.filtered++;
      return;
    }
    stats.record(event);
    if (!values.quiet) console.log(event.description());
    if (stats.total >= count) stop();
  });

  await new Promise<void>((resolve) => fanotify.once('close', resolve));
  clearInterval(ticker);
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  console.log(stats.report());
  return 0;
}

main().then((code) => (process.exitCode = code));
