/**
 * FS_ERROR (Linux 5.16): a filesystem mark reports the errors a filesystem
 * detects, as `ev.isError()` events with `ev.error = { errno, count }` and
 * the path of the object concerned where it can be resolved. The errors are
 * made the way LTP's fanotify22 makes them: an ext4 image corrupted with
 * debugfs (a directory with an invalid mode, a link to the reserved inode
 * 1), mounted with errors=continue, then accessed by another process; and
 * `mount -o remount,abort`, an error of the whole filesystem. On a kernel
 * without FS_ERROR, addWatch throws NotSupported (the kernel matrix runs
 * this file on 5.10).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AsyncFanotify, capabilities, Fanotify, FanotifyEvent, MaskFlags } from '../lib';
import { reapAll, runChild, startChild } from './helpers/child';
import { ensureDist } from './helpers/dist';
import { collectFor, collectUntil, withTimeout } from './helpers/events';
import { thrown } from './helpers/errors';
import { describeRoot } from './helpers/kernel';
import { mountExt4 } from './helpers/scratch';
import { finished } from './helpers/wait';

const CLI = path.join(__dirname, '..', 'dist', 'cli.js');

const EUCLEAN = 117; // ext4's EFSCORRUPTED (Node's os.constants.errno lacks it)
const ESHUTDOWN = 108;

/** debugfs is in e2fsprogs with mkfs.ext4 (the set-up script installs it); without it the corruption cases fail. */
const hasDebugfs = spawnSync('debugfs', ['-V'], { stdio: 'ignore' }).error === undefined;

interface Corrupted {
  dir: string;
  base: string;
  cleanup(): void;
}

/**
 * An ext4 image on a loop device with internal_dir/bad_dir (mode 0xff: not a
 * valid inode) and internal_dir/bad_link (an entry for the reserved inode 1),
 * mounted with errors=continue so that errors are reported, not fatal.
 */
function mountCorrupted(): Corrupted {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanotify-test-fserror-'));
  const image = `${dir}.img`;
  fs.writeFileSync(image, '');
  fs.truncateSync(image, 16 * 1024 * 1024);
  let mounted = false;
  const cleanup = () => {
    if (mounted) execFileSync('umount', [dir]);
    mounted = false;
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(image, { force: true });
  };
  try {
    execFileSync('mkfs.ext4', ['-q', '-F', image], { stdio: 'pipe' });
    if (hasDebugfs) {
      execFileSync('debugfs', ['-w', image, '-R', 'mkdir internal_dir'], { stdio: 'pipe' });
      execFileSync('debugfs', ['-w', image, '-R', 'mkdir internal_dir/bad_dir'], { stdio: 'pipe' });
      execFileSync('debugfs', ['-w', image, '-R', 'sif internal_dir/bad_dir mode 0xff'], { stdio: 'pipe' });
      execFileSync('debugfs', ['-w', image, '-R', 'ln <1> internal_dir/bad_link'], { stdio: 'pipe' });
    }
    execFileSync('mount', ['-t', 'ext4', '-o', 'loop,errors=continue', image, dir], { stdio: 'pipe' });
    mounted = true;
  } catch (err) {
    cleanup();
    throw err;
  }
  return { dir, base: path.join(dir, 'internal_dir'), cleanup };
}

/** Another process looks the paths up (cat): the lookup trips ext4's check; its EUCLEAN is expected. */
async function lookUp(...paths: string[]): Promise<void> {
  const r = await runChild('cat', paths, 5000);
  expect(r.code).not.toBe(0);
}

function errorsOf(events: FanotifyEvent[]): Array<{ types: string[]; error: unknown; path: string | null }> {
  return events.map((e) => ({ types: e.types(), error: e.error, path: e.path }));
}

