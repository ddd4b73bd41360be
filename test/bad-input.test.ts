/**
 * Bad input: every kind throws a FanotifyError synchronously, of the right
 * kind, and changes no state: the instance keeps working afterwards (a valid
 * watch still sees an event), no mark is left behind, no group fd leaks.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Fanotify, FanotifyError, FanotifyFlags, MaskFlags, type FanotifyEvent, type FanotifyErrorKind } from '../lib';
import { reapAll, startNode, type RunningChild } from './helpers/child';
import { collectFor, collectUntil, withTimeout } from './helpers/events';
import { describeRoot } from './helpers/kernel';
import { mountTmpfs, type Scratch } from './helpers/scratch';
import { thrown } from './helpers/errors';

/** The fanotify group fds this process holds (to show a failed call leaks none). */
function fanotifyFds(): string[] {
  const out: string[] = [];
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`) === 'anon_inode:[fanotify]') out.push(fd);
    } catch {
      // closed while listing
    }
  }
  return out.sort();
}

// Deliberately wrong values: the API's types forbid them, users' JavaScript does not.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

const READ_FILE = `
const fs = require('fs');
try { fs.readFileSync(process.argv[1]); console.log('ok'); }
catch (e) { console.log(e.code || String(e)); }
`;

let counter = 0;

describeRoot('bad input throws FanotifyError synchronously and changes no state', () => {
  let scratch: Scratch;
  let dir: string;
  let plainFile: string;

  beforeAll(() => {
    scratch = mountTmpfs();
    dir = scratch.file('watched');
    fs.mkdirSync(dir);
    plainFile = scratch.file('plain.txt');
    fs.writeFileSync(plainFile, 'plain\n');
  });
  afterEach(() => reapAll());
  afterAll(() => scratch?.cleanup());

  /** The instance still works: a valid watch sees a create, and can be removed again. */
  function assertWorks(fan: Fanotify): void {
    fan.addWatch(dir, MaskFlags.CREATE);
    const created = path.join(dir, `after-${++counter}`);
    fs.writeFileSync(created, '');
    const events = collectUntil(fan, (evs) => evs.some((e) => e.isCreate() && e.path === created), 3000);
    expect(events.filter((e) => e.isCreate()).map((e) => e.path)).toContain(created);
    fan.removeWatch(dir);
  }

  describe('addWatch: path', () => {
    test.each<[string, unknown]>([
      ['a number', 42],
      ['null', null],
      ['undefined', undefined],
      ['an object', { path: '/tmp' }],
      ['an array', ['/tmp']],
      ['a boolean', true],
      ['the empty string', ''],
      ['a string with NUL', '/tmp/a\0b'],
    ])('%s -> InvalidPath', (_name, bad) => {
      using fan = new Fanotify();
      const err = thrown(() => fan.addWatch(bad as Any, MaskFlags.CREATE));
      expect(err.kind).toBe('InvalidPath');
      assertWorks(fan);
    });

    test('a path that does not exist -> InvalidPath with ENOENT, errno, syscall and path', () => {
      using fan = new Fanotify();
      const missing = scratch.file('no', 'such', 'file');
      const err = thrown(() => fan.addWatch(missing, MaskFlags.CREATE));
      expect(err).toMatchObject({ kind: 'InvalidPath', code: 'ENOENT', errno: -2, path: missing });
      expect(typeof err.syscall).toBe('string');
      expect(err.message).toContain(missing);
      expect(FanotifyError.isInvalidPath(err)).toBe(true);
      expect(FanotifyError.isInvalidArgument(err)).toBe(false);
      expect(FanotifyError.isPermissionDenied(err)).toBe(false);
      expect(err.name).toBe('FanotifyError');
      // Nothing was recorded: there is no mark to remove.
      expect(thrown(() => fan.removeWatch(missing)).kind).toBe('InvalidArgument');
      assertWorks(fan);
    });

    test('onlyDir on a file -> InvalidPath (ENOTDIR)', () => {
      using fan = new Fanotify();
      const err = thrown(() => fan.addWatch(plainFile, MaskFlags.OPEN, { onlyDir: true }));
      expect(err).toMatchObject({ kind: 'InvalidPath', code: 'ENOTDIR', path: plainFile });
      expect(FanotifyError.isInvalidPath(err)).toBe(true);
      expect(thrown(() => fan.removeWatch(plainFile)).kind).toBe('InvalidArgument');
      assertWorks(fan);
    });
  });

  describe('addWatch: mask', () => {
    test.each<[string, unknown]>([
      ['0', 0],
      ['an unknown bit (0x200000)', MaskFlags.CREATE | 0x200000],
      ['an unknown bit (0x2000)', MaskFlags.CREATE | 0x2000],
      ['the top bit (0x80000000)', 0x80000000],
      ['only ONDIR', MaskFlags.ONDIR],
      ['only EVENT_ON_CHILD', MaskFlags.EVENT_ON_CHILD],
      ['only ONDIR | EVENT_ON_CHILD', MaskFlags.ONDIR | MaskFlags.EVENT_ON_CHILD],
      ['Q_OVERFLOW', MaskFlags.Q_OVERFLOW],
      ['Q_OVERFLOW with CREATE', MaskFlags.Q_OVERFLOW | MaskFlags.CREATE],
      ['a non-integer', 256.5],
      ['NaN', NaN],
      ['Infinity', Infinity],
      ['a numeric string', '256'],
      ['a bigint', 256n],
      ['null', null],
      ['undefined', undefined],
      ['-1', -1],
      ['a negative mask', -MaskFlags.CREATE],
      ['2 ** 32', 2 ** 32],
      ['MNT_ATTACH on an inode mark', MaskFlags.MNT_ATTACH],
    ])('%s -> InvalidArgument', (_name, bad) => {
      using fan = new Fanotify();
      const err = thrown(() => fan.addWatch(dir, bad as Any));
      expect(err.kind).toBe('InvalidArgument');
      expect(FanotifyError.isInvalidArgument(err)).toBe(true);
      expect(thrown(() => fan.removeWatch(dir)).kind).toBe('InvalidArgument');
      assertWorks(fan);
    });
  });

  describe('addWatch: options', () => {
    test.each<[string, unknown, number?]>([
      ['an unknown key', { recursve: true }],
      ['another unknown key', { bogus: 1 }],
      ['a string for options', 'inode'],
      ['null for options', null],
      ['an array for options', []],
      ['a number for options', 5],
      ["mark: 'bogus'", { mark: 'bogus' }],
      ["mark: 'INODE'", { mark: 'INODE' }],
      ['mark: 5', { mark: 5 }],
      ["onChildren: 'yes'", { onChildren: 'yes' }],
      ['onDir: 1', { onDir: 1 }],
      ['dontFollow: null', { dontFollow: null }],
      ['onlyDir: 0', { onlyDir: 0 }],
      ["ignore: 'true'", { ignore: 'true' }],
      ['evictable: {}', { evictable: {} }],
      ['recursive: 1', { recursive: 1 }],
      ['ignoreSurviveModify without ignore', { ignoreSurviveModify: true }],
      ['ignoreSurviveModify with ignore: false', { ignore: false, ignoreSurviveModify: true }],
      ["CREATE with mark: 'mntns'", { mark: 'mntns' }],
      ['FS_ERROR on an inode mark', {}, MaskFlags.FS_ERROR],
      ["FS_ERROR on mark: 'mount'", { mark: 'mount' }, MaskFlags.FS_ERROR],
    ])('%s -> InvalidArgument', (_name, bad, mask = MaskFlags.CREATE) => {
      using fan = new Fanotify();
      const err = thrown(() => fan.addWatch(dir, mask, bad as Any));
      expect(err.kind).toBe('InvalidArgument');
      expect(thrown(() => fan.removeWatch(dir)).kind).toBe('InvalidArgument');
      assertWorks(fan);
    });
  });

  describe('addWatch: the kernel refuses', () => {
    test('CREATE on a mount mark -> InvalidArgument with EINVAL from fanotify_mark', () => {
      using fan = new Fanotify();
      const err = thrown(() => fan.addWatch(plainFile, MaskFlags.CREATE, { mark: 'mount' }));
      expect(err).toMatchObject({ kind: 'InvalidArgument', code: 'EINVAL', errno: -22, syscall: 'fanotify_mark', path: plainFile });
      expect(err.message).toContain(plainFile);
      expect(thrown(() => fan.removeWatch(plainFile, undefined, { mark: 'mount' })).kind).toBe('InvalidArgument');
      assertWorks(fan);
    });

    test('a mask whose second group fails takes back the first group\'s mark (PRE_ACCESS on tmpfs)', async () => {
      using fan = new Fanotify({ permissionTimeout: 5000, defaultResponse: 'deny' });
      // OPEN_PERM goes to a content-class group first, then PRE_ACCESS to a
      // pre-content group, which tmpfs refuses.
      const err = thrown(() => fan.addWatch(plainFile, MaskFlags.OPEN_PERM | MaskFlags.PRE_ACCESS));
      expect(err).toMatchObject({ syscall: 'fanotify_mark', path: plainFile });
      expect(['NotSupported', 'InvalidArgument']).toContain(err.kind);
      expect(thrown(() => fan.removeWatch(plainFile)).kind).toBe('InvalidArgument');
      // The OPEN_PERM part was taken back: a child opens the file freely.
      const child = startNode(READ_FILE, [plainFile]);
      const r = await withTimeout(child.done, 8000, 'reader child');
      expect(r.stdout.trim()).toBe('ok');
      expect(collectFor(fan, 200)).toEqual([]);
      assertWorks(fan);
    });
  });

  describe('constructor and withFlags', () => {
    test.each<[string, unknown]>([
      ['an unknown key', { bogus: 1 }],
      ['a typo of a key', { permisionTimeout: 100 }],
      ['a number for options', 5],
      ['a string for options', 'fast'],
      ['null for options', null],
      ['bufferSize < 4096', { bufferSize: 1000 }],
      ['bufferSize 4095', { bufferSize: 4095 }],
      ['a non-integer bufferSize', { bufferSize: 8192.5 }],
      ['a string bufferSize', { bufferSize: '65536' }],
      ['a huge bufferSize', { bufferSize: 2 ** 31 }],
      ['permissionTimeout 0', { permissionTimeout: 0 }],
      ['permissionTimeout -1', { permissionTimeout: -1 }],
      ['permissionTimeout NaN', { permissionTimeout: NaN }],
      ['permissionTimeout Infinity', { permissionTimeout: Infinity }],
      ['permissionTimeout 1.5', { permissionTimeout: 1.5 }],
      ["defaultResponse 'maybe'", { defaultResponse: 'maybe' }],
      ['defaultResponse true', { defaultResponse: true }],
      ['queueLimit 0', { queueLimit: 0 }],
      ['queueLimit -1', { queueLimit: -1 }],
      ["allowSelf 'no'", { allowSelf: 'no' }],
      ['processInfo 1', { processInfo: 1 }],
      ['flags with an unknown bit', { flags: 0x80000000 }],
      ['flags with another unknown bit', { flags: 0x100000 }],
      ['flags with CLASS_CONTENT', { flags: FanotifyFlags.CLASS_CONTENT }],
      ['flags with CLASS_PRE_CONTENT', { flags: FanotifyFlags.CLASS_PRE_CONTENT }],
      ['flags with REPORT_FID', { flags: FanotifyFlags.REPORT_FID }],
      ['flags with REPORT_DFID_NAME', { flags: FanotifyFlags.REPORT_DFID_NAME }],
      ['non-integer flags', { flags: 1.5 }],
      ['negative flags', { flags: -1 }],
      ['negative eventFlags', { eventFlags: -1 }],
    ])('new Fanotify(%s) -> InvalidArgument, no group created', (_name, bad) => {
      const before = fanotifyFds();
      const err = thrown(() => new Fanotify(bad as Any));
      expect(err.kind).toBe('InvalidArgument');
      expect(fanotifyFds()).toEqual(before);
      using fan = new Fanotify();
      assertWorks(fan);
    });

    test.each<[string, unknown, unknown]>([
      ['unknown bits', 0x80000000, undefined],
      ['another unknown bit', 0x100000, undefined],
      ['a non-integer', 4.5, undefined],
      ['a negative number', -1, undefined],
      ['a string', '4', undefined],
      ['flags also in options.flags', FanotifyFlags.CLASS_NOTIF, { flags: FanotifyFlags.NONBLOCK }],
      ['flags also in options.flags (same value)', FanotifyFlags.CLOEXEC, { flags: FanotifyFlags.CLOEXEC }],
      ['a bad option beside good flags', FanotifyFlags.CLOEXEC, { bufferSize: 10 }],
    ])('withFlags with %s -> InvalidArgument, no group created', (_name, flags, options) => {
      const before = fanotifyFds();
      const err = thrown(() => Fanotify.withFlags(flags as Any, options as Any));
      expect(err.kind).toBe('InvalidArgument');
      expect(fanotifyFds()).toEqual(before);
    });

    test('withFlags with a combination the kernel refuses -> InvalidArgument with EINVAL from fanotify_init, no fd leaked', () => {
      const before = fanotifyFds();
      // REPORT_NAME needs REPORT_DIR_FID.
      const err = thrown(() => Fanotify.withFlags(FanotifyFlags.REPORT_NAME));
      expect(err).toMatchObject({ kind: 'InvalidArgument', code: 'EINVAL', errno: -22, syscall: 'fanotify_init' });
      expect(err.message).toMatch(/REPORT_NAME needs REPORT_DIR_FID/);
      expect(fanotifyFds()).toEqual(before);
    });
  });

  describe('setBufferSize', () => {
    test.each<[string, unknown]>([
      ['10', 10],
      ['4095', 4095],
      ['a non-integer', 8192.5],
      ['a string', '65536'],
      ['undefined', undefined],
      ['2 ** 31', 2 ** 31],
    ])('setBufferSize(%s) -> InvalidArgument', (_name, bad) => {
      using fan = new Fanotify();
      expect(thrown(() => fan.setBufferSize(bad as Any)).kind).toBe('InvalidArgument');
      assertWorks(fan);
      fan.setBufferSize(4096);
      assertWorks(fan);
    });
  });

  describe('respond', () => {
    test('bad responses to a pending permission event throw InvalidArgument and leave it pending', async () => {
      using fan = new Fanotify({ permissionTimeout: 10000 });
      fan.addWatch(plainFile, MaskFlags.OPEN_PERM);
      const child: RunningChild = startNode(READ_FILE, [plainFile]);
      const events = collectUntil(fan, (evs) => evs.some((e) => e.pid === child.pid), 5000);
      const ev = events.find((e) => e.pid === child.pid) as FanotifyEvent;
      expect(ev).toBeDefined();
      expect(ev.isPermission()).toBe(true);
      const fd = ev.fd;
      expect(fd).toBeGreaterThanOrEqual(0);

      const bad: Array<[string, unknown]> = [
        ["{allow: 'yes'}", { allow: 'yes' }],
        ['{}', {}],
        ['{allow: true, errno: 5}', { allow: true, errno: 5 }],
        ['{allow: false, errno: 0}', { allow: false, errno: 0 }],
        ['{allow: false, errno: 256}', { allow: false, errno: 256 }],
        ['{allow: false, errno: 1.5}', { allow: false, errno: 1.5 }],
        ["{allow: false, audit: 'yes'}", { allow: false, audit: 'yes' }],
        ['{allow: true, bogus: 1}', { allow: true, bogus: 1 }],
        ['null', null],
        ['true', true],
        ['undefined', undefined],
      ];
      const kinds = bad.map(([name, response]) => [name, thrown(() => fan.respond(ev, response as Any)).kind]);
      expect(kinds).toEqual(bad.map(([name]) => [name, 'InvalidArgument']));
      expect(thrown(() => ev.respond({ allow: 'no' } as Any)).kind).toBe('InvalidArgument');
      // Not an event at all.
      expect(thrown(() => fan.respond({ mask: MaskFlags.OPEN_PERM } as Any, { allow: true })).kind).toBe('InvalidArgument');
      expect(thrown(() => fan.allow(null as Any)).kind).toBe('InvalidArgument');

      // Still pending, still answerable.
      expect(ev.fd).toBe(fd);
      fan.allow(ev);
      expect(ev.fd).toBe(fd); // JavaScript's descriptor, still open
      fs.closeSync(fd);
      const r = await withTimeout(child.done, 8000, 'reader child');
      expect(r.stdout.trim()).toBe('ok');
      fan.removeWatch(plainFile);
      assertWorks(fan);
    });
  });

  describe('removeWatch', () => {
    test.each<[string, FanotifyErrorKind, () => unknown[]]>([
      ['a path never watched', 'InvalidArgument', () => [dir]],
      ['a nonexistent path', 'InvalidArgument', () => [scratch.file('nope')]],
      ['a number for the path', 'InvalidPath', () => [7]],
      ['the empty path', 'InvalidPath', () => ['']],
      ['mask 0', 'InvalidArgument', () => [dir, 0]],
      ['a non-integer mask', 'InvalidArgument', () => [dir, 1.5]],
      ['unknown mask bits', 'InvalidArgument', () => [dir, 0x200000]],
      ['an unknown option', 'InvalidArgument', () => [dir, MaskFlags.CREATE, { bogus: true }]],
      ["mark: 'bogus'", 'InvalidArgument', () => [dir, MaskFlags.CREATE, { mark: 'bogus' }]],
    ])('%s -> %s', (_name, kind, args) => {
      using fan = new Fanotify();
      expect(thrown(() => (fan.removeWatch as Any)(...args())).kind).toBe(kind);
      assertWorks(fan);
    });

    test('removing a mark of another type or an ignore mark that was never added -> InvalidArgument; the real mark stays', () => {
      using fan = new Fanotify();
      fan.addWatch(dir, MaskFlags.CREATE);
      expect(thrown(() => fan.removeWatch(dir, MaskFlags.CREATE, { mark: 'filesystem' })).kind).toBe('InvalidArgument');
      expect(thrown(() => fan.removeWatch(dir, MaskFlags.CREATE, { ignore: true })).kind).toBe('InvalidArgument');
      expect(thrown(() => fan.removeWatch(dir, 0x200000)).kind).toBe('InvalidArgument');
      const created = path.join(dir, `still-${++counter}`);
      fs.writeFileSync(created, '');
      const events = collectUntil(fan, (evs) => evs.some((e) => e.path === created), 3000);
      expect(events.map((e) => e.path)).toContain(created);
      fan.removeWatch(dir);
      expect(thrown(() => fan.removeWatch(dir)).kind).toBe('InvalidArgument');
    });
  });

  describe('reads', () => {
    test.each<[string, unknown]>([
      ['{timeout: -5}', { timeout: -5 }],
      ['{bogus: 1}', { bogus: 1 }],
      ['{timeout: 1.5}', { timeout: 1.5 }],
      ["{timeout: '10'}", { timeout: '10' }],
      ['{timeout: NaN}', { timeout: NaN }],
      ['a string', 'x'],
      ['null', null],
      ['a number', 100],
    ])('readEvents(%s) and readEvent(same) -> InvalidArgument', (_name, bad) => {
      using fan = new Fanotify();
      fan.addWatch(dir, MaskFlags.CREATE);
      expect(thrown(() => fan.readEvents(bad as Any)).kind).toBe('InvalidArgument');
      expect(thrown(() => fan.readEvent(bad as Any)).kind).toBe('InvalidArgument');
      fan.removeWatch(dir);
      assertWorks(fan);
    });

    // A blocking read with nothing watched could never return. It must throw
    // at once; this is checked first in a child (so a regression times out
    // there instead of hanging this test process), then here.
    test('a blocking read with nothing watched throws InvalidArgument at once', async () => {
      const swc = require.resolve('@swc/core');
      const lib = path.resolve(__dirname, '../lib');
      const code = `
        const fs = require('fs');
        const swc = require(${JSON.stringify(swc)});
        require.extensions['.ts'] = (m, filename) => {
          const out = swc.transformSync(fs.readFileSync(filename, 'utf8'), {
            filename, jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' },
          });
          m._compile(out.code, filename);
        };
        const { Fanotify } = require(${JSON.stringify(lib)});
        const fan = new Fanotify();
        const out = {};
        for (const [name, read] of [['readEvent', () => fan.readEvent()], ['readEvents', () => fan.readEvents()], ['events', () => fan.events().next()]]) {
          const start = Date.now();
          try { read(); out[name] = 'returned'; } catch (e) { out[name] = e.kind; }
          out[name + 'Ms'] = Date.now() - start;
        }
        fan.close();
        console.log(JSON.stringify(out));
      `;
      const child = startNode(code, [], 15000);
      const r = await withTimeout(child.done, 20000, 'the blocking-read child');
      expect(r.signal).toBeNull();
      const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}');
      expect(out).toMatchObject({ readEvent: 'InvalidArgument', readEvents: 'InvalidArgument', events: 'InvalidArgument' });
      expect(out.readEventMs).toBeLessThan(1000);

      // The child proved it returns: now the same in this process.
      using fan = new Fanotify();
      const start = Date.now();
      const err = thrown(() => fan.readEvent());
      expect(err.kind).toBe('InvalidArgument');
      expect(Date.now() - start).toBeLessThan(1000);
      expect(thrown(() => fan.readEvents()).kind).toBe('InvalidArgument');
      assertWorks(fan);
      // After the last mark is removed, a blocking read would again never return.
      expect(thrown(() => fan.readEvent()).kind).toBe('InvalidArgument');
    });
  });

  describe('a closed instance', () => {
    test('every call throws Closed (reads with a timeout too); close() stays idempotent', () => {
      const fan = new Fanotify();
      fan.addWatch(dir, MaskFlags.CREATE);
      fan.close();
      expect(fan.closed).toBe(true);
      for (const call of [
        () => fan.addWatch(dir, MaskFlags.CREATE),
        () => fan.removeWatch(dir),
        () => fan.readEvents({ timeout: 0 }),
        () => fan.readEvent({ timeout: 10 }),
        () => fan.setBufferSize(8192),
      ]) {
        const err = thrown(call);
        expect(err.kind).toBe('Closed');
        expect(FanotifyError.isClosed(err)).toBe(true);
      }
      expect(() => fan.close()).not.toThrow();
      expect(() => fan[Symbol.dispose]()).not.toThrow();
    });
  });
});
