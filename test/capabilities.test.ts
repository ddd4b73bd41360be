/**
 * capabilities(): the documented keys, probed once, and each entry equal to
 * what a real attempt on this kernel does: a group created, a mark placed,
 * a child as nobody watching its own directory. No kernel version numbers:
 * distribution kernels backport flags (the kernel matrix runs this file on
 * Debian's 5.10, 6.1 and 6.12 as well as here).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { capabilities, lowLevel } from '../lib';
import { runChild } from './helpers/child';
import { readableDist } from './helpers/dist';
import { withTimeout } from './helpers/events';
import { describeRoot } from './helpers/kernel';
import { mountExt4, mountTmpfs, type Scratch } from './helpers/scratch';

const DOCUMENTED_BOOLEANS = ['privileged', 'fid', 'dfidName', 'rename', 'pidfd', 'filesystemMarks', 'permission', 'preContent', 'denyErrno', 'mntns', 'fsError', 'auditRule', 'markIgnore', 'evictable', 'fdError', 'unprivileged'] as const;

/** fanotify_init accepts these flags here and now (the group is closed at once). */
function initWorks(flags: number): boolean {
  try {
    lowLevel.close(lowLevel.fanotifyInit(flags | lowLevel.FAN_CLOEXEC, 0));
    return true;
  } catch {
    return false;
  }
}

/** A real mark: a group with `initFlags`, fanotify_mark(ADD | flags, mask, target) succeeds. */
function markWorks(initFlags: number, flags: number, mask: number, target: string): boolean {
  const group = lowLevel.fanotifyInit(initFlags | lowLevel.FAN_CLOEXEC, 0);
  try {
    lowLevel.fanotifyMark(group, lowLevel.FAN_MARK_ADD | flags, mask, lowLevel.AT_FDCWD, target);
    return true;
  } catch {
    return false;
  } finally {
    lowLevel.close(group);
  }
}

describe('capabilities()', () => {
  test('returns the documented keys: kernel is os.release(), the rest are booleans', () => {
    const caps = capabilities();
    expect(caps.kernel).toBe(os.release());
    for (const key of DOCUMENTED_BOOLEANS) {
      expect([key, typeof caps[key]]).toEqual([key, 'boolean']);
    }
    // Any extra keys are booleans too (kernel is the only string).
    for (const [key, value] of Object.entries(caps)) {
      if (key !== 'kernel') expect([key, typeof value]).toEqual([key, 'boolean']);
    }
  });

  test('is probed once: the same object every time', () => {
    const a = capabilities();
    const b = capabilities();
    expect(b).toBe(a);
    // And it cannot be changed behind the library's back.
    const before = a.privileged;
    try {
      (a as { privileged: boolean }).privileged = !before;
    } catch {
      // frozen objects throw in strict mode
    }
    expect(capabilities().privileged).toBe(before);
  });

  test('agrees with what fanotify_init accepts from this process', () => {
    const caps = capabilities();
    expect(caps.fid).toBe(initWorks(lowLevel.FAN_REPORT_FID));
    expect(caps.dfidName).toBe(initWorks(lowLevel.FAN_REPORT_DFID_NAME | lowLevel.FAN_REPORT_FID));
    expect(caps.rename).toBe(initWorks(lowLevel.FAN_REPORT_DFID_NAME_TARGET));
    expect(caps.pidfd).toBe(initWorks(lowLevel.FAN_REPORT_PIDFD));
    expect(caps.permission).toBe(initWorks(lowLevel.FAN_CLASS_CONTENT));
    expect(caps.mntns).toBe(initWorks(lowLevel.FAN_REPORT_MNT));
    expect(caps.fdError).toBe(initWorks(lowLevel.FAN_REPORT_FD_ERROR));
    // FAN_DENY_ERRNO came with the pre-content events (permission.test.ts tries a real one).
    expect(caps.denyErrno).toBe(caps.preContent);
  });
});

