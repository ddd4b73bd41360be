/**
 * lazy_files: files whose content arrives on first read. The placeholder
 * directory holds one file per file of the source directory, with the right
 * size and no content (made here when missing); the first read of a
 * placeholder waits while this program copies the source file into it
 * through the event's fd, and each fill is printed. Later reads go straight
 * to the disk: `allow({ cache: true })` tells the kernel the file is filled.
 * A source that cannot be read makes the reader's call fail with EIO.
 *
 *   sudo npm run example -- lazy_files PLACEHOLDER_DIR --source SOURCE_DIR
 *        [--count N] [--duration S] [--timeout MS]
 *
 * --count stops after N files were filled or failed.
 *
 * Needs CAP_SYS_ADMIN (root), Linux 6.14 (pre-content events) and a
 * placeholder directory on ext4, xfs or btrfs (not tmpfs). The source is a
 * local directory here; in real use it is a remote store, an archive or a
 * build cache. A real tool would also remember which files are filled (an
 * extended attribute, say) so that a restart does not fetch them again.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { AsyncFanotify, FanotifyError, MaskFlags, capabilities, type AsyncFanotifyOptions, type FanotifyEvent } from 'fanotify';

const EIO = 5;

/** Makes a placeholder (the source's size, no content) for each source file that has none. */
function preparePlaceholders(source: string, dir: string): number {
  let made = 0;
  for (const entry of fs.readdirSync(source, { withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const placeholder = path.join(dir, entry.name);
    if (fs.existsSync(placeholder)) continue;
    const fd = fs.openSync(placeholder, 'wx');
    try {
      fs.ftruncateSync(fd, fs.statSync(path.join(source, entry.name)).size);
    } finally {
      fs.closeSync(fd);
    }
    made++;
  }
  return made;
}

/** Copies the whole source file into the placeholder through the event's fd (writes through it make no events). */
function fill(event: FanotifyEvent, from: string): number {
  const data = fs.readFileSync(from);
  const fd = event.fd;
  try {
    let done = 0;
    while (done < data.length) done += fs.writeSync(fd, data, done, data.length - done, done);
    return done;
  } finally {
    fs.closeSync(fd);
  }
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      source: { type: 'string', short: 's' },
      count: { type: 'string', short: 'n' },
      duration: { type: 'string', short: 'd' },
      timeout: { type: 'string' },
    },
  });
  if (positionals.length !== 1 || values.source === undefined) {
    console.error('usage: lazy_files PLACEHOLDER_DIR --source SOURCE_DIR [--count N] [--duration S] [--timeout MS]');
    return 2;
  }
  const caps = capabilities();
  if (!caps.preContent) {
    console.error(caps.privileged ? `pre-content events need Linux 6.14 or later (this is ${caps.kernel})` : 'pre-content events need CAP_SYS_ADMIN: run as root (sudo)');
    return 3;
  }
  const dir = path.resolve(positionals[0]);
  const source = path.resolve(values.source);
  const count = values.count === undefined ? Infinity : Number(values.count);
  const made = preparePlaceholders(source, dir);

  const options: AsyncFanotifyOptions = {
    // Fetching may take a while; what is not filled in time is denied (EPERM)
    // rather than shown as zeros.
    permissionTimeout: values.timeout === undefined ? 30000 : Number(values.timeout),
    defaultResponse: 'deny',
    processInfo: true,
  };
  if (values.duration !== undefined) options.signal = AbortSignal.timeout(Number(values.duration) * 1000);
  const fanotify = new AsyncFanotify(options);
  const stop = () => void fanotify.close(); // closing answers whatever is pending
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);

  try {
    // A directory's inode mark covers the files directly in it.
    await fanotify.addWatch(dir, MaskFlags.PRE_ACCESS);
  } catch (err) {
    await fanotify.close();
    if (!(err instanceof FanotifyError)) throw err;
    console.error(`cannot serve ${dir}: ${err.message} [${err.kind}]`);
    return 1;
  }
  console.log(`serving ${dir} from ${source} (${made} placeholders made; Ctrl-C to stop)`);

  let filled = 0;
  let failed = 0;
  fanotify.on('permission', (event) => {
    const file = event.path ?? '';
    const name = path.basename(file);
    const who = `pid ${event.pid}${event.process?.comm ? ` ${event.process.comm}` : ''}`;
    const range = event.range ? ` bytes ${event.range.offset}-${event.range.offset + event.range.count}` : '';
    try {
      const bytes = fill(event, path.join(source, name));
      event.allow({ cache: true }); // filled: the kernel stops asking about this file
      filled++;
      console.log(`FILLED ${file} (${bytes} bytes) for ${who}, who read${range}`);
    } catch (err) {
      event.deny({ errno: EIO }); // the reader's call fails with EIO
      failed++;
      console.log(`FAILED ${file} for ${who}: ${(err as Error).message}`);
    }
    if (filled + failed >= count) stop();
  });
  fanotify.on('warning', (message) => console.error(`warning: ${message}`));
  fanotify.on('error', (err) => console.error(`error: ${err.message}`));

  await new Promise<void>((resolve) => fanotify.once('close', resolve));
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  console.log(`${filled} filled, ${failed} failed`);
  return 0;
}

main().then((code) => (process.exitCode = code));
