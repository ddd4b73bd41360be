/**
 * async_monitor: the asynchronous API. `nextEvent()` resolves with each event
 * (null once the instance is closed); nothing blocks the event loop, so
 * timers and signal handlers keep working.
 *
 *   npm run example -- async_monitor /path/to/monitor [--count N] [--duration S]
 *
 * Works as a normal user (Linux 5.13 or later) on a directory you can read.
 */
import { parseArgs } from 'node:util';
import { AsyncFanotify, FanotifyError, MaskFlags, type AsyncFanotifyOptions } from 'fanotify';

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      count: { type: 'string', short: 'n' },
      duration: { type: 'string', short: 'd' },
    },
  });
  if (positionals.length !== 1) {
    console.error('usage: async_monitor PATH [--count N] [--duration S]');
    return 2;
  }
  const target = positionals[0];
  const count = values.count === undefined ? Infinity : Number(values.count);

  const options: AsyncFanotifyOptions = {};
  // options.signal closes the instance when it aborts: here, after --duration.
  if (values.duration !== undefined) options.signal = AbortSignal.timeout(Number(values.duration) * 1000);
  const fanotify = new AsyncFanotify(options);
  const stop = () => void fanotify.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);

  try {
    await fanotify.addWatch(target, MaskFlags.CREATE | MaskFlags.DELETE | MaskFlags.MODIFY | MaskFlags.CLOSE_WRITE | MaskFlags.MOVE);
  } catch (err) {
    await fanotify.close();
    if (!(err instanceof FanotifyError)) throw err;
    console.error(`cannot watch ${target}: ${err.message} [${err.kind}]`);
    return err.kind === 'PermissionDenied' ? 3 : 1;
  }
  console.log(`watching ${target} (Ctrl-C to stop)`);

  let seen = 0;
  let event;
  while ((event = await fanotify.nextEvent()) !== null) {
    console.log(`Async event: ${event.types().join('|')} ${event.path ?? event.name ?? '?'} (pid ${event.pid})`);
    if (++seen >= count) break;
  }
  await fanotify.close();
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  console.log(`${seen} event${seen === 1 ? '' : 's'}`);
  return 0;
}

main().then((code) => (process.exitCode = code));
