/**
 * Gating for tests that need root and a real kernel. Without root they skip
 * with a printed reason, except under FANOTIFY_REQUIRE_PRIVILEGED=1 (CI),
 * where a skip would hide a failure, so they fail instead.
 */
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
