/**
 * The options of allow()/deny()/respond() on an event and on both front
 * ends: exactly `{ cache?: boolean }` for allow and `{ errno?: number }` for
 * deny. Anything else (an unknown key, a wrong type, a non-object, an extra
 * argument) is InvalidArgument and leaves the event pending (the decision
 * cache itself is tested in cache.test.ts).
 */
import * as fs from 'node:fs';
import { AsyncFanotify, Fanotify, MaskFlags, capabilities, type FanotifyEvent } from '../lib';
import { READ_FILE, reapAll, startNode, type RunningChild } from './helpers/child';
import { pendingRead, withTimeout } from './helpers/events';
import { describeRoot } from './helpers/kernel';
import { mountTmpfs, type Scratch } from './helpers/scratch';
import { thrown } from './helpers/errors';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

describeRoot('allow/deny/respond options', () => {
  let scratch: Scratch;
  let file: string;

  beforeAll(() => {
    scratch = mountTmpfs();
    file = scratch.file('guarded.txt');
    fs.writeFileSync(file, 'x');
  });
  afterEach(() => reapAll());
  afterAll(() => scratch.cleanup());

  /** A pending OPEN_PERM event from a child reading `file`. */
  const pending = (fan: Fanotify): { ev: FanotifyEvent; child: RunningChild } => pendingRead(fan, file);

  const badAllow: Array<[string, unknown[]]> = [
    ['an unknown key', [{ bogus: 1 }]],
    ['errno (a deny option)', [{ errno: 5 }]],
    ["cache: 'yes'", [{ cache: 'yes' }]],
    ['null', [null]],
    ['a number', [1]],
    ['a string', ['allow']],
    ['an array', [[]]],
    ['two arguments', [{}, {}]],
  ];
  const badDeny: Array<[string, unknown[]]> = [
    ['an unknown key', [{ bogus: 1 }]],
    ['cache (an allow option)', [{ cache: false }]],
    ['errno 0', [{ errno: 0 }]],
    ['errno 1.5', [{ errno: 1.5 }]],
    ["errno '5'", [{ errno: '5' }]],
    ['false', [false]],
    ['two arguments', [undefined, {}]],
  ];

  test('ev.allow / ev.deny / fan.allow / fan.deny / fan.respond reject what they do not know; the event stays pending', async () => {
    using fan = new Fanotify({ permissionTimeout: 10000 });
    fan.addWatch(file, MaskFlags.OPEN_PERM);
    const { ev, child } = pending(fan);
    const kinds: Array<[string, string]> = [];
    for (const [name, args] of badAllow) {
      kinds.push([`ev.allow(${name})`, thrown(() => (ev.allow as Any)(...args)).kind]);
      kinds.push([`fan.allow(ev, ${name})`, thrown(() => (fan.allow as Any).call(fan, ev, ...args)).kind]);
    }
    for (const [name, args] of badDeny) {
      kinds.push([`ev.deny(${name})`, thrown(() => (ev.deny as Any)(...args)).kind]);
      kinds.push([`fan.deny(ev, ${name})`, thrown(() => (fan.deny as Any).call(fan, ev, ...args)).kind]);
    }
    kinds.push(['fan.respond(ev, r, extra)', thrown(() => (fan.respond as Any).call(fan, ev, { allow: true }, {})).kind]);
    kinds.push(['ev.respond(r, extra)', thrown(() => (ev.respond as Any)({ allow: true }, {})).kind]);
    kinds.push(["respond cache: 'yes'", thrown(() => fan.respond(ev, { allow: true, cache: 'yes' as Any })).kind]);
    kinds.push(['respond deny with cache: true', thrown(() => fan.respond(ev, { allow: false, cache: true })).kind]);
    expect(kinds.filter(([, kind]) => kind !== 'InvalidArgument')).toEqual([]);


    // Still pending: a descriptor can only be opened for an event not yet answered.
    const fd = ev.fd;
    expect(fd).toBeGreaterThanOrEqual(0);
    fs.closeSync(fd);
    ev.allow({ cache: false });
    const r = await withTimeout(child.done, 8000, 'reader child');
    expect(r.stdout.trim()).toBe('ok');
  });

  test('ev.deny({ errno }) is respond({ allow: false, errno })', async () => {
    using fan = new Fanotify({ permissionTimeout: 10000 });
    fan.addWatch(file, MaskFlags.OPEN_PERM);
    const { ev, child } = pending(fan);
    if (!capabilities().denyErrno) {
      expect(thrown(() => ev.deny({ errno: 5 })).kind).toBe('NotSupported');
      ev.deny();
      expect((await withTimeout(child.done, 8000, 'reader child')).stdout.trim()).toBe('EPERM');
      return;
    }
    ev.deny({ errno: 5 }); // EIO
    expect((await withTimeout(child.done, 8000, 'reader child')).stdout.trim()).toBe('EIO');
  });

  test('afan.allow / afan.deny take the same options and reject the same input', async () => {
    const afan = new AsyncFanotify({ permissionTimeout: 10000 });
    try {
      await afan.addWatch(file, MaskFlags.OPEN_PERM);
      const child = startNode(READ_FILE, [file]);
      let ev: FanotifyEvent;
      do ev = await afan.waitForEvent({ timeout: 5000 });
      while (ev.pid !== child.pid);
      expect(thrown(() => (afan.allow as Any)(ev, { bogus: true })).kind).toBe('InvalidArgument');
      expect(thrown(() => (afan.allow as Any)(ev, {}, {})).kind).toBe('InvalidArgument');
      expect(thrown(() => (afan.deny as Any)(ev, { errno: 'EIO' })).kind).toBe('InvalidArgument');
      afan.allow(ev, { cache: true });
      expect((await withTimeout(child.done, 8000, 'reader child')).stdout.trim()).toBe('ok');
      expect(afan.cacheSize).toBe(1);
    } finally {
      await afan.close();
    }
  });
});
