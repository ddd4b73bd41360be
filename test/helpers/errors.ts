import { FanotifyError } from '../../lib';

/** The FanotifyError that `fn` throws synchronously; fails the test if it returns or throws something else. */
export function thrown(fn: () => unknown): FanotifyError {
  let err: unknown;
  let returned: unknown;
  try {
    returned = fn();
  } catch (e) {
    err = e;
  }
  if (err === undefined) throw new Error(`expected a FanotifyError, but the call returned ${String(returned)}`);
  expect(err).toBeInstanceOf(FanotifyError);
  return err as FanotifyError;
}