describeRoot('capabilities() as root: each entry is what a real attempt does', () => {
  let tmpfs: Scratch;
  let ext4: Scratch;
  let file: string;
  let dir: string;

  beforeAll(() => {
    tmpfs = mountTmpfs();
    // A filesystem that reports file ids and takes PRE_ACCESS marks on every kernel.
    ext4 = mountExt4();
    dir = ext4.freshDir();
    file = path.join(dir, 'file');
    fs.writeFileSync(file, 'x');
  });
  afterAll(() => {
    tmpfs?.cleanup();
    ext4?.cleanup();
  });

  test('privileged, permission events and filesystem marks', () => {
    const caps = capabilities();
    expect(caps.privileged).toBe(true);
    expect(caps.permission).toBe(markWorks(lowLevel.FAN_CLASS_CONTENT, 0, lowLevel.FAN_OPEN_PERM, file));
    expect(caps.filesystemMarks).toBe(markWorks(lowLevel.FAN_CLASS_NOTIF, lowLevel.FAN_MARK_FILESYSTEM, lowLevel.FAN_OPEN, tmpfs.dir));
  });

  test('markIgnore: FAN_MARK_IGNORE marks (on a file, and on a directory with ONDIR) are accepted', () => {
    const onFile = markWorks(lowLevel.FAN_CLASS_NOTIF, lowLevel.FAN_MARK_IGNORE, lowLevel.FAN_OPEN, file);
    // On a directory the kernel wants IGNORED_SURV_MODIFY with it (EISDIR otherwise).
    const onDir = markWorks(lowLevel.FAN_CLASS_NOTIF, lowLevel.FAN_MARK_IGNORE_SURV, lowLevel.FAN_OPEN | lowLevel.FAN_ONDIR, dir);
    expect({ onFile, onDir }).toEqual({ onFile: capabilities().markIgnore, onDir: capabilities().markIgnore });
    // The legacy ignored mask works everywhere: it is the fallback.
    expect(markWorks(lowLevel.FAN_CLASS_NOTIF, lowLevel.FAN_MARK_IGNORED_MASK, lowLevel.FAN_OPEN, file)).toBe(true);
  });

  test('fsError: an FS_ERROR filesystem mark in a FID group is accepted (on ext4)', () => {
    expect(capabilities().fsError).toBe(markWorks(lowLevel.FAN_CLASS_NOTIF | lowLevel.FAN_REPORT_FID, lowLevel.FAN_MARK_FILESYSTEM, lowLevel.FAN_FS_ERROR, ext4.dir));
  });

  test('evictable: a FAN_MARK_EVICTABLE inode mark is accepted', () => {
    expect(capabilities().evictable).toBe(markWorks(lowLevel.FAN_CLASS_NOTIF, lowLevel.FAN_MARK_EVICTABLE, lowLevel.FAN_OPEN, file));
  });

  test('preContent: a PRE_ACCESS mark on ext4 from a pre-content group is accepted', () => {
    expect(capabilities().preContent).toBe(markWorks(lowLevel.FAN_CLASS_PRE_CONTENT, 0, lowLevel.FAN_PRE_ACCESS, file));
  });

  test('rename: a FAN_RENAME mark in a REPORT_DFID_NAME_TARGET group is accepted', () => {
    const real = initWorks(lowLevel.FAN_REPORT_DFID_NAME_TARGET) && markWorks(lowLevel.FAN_REPORT_DFID_NAME_TARGET, 0, lowLevel.FAN_RENAME | lowLevel.FAN_ONDIR, dir);
    expect(capabilities().rename).toBe(real);
  });

  test('unprivileged: nobody can watch a directory of its own exactly when capabilities() says so', async () => {
    const own = ext4.freshDir();
    fs.chownSync(own, 65534, 65534);
    const dist = readableDist();
    const code = `
      const l = require(${JSON.stringify(path.join(dist, 'low-level.js'))});
      let ok = false, error;
      try {
        const g = l.fanotifyInit(l.FAN_REPORT_FID | l.FAN_CLOEXEC, 0);
        l.fanotifyMark(g, l.FAN_MARK_ADD, l.FAN_CREATE | l.FAN_ONDIR, l.AT_FDCWD, process.argv[1]);
        l.close(g);
        ok = true;
      } catch (e) { error = e.code; }
      console.log(JSON.stringify({ ok, error, caps: require(${JSON.stringify(dist)}).capabilities() }));`;
    const r = await withTimeout(
      runChild('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', code, own], 30000, { cwd: '/' }),
      35000,
      'the child running as nobody',
    );
    const line = r.stdout.trim().split('\n').pop() ?? '';
    let out: { ok: boolean; error?: string; caps: Record<string, unknown> };
    try {
      out = JSON.parse(line);
    } catch {
      throw new Error(`the child printed no JSON (exit ${r.code}): ${r.stdout}\n${r.stderr}`);
    }
    // What root's capabilities() predicts, and what nobody's own says, both match nobody's attempt.
    expect({ predicted: capabilities().unprivileged, ownView: out.caps.unprivileged }).toEqual({ predicted: out.ok, ownView: out.ok });
    expect(out.caps.fid).toBe(out.ok);
  });
});
