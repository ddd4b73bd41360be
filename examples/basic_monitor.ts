/**
 * basic_monitor: the synchronous API. Watches one directory (or file) for
 * every notification event and prints each one.
 *
 *   npm run example -- basic_monitor /path/to/monitor [--count N] [--duration S]
 *
 * Works as a normal user (Linux 5.13 or later) on a directory you can read.
 * Stops after N events or S seconds, or on Ctrl-C (exiting closes the
 * fanotify group; nothing is left behind).
 */
import { parseArgs } from 'node:util';
import { Fanotify, FanotifyError, MaskFlags } from 'fanotify';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    count: { type: 'string', short: 'n' },
    duration: { type: 'string', short: 'd' },
  },
});
if (positionals.length !== 1) {
  console.error('usage: basic_monitor PATH [--count N] [--duration S]');
  process.exit(2);
}
const target = positionals[0];
const count = values.count === undefined ? Infinity : Number(values.count);
const deadline = values.duration === undefined ? Infinity : Date.now() + Number(values.duration) * 1000;

const fanotify = new Fanotify();
try {
  fanotify.addWatch(target, MaskFlags.ALL_EVENTS);
} catch (err) {
  if (!(err instanceof FanotifyError)) throw err;
  // e.g. InvalidPath (no such path), PermissionDenied (names the capability needed)
  console.error(`cannot watch ${target}: ${err.message} [${err.kind}]`);
  process.exit(err.kind === 'PermissionDenied' ? 3 : 1);
}
console.log(`watching ${target} (Ctrl-C to stop)`);

let seen = 0;
while (seen < count && Date.now() < deadline) {
  // A blocking read; with a deadline, one that gives up when it passes.
  const events = Number.isFinite(deadline)
    ? fanotify.readEvents({ timeout: Math.max(1, Math.ceil(deadline - Date.now())) })
    : fanotify.readEvents();
  for (const event of events) {
    console.log(`Event: ${event.description()}`);
    const filename = event.info.filename();
    if (event.path !== null) console.log(`  Path: ${event.path}${filename ? ` (file ${filename})` : ''}`);
    if (++seen >= count) break;
  }
}
fanotify.close();
console.log(`${seen} event${seen === 1 ? '' : 's'}`);
