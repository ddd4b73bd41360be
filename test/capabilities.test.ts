/**
 * capabilities(): the documented keys, probed once, and consistent with what
 * the kernel actually accepts from this process.
 */
import * as os from 'node:os';
import { capabilities, lowLevel } from '../lib';
import { describeRoot } from './helpers/kernel';

const DOCUMENTED_BOOLEANS = ['privileged', 'fid', 'dfidName', 'rename', 'pidfd', 'filesystemMarks', 'permission', 'preContent', 'denyErrno', 'mntns'] as const;

/** fanotify_init accepts these flags here and now (the group is closed at once). */
function initWorks(flags: number): boolean {
  try {
    lowLevel.close(lowLevel.fanotifyInit(flags | lowLevel.FAN_CLOEXEC, 0));
    return true;
  } catch {
    return false;
  }
}

function kernelAtLeast(major: number, minor: number): boolean {
  const [maj, min] = os.release().split('.').map((n) => parseInt(n, 10));
  return maj > major || (maj === major && min >= minor);
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
    if (caps.preContent) expect(initWorks(lowLevel.FAN_CLASS_PRE_CONTENT)).toBe(true);
    expect(caps.denyErrno).toBe(kernelAtLeast(6, 14));
  });
});

describeRoot('capabilities() as root', () => {
  test('privileged is true, and every feature of this kernel is available', () => {
    const caps = capabilities();
    expect(caps.privileged).toBe(true);
    expect(caps.permission).toBe(true);
    expect(caps.filesystemMarks).toBe(true);
    expect(caps.fid).toBe(kernelAtLeast(5, 1));
    expect(caps.dfidName).toBe(kernelAtLeast(5, 9));
    expect(caps.rename).toBe(kernelAtLeast(5, 17));
    expect(caps.pidfd).toBe(kernelAtLeast(5, 15));
    expect(caps.preContent).toBe(kernelAtLeast(6, 14));
    expect(caps.denyErrno).toBe(kernelAtLeast(6, 14));
    expect(caps.mntns).toBe(kernelAtLeast(6, 15));
  });
});
