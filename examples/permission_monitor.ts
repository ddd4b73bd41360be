/**
 * permission_monitor: allow or deny opens. Every open of a file in the
 * watched directory waits for this program's answer: opens of files whose
 * path matches a --deny-glob rule are denied (the opener gets EPERM), the
 * rest are allowed, and each decision is printed.
 *
 *   sudo npm run example -- permission_monitor /path/to/dir --deny-glob '*.secret' [--deny-glob GLOB...]
 *        [--count N] [--duration S] [--timeout MS]
 *
 * Needs CAP_SYS_ADMIN (root). The library keeps the safety rules: this
 * process's own opens are allowed before JavaScript sees them, and an event
 * not answered within --timeout ms (default 5000) is allowed anyway, so a
 * stuck handler cannot freeze the programs that open these files.
 */
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { AsyncFanotify, FanotifyError, MaskFlags, capabilities, type AsyncFanotifyOptions } from 'fanotify';

/** '*.secret' style globs: `*` and `?` within one path component, `**` across; no slash matches the file name. */
function globToRegExp(glob: string): RegExp {
  const body = glob
    .split('**')
    .map((part) => part.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]'))
    .join('.*');
  return new RegExp(`^${body}$`);
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      'deny-glob': { type: 'string', multiple: true },
      count: { type: 'string', short: 'n' },
      duration: { type: 'string', short: 'd' },
      timeout: { type: 'string' },
    },
  });
  if (positionals.length !== 1 || !values['deny-glob']?.length) {
    console.error("usage: permission_monitor DIR --deny-glob GLOB [--deny-glob GLOB...] [--count N] [--duration S] [--timeout MS]");
    return 2;
  }
  if (!capabilities().permission) {
    console.error('permission events need CAP_SYS_ADMIN: run as root (sudo)');
    return 3;
  }
  const dir = path.resolve(positionals[0]);
  const rules = values['deny-glob'].map((glob) => ({ glob, re: globToRegExp(glob) }));
  const count = values.count === undefined ? Infinity : Number(values.count);

  const options: AsyncFanotifyOptions = {
    permissionTimeout: values.timeout === undefined ? 5000 : Number(values.timeout),
    defaultResponse: 'allow',
    processInfo: true,
  };
  if (values.duration !== undefined) options.signal = AbortSignal.timeout(Number(values.duration) * 1000);
  const fanotify = new AsyncFanotify(options);
  const stop = () => void fanotify.close(); // closing answers whatever is pending
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);

  try {
    // An inode mark on a directory covers the files directly in it.
    await fanotify.addWatch(dir, MaskFlags.OPEN_PERM);
  } catch (err) {
    await fanotify.close();
    if (!(err instanceof FanotifyError)) throw err;
    console.error(`cannot guard ${dir}: ${err.message} [${err.kind}]`);
    return 1;
  }
  console.log(`guarding opens in ${dir}; denying ${rules.map((r) => r.glob).join(', ')} (Ctrl-C to stop)`);

  let decided = 0;
  fanotify.on('permission', (event) => {
    const file = event.path ?? '';
    const rule = event.isDirectory ? undefined : rules.find((r) => r.re.test(file) || r.re.test(path.basename(file)));
    if (rule) event.deny();
    else event.allow();
    const who = `pid ${event.pid}${event.process?.comm ? ` ${event.process.comm}` : ''}`;
    console.log(`${rule ? 'DENY ' : 'ALLOW'} ${file} (${who})${rule ? ` matches ${rule.glob}` : ''}`);
    if (++decided >= count) stop();
  });
  // Reports, never fatal: a deadline answered for us, a queue overflow.
  fanotify.on('warning', (message) => console.error(`warning: ${message}`));
  fanotify.on('error', (err) => console.error(`error: ${err.message}`));

  await new Promise<void>((resolve) => fanotify.once('close', resolve));
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  console.log(`${decided} decision${decided === 1 ? '' : 's'}`);
  return 0;
}

main().then((code) => (process.exitCode = code));
