/**
 * Gating for tests that need root and a real kernel. Without root they skip
 * with a printed reason, except under FANOTIFY_REQUIRE_PRIVILEGED=1 (CI),
 * where a skip would hide a failure, so they fail instead.
 */
import * as os from 'node:os';

export const isRoot = process.getuid?.() === 0;
export const requirePrivileged = process.env.FANOTIFY_REQUIRE_PRIVILEGED === '1';

/** `describe` for suites that need root: skipped (with a reason) or failed when not root. */
export function describeRoot(name: string, body: () => void): void {
  if (isRoot) {
    describe(name, body);
  } else if (requirePrivileged) {
    describe(name, () => {
      test('runs as root', () => {
        throw new Error(`${name}: needs root, and FANOTIFY_REQUIRE_PRIVILEGED=1 forbids skipping`);
      });
    });
  } else {
    // eslint-disable-next-line no-console
    console.warn(`skipping "${name}": needs root (CAP_SYS_ADMIN) to mount a tmpfs and use fanotify marks`);
    describe.skip(name, body);
  }
}

/**
 * `describe` for suites that need a kernel feature (a `capabilities()` entry)
 * on top of root. A kernel without it skips them with a printed reason, also
 * under FANOTIFY_REQUIRE_PRIVILEGED=1: a missing kernel feature is not a
 * missing privilege (the kernel matrix runs older kernels on purpose). The
 * root requirement still fails there as in describeRoot.
 */
export function describeKernel(name: string, has: () => boolean, needs: string, body: () => void): void {
  if (isRoot && !has()) {
    // eslint-disable-next-line no-console
    console.warn(`skipping "${name}": needs ${needs}, which this kernel (${os.release()}) lacks`);
    describe.skip(name, body);
  } else {
    describeRoot(name, body);
  }
}

/** For a single test inside a suite: prints why it skips on this kernel; true when it should. */
export function kernelLacks(has: boolean, needs: string): boolean {
  // eslint-disable-next-line no-console
  if (!has) console.warn(`skipping: needs ${needs}, which this kernel (${os.release()}) lacks`);
  return !has;
}