describeRoot('FS_ERROR: filesystem errors on a filesystem mark', () => {
  afterEach(() => reapAll());

  if (!capabilities().fsError) {
    test('a kernel without FS_ERROR: addWatch throws NotSupported naming Linux 5.16, in both front ends', async () => {
      const ext4 = mountExt4(16);
      try {
        using fan = new Fanotify();
        const err = thrown(() => fan.addWatch(ext4.dir, MaskFlags.FS_ERROR, { mark: 'filesystem' }));
        expect(err.kind).toBe('NotSupported');
        expect(err.message).toMatch(/FS_ERROR.*Linux 5\.16/);
        const afan = new AsyncFanotify();
        try {
          await expect(afan.addWatch(ext4.dir, MaskFlags.FS_ERROR, { mark: 'filesystem' })).rejects.toMatchObject({ kind: 'NotSupported' });
        } finally {
          await afan.close();
        }
      } finally {
        ext4.cleanup();
      }
    });
    return;
  }

  let fs1: Corrupted;
  beforeEach(() => (fs1 = mountCorrupted()));
  afterEach(() => fs1?.cleanup());

  test('FS_ERROR on an inode mark is InvalidArgument, before any system call', () => {
    using fan = new Fanotify();
    const err = thrown(() => fan.addWatch(fs1.dir, MaskFlags.FS_ERROR));
    expect(err.kind).toBe('InvalidArgument');
    expect(err.message).toContain("mark: 'filesystem'");
    expect(err.syscall).toBeUndefined();
  });

  test('a lookup that finds a corrupted entry: errno EUCLEAN, count 1, the path of the directory that holds it (sync)', async () => {
    if (!hasDebugfs) throw new Error('needs debugfs (e2fsprogs, installed with mkfs.ext4) to corrupt the image');
    using fan = new Fanotify();
    fan.addWatch(fs1.dir, MaskFlags.FS_ERROR, { mark: 'filesystem' });
    await lookUp(path.join(fs1.base, 'bad_link'));
    const events = collectUntil(fan, (evs) => evs.length > 0);
    expect(errorsOf(events)).toEqual([{ types: ['FS_ERROR'], error: { errno: EUCLEAN, count: 1 }, path: fs1.base }]);
    const [ev] = events;
    expect(ev.isError()).toBe(true);
    expect(ev.isPermission()).toBe(false);
    expect(ev.mountId).toBeNull();
    expect(ev.toJSON()).toMatchObject({ types: ['FS_ERROR'], path: fs1.base, error: { errno: EUCLEAN, count: 1 } });
    expect(ev.description()).toContain('FS_ERROR');
  });

  test('an inode that cannot be read: path null, and resolving it does not loop (AsyncFanotify)', async () => {
    if (!hasDebugfs) throw new Error('needs debugfs (e2fsprogs, installed with mkfs.ext4) to corrupt the image');
    const afan = new AsyncFanotify();
    try {
      await afan.addWatch(fs1.dir, MaskFlags.FS_ERROR, { mark: 'filesystem' });
      const seen: FanotifyEvent[] = [];
      afan.on('event', (ev) => seen.push(ev));
      await lookUp(path.join(fs1.base, 'bad_dir'));
      await withTimeout(
        new Promise<void>((resolve) => {
          const poll = setInterval(() => seen.length > 0 && (clearInterval(poll), resolve()), 20);
        }),
        5000,
        'the FS_ERROR event',
      );
      // Looking the corrupted inode up by its handle trips the same check
      // again: the library must neither report its own lookup nor repeat it.
      await new Promise((resolve) => setTimeout(resolve, 700));
      expect(errorsOf(seen)).toEqual([{ types: ['FS_ERROR'], error: { errno: EUCLEAN, count: 1 }, path: null }]);
      // A second error on the same inode is reported, still without a path.
      await lookUp(path.join(fs1.base, 'bad_dir'));
      await new Promise((resolve) => setTimeout(resolve, 700));
      expect(errorsOf(seen)).toEqual([
        { types: ['FS_ERROR'], error: { errno: EUCLEAN, count: 1 }, path: null },
        { types: ['FS_ERROR'], error: { errno: EUCLEAN, count: 1 }, path: null },
      ]);
    } finally {
      await afan.close();
    }
  });

  test('errors that happen while one is still queued are merged into it: the counts add up', async () => {
    if (!hasDebugfs) throw new Error('needs debugfs (e2fsprogs, installed with mkfs.ext4) to corrupt the image');
    using fan = new Fanotify();
    fan.addWatch(fs1.dir, MaskFlags.FS_ERROR, { mark: 'filesystem' });
    // Two lookups in one process: the kernel keeps one error event queued and
    // counts further errors into it; the reader thread may read it between
    // the two, so one event with count 2, or two with count 1.
    await lookUp(path.join(fs1.base, 'bad_link'), path.join(fs1.base, 'bad_link'));
    const events = collectUntil(fan, (evs) => evs.reduce((n, e) => n + (e.error?.count ?? 0), 0) >= 2).concat(collectFor(fan, 300));
    expect(events.reduce((n, e) => n + (e.error?.count ?? 0), 0)).toBe(2);
    for (const ev of events) expect({ types: ev.types(), errno: ev.error?.errno, path: ev.path }).toEqual({ types: ['FS_ERROR'], errno: EUCLEAN, path: fs1.base });
  });

  test('an aborted filesystem: errno ESHUTDOWN, no object (path null)', () => {
    using fan = new Fanotify();
    fan.addWatch(fs1.dir, MaskFlags.FS_ERROR, { mark: 'filesystem' });
    execFileSync('mount', ['-o', 'remount,abort', fs1.dir], { stdio: 'pipe' });
    const events = collectUntil(fan, (evs) => evs.length > 0).concat(collectFor(fan, 300));
    // busybox's mount (the kernel matrix's VMs) remounts twice: one abort each.
    expect(events.length).toBeGreaterThanOrEqual(1);
    for (const ev of errorsOf(events)) expect(ev).toEqual({ types: ['FS_ERROR'], error: { errno: ESHUTDOWN, count: 1 }, path: null });
  });

  test("the CLI: 'watch --events fs_error' prints a readable line, 'stats' counts the errors", async () => {
    if (!hasDebugfs) throw new Error('needs debugfs (e2fsprogs, installed with mkfs.ext4) to corrupt the image');
    ensureDist();
    const args = [fs1.dir, '--mark', 'filesystem', '--events', 'fs_error'];
    const watch = startChild(process.execPath, [CLI, 'watch', ...args, '--count', '1', '--duration', '10'], 15000);
    const stats = startChild(process.execPath, [CLI, 'stats', ...args, '--interval', '0.5', '--duration', '2.5'], 15000);
    const started = (child: typeof watch) =>
      withTimeout(new Promise<void>((resolve) => child.child.stderr?.on('data', (d: Buffer) => /watching/.test(d.toString()) && resolve())), 10000, 'the command to start');
    await Promise.all([started(watch), started(stats)]);
    await lookUp(path.join(fs1.base, 'bad_link'));
    const w = await finished(watch, 10000, 'fanotify watch');
    expect(w.code).toBe(0);
    expect(w.stdout.trim()).toMatch(new RegExp(`^\\S+\\s+FS_ERROR\\s+${fs1.base}\\s+EUCLEAN \\(errno 117\\)\\s+pid \\d+ (cat|\\?)$`));
    const st = await finished(stats, 10000, 'fanotify stats');
    expect(st.code).toBe(0);
    expect(st.stdout).toMatch(/, 1 filesystem error\n/);
    expect(st.stdout).toMatch(/FS_ERROR/);
  });

  test('other events carry no error', () => {
    using fan = new Fanotify();
    fan.addWatch(fs1.dir, MaskFlags.CREATE | MaskFlags.FS_ERROR, { mark: 'filesystem' });
    fs.writeFileSync(path.join(fs1.dir, 'fine'), 'x');
    const [ev] = collectUntil(fan, (evs) => evs.length > 0);
    expect(ev.types()).toEqual(['CREATE']);
    expect(ev.isError()).toBe(false);
    expect(ev.error).toBeUndefined();
    expect('error' in ev.toJSON()).toBe(false);
  });
});
