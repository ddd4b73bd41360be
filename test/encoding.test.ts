/**
 * The option `encoding`: names are bytes on Linux. With 'buffer', every path
 * and name of an event is a Buffer with the kernel's exact bytes, so a file
 * whose name is not UTF-8 can be opened again from its event; with the
 * default 'utf8' such bytes read as U+FFFD. Both front ends, FID and fd-mode
 * groups, renames, a recursive watch, toJSON(), and bad values.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { AsyncFanotify, Fanotify, FanotifyEvent, FanotifyFlags, MaskFlags, lowLevel as ll } from '../lib';
import { reapAll, runChild } from './helpers/child';
import { ensureDist, readableDist } from './helpers/dist';
import { describeRoot } from './helpers/kernel';
import { mountTmpfs, type Scratch } from './helpers/scratch';
import { thrown } from './helpers/errors';
import { withTimeout } from './helpers/events';

const WAIT_MS = 3000;
/** 'f', two bytes that are not UTF-8, '.t': the name of the test files. */
const BAD_NAME = Buffer.from([0x66, 0xff, 0xfe, 0x2e, 0x74]);
/** What the default encoding makes of it. */
const BAD_NAME_UTF8 = 'f\uFFFD\uFFFD.t';

function join(dir: string | Buffer, ...names: Array<string | Buffer>): Buffer {
  const parts: Buffer[] = [Buffer.from(dir)];
  for (const name of names) parts.push(Buffer.from('/'), Buffer.from(name));
  return Buffer.concat(parts);
}

function readUntil<P extends string | Buffer>(
  fan: Fanotify<'utf8'> | Fanotify<'buffer'>,
  match: (ev: FanotifyEvent<P>) => boolean,
): FanotifyEvent<P> {
  const seen: Array<FanotifyEvent<P>> = [];
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    for (const ev of fan.readEvents({ timeout: left }) as Array<FanotifyEvent<P>>) {
      if (match(ev)) return ev;
      seen.push(ev);
    }
  }
  throw new Error(`no matching event within ${WAIT_MS} ms; saw ${JSON.stringify(seen)}`);
}

/** The first event from an async instance's listener that matches. */
function listenUntil<E extends 'utf8' | 'buffer'>(
  afan: AsyncFanotify<E>,
  match: (ev: FanotifyEvent<E extends 'buffer' ? Buffer : string>) => boolean,
): Promise<FanotifyEvent<E extends 'buffer' ? Buffer : string>> {
  return withTimeout(
    new Promise((resolve) => {
      const onEvent = (ev: FanotifyEvent<E extends 'buffer' ? Buffer : string>) => {
        if (!match(ev)) return;
        (afan as AsyncFanotify<'utf8'>).off('event', onEvent as never);
        resolve(ev);
      };
      (afan as AsyncFanotify<'utf8'>).on('event', onEvent as never);
    }),
    WAIT_MS,
    'a matching event',
  );
}

const isBuffer = (p: unknown, bytes: Buffer) => Buffer.isBuffer(p) && p.equals(bytes);

describeRoot('encoding: paths and names as the kernel gives them', () => {
  let scratch: Scratch;
  beforeAll(() => (scratch = mountTmpfs()));
  afterAll(() => {
    reapAll();
    scratch?.cleanup();
  });

  test("bad values of encoding are InvalidArgument, in both front ends", () => {
    for (const encoding of ['latin1', 'Buffer', '', 5, null, true]) {
      expect(thrown(() => new Fanotify({ encoding } as never)).kind).toBe('InvalidArgument');
      expect(thrown(() => new AsyncFanotify({ encoding } as never)).kind).toBe('InvalidArgument');
      expect(thrown(() => Fanotify.withFlags(FanotifyFlags.CLASS_NOTIF, { encoding } as never)).kind).toBe('InvalidArgument');
    }
    expect(thrown(() => new Fanotify({ encoding: 'latin1' } as never)).message).toMatch(/options\.encoding must be one of 'utf8', 'buffer'/);
    new Fanotify({ encoding: 'utf8' }).close();
    new Fanotify({ encoding: undefined }).close();
  });

  test("sync, 'buffer': CREATE's name and path are the exact bytes, and the path opens the file", () => {
    const dir = scratch.freshDir();
    const fan = new Fanotify({ encoding: 'buffer' });
    try {
      fan.addWatch(dir, MaskFlags.CREATE | MaskFlags.CLOSE_WRITE);
      const file = join(dir, BAD_NAME);
      fs.writeFileSync(file, 'content');
      const created = readUntil<Buffer>(fan, (ev) => ev.isCreate());
      // Typed: a Fanotify<'buffer'> reads FanotifyEvent<Buffer>.
      const typed: Array<FanotifyEvent<Buffer>> = fan.readEvents({ timeout: 0 });
      expect(Array.isArray(typed)).toBe(true);
      expect(isBuffer(created.name, BAD_NAME)).toBe(true);
      expect(isBuffer(created.path, file)).toBe(true);
      expect(isBuffer(created.info.path, file)).toBe(true);
      expect(isBuffer(created.info.filename(), BAD_NAME)).toBe(true);
      expect(fs.readFileSync(created.path!, 'utf8')).toBe('content');
      const fd = fs.openSync(created.path!, 'r');
      fs.closeSync(fd);
      // Other strings stay strings; description() decodes for humans.
      expect(created.types()).toContain('CREATE');
      expect(created.description()).toContain(`${dir}/${BAD_NAME_UTF8}`);
    } finally {
      fan.close();
    }
  });

  test("sync, default 'utf8': the bytes that are not UTF-8 read as U+FFFD, and that path does not open", () => {
    const dir = scratch.freshDir();
    const fan = new Fanotify();
    try {
      fan.addWatch(dir, MaskFlags.CREATE);
      fs.writeFileSync(join(dir, BAD_NAME), 'content');
      const created = readUntil<string>(fan, (ev) => ev.isCreate());
      expect(created.name).toBe(BAD_NAME_UTF8);
      expect(created.path).toBe(`${dir}/${BAD_NAME_UTF8}`);
      expect(created.info.filename()).toBe(BAD_NAME_UTF8);
      expect(() => fs.openSync(created.path!, 'r')).toThrow(/ENOENT/);
    } finally {
      fan.close();
    }
  });

  test("sync, 'buffer', fd mode (withFlags): paths read back from /proc/self/fd are exact too", () => {
    const dir = scratch.freshDir();
    const file = join(dir, BAD_NAME);
    fs.writeFileSync(file, 'x');
    const fan = Fanotify.withFlags(FanotifyFlags.CLASS_NOTIF, { encoding: 'buffer' });
    try {
      fan.addWatch(dir, MaskFlags.CLOSE_WRITE);
      fs.appendFileSync(file, 'y');
      const closed = readUntil<Buffer>(fan, (ev) => ev.isClose());
      expect(isBuffer(closed.path, file)).toBe(true);
      expect(isBuffer(closed.info.filename(), BAD_NAME)).toBe(true);
      expect(closed.name).toBeNull();
      expect(fs.readFileSync(closed.path!, 'utf8')).toBe('xy');
    } finally {
      fan.close();
    }
  });

  test("sync, 'buffer': a rename gives oldPath and newPath as exact bytes; toJSON() keeps them as Buffer JSON", () => {
    const dir = scratch.freshDir();
    const from = join(dir, BAD_NAME);
    const toName = Buffer.concat([BAD_NAME, Buffer.from([0x80])]);
    const to = join(dir, toName);
    fs.writeFileSync(from, 'x');
    const fan = new Fanotify({ encoding: 'buffer' });
    try {
      fan.addWatch(dir, MaskFlags.RENAME);
      fs.renameSync(from, to);
      const renamed = readUntil<Buffer>(fan, (ev) => (ev.mask & MaskFlags.RENAME) !== 0);
      expect(isBuffer(renamed.oldPath, from)).toBe(true);
      expect(isBuffer(renamed.newPath, to)).toBe(true);
      expect(renamed.description()).toContain(' -> ');
      const json = JSON.parse(JSON.stringify(renamed)) as Record<string, unknown>;
      expect(json.oldPath).toEqual({ type: 'Buffer', data: [...from] });
      expect(Buffer.from(json.newPath as never).equals(to)).toBe(true);
      expect(json.types).toEqual(renamed.types());
      // An event with no path of its own keeps null in the JSON.
      expect(json.path === null || typeof json.path === 'object').toBe(true);
    } finally {
      fan.close();
    }
  });

  test("sync, default: toJSON() has plain strings", () => {
    const dir = scratch.freshDir();
    const fan = new Fanotify();
    try {
      fan.addWatch(dir, MaskFlags.CREATE);
      fs.writeFileSync(join(dir, BAD_NAME), '');
      const created = readUntil<string>(fan, (ev) => ev.isCreate());
      const json = JSON.parse(JSON.stringify(created)) as Record<string, unknown>;
      expect(json.name).toBe(BAD_NAME_UTF8);
      expect(json.path).toBe(`${dir}/${BAD_NAME_UTF8}`);
    } finally {
      fan.close();
    }
  });

  test("async, 'buffer': listeners and nextEvent() get the exact bytes", async () => {
    const dir = scratch.freshDir();
    const afan = new AsyncFanotify({ encoding: 'buffer' });
    try {
      await afan.addWatch(dir, MaskFlags.CREATE | MaskFlags.CLOSE_WRITE);
      const file = join(dir, BAD_NAME);
      const heard = listenUntil(afan, (ev) => ev.isCreate());
      fs.writeFileSync(file, 'content');
      const created = await heard;
      const path: Buffer | null = created.path; // typed
      expect(isBuffer(path, file)).toBe(true);
      expect(isBuffer(created.name, BAD_NAME)).toBe(true);
      expect(fs.readFileSync(path!, 'utf8')).toBe('content');

      // The pull side: nextEvent() once listeners are gone.
      afan.removeAllListeners('event');
      const second = join(dir, Buffer.concat([BAD_NAME, Buffer.from('2')]));
      fs.writeFileSync(second, '');
      let ev: FanotifyEvent<Buffer> | null;
      do ev = await withTimeout(afan.nextEvent(), WAIT_MS, 'nextEvent');
      while (ev !== null && !(ev.isCreate() && isBuffer(ev.path, second)));
      expect(ev).not.toBeNull();
      expect(isBuffer(ev!.info.filename(), Buffer.concat([BAD_NAME, Buffer.from('2')]))).toBe(true);
    } finally {
      await afan.close();
    }
  });

  test("async, default: U+FFFD in names and paths", async () => {
    const dir = scratch.freshDir();
    const afan = new AsyncFanotify();
    try {
      await afan.addWatch(dir, MaskFlags.CREATE);
      const heard = listenUntil(afan, (ev) => ev.isCreate());
      fs.writeFileSync(join(dir, BAD_NAME), '');
      const created = await heard;
      const name: string | null = created.name; // typed
      expect(name).toBe(BAD_NAME_UTF8);
      expect(created.path).toBe(`${dir}/${BAD_NAME_UTF8}`);
    } finally {
      await afan.close();
    }
  });

  test("async, 'buffer': a permission event read on the loop has the exact path", async () => {
    const dir = scratch.freshDir();
    const file = join(dir, BAD_NAME);
    fs.writeFileSync(file, 'guarded');
    const afan = new AsyncFanotify({ encoding: 'buffer', permissionTimeout: 2000 });
    try {
      await afan.addWatch(dir, MaskFlags.OPEN_PERM);
      const asked = withTimeout(
        new Promise<FanotifyEvent<Buffer>>((resolve) =>
          afan.on('permission', (ev) => {
            ev.allow();
            if (isBuffer(ev.path, file)) resolve(ev);
          }),
        ),
        WAIT_MS,
        'a permission event',
      );
      // Another process opens it (this one's own opens are allowed natively);
      // a glob, since arguments are strings and the name is not UTF-8.
      const cat = runChild('sh', ['-c', 'cat "$0"/f*.t', dir], 5000);
      const ev = await asked;
      expect(isBuffer(ev.info.filename(), BAD_NAME)).toBe(true);
      expect((await cat).stdout).toBe('guarded');
    } finally {
      await afan.close();
    }
  });

  test.each(['sync', 'async'] as const)(
    "recursive watch (%s), 'buffer': a file inside a directory whose name is not UTF-8",
    async (frontEnd) => {
      const dir = scratch.freshDir();
      const sub = join(dir, Buffer.from([0x64, 0xc3, 0x28])); // 'd' + an invalid two-byte sequence
      fs.mkdirSync(sub);
      const file = join(sub, BAD_NAME);
      const match = (ev: FanotifyEvent<Buffer>) => ev.isCreate() && isBuffer(ev.path, file);
      if (frontEnd === 'sync') {
        const fan = new Fanotify({ encoding: 'buffer' });
        try {
          fan.addWatch(dir, MaskFlags.CREATE, { recursive: true });
          fs.writeFileSync(file, 'deep');
          const created = readUntil<Buffer>(fan, match);
          expect(isBuffer(created.name, BAD_NAME)).toBe(true);
          expect(fs.readFileSync(created.path!, 'utf8')).toBe('deep');
        } finally {
          fan.close();
        }
      } else {
        const afan = new AsyncFanotify({ encoding: 'buffer' });
        try {
          await afan.addWatch(dir, MaskFlags.CREATE, { recursive: true });
          const heard = listenUntil(afan, match);
          fs.writeFileSync(file, 'deep');
          const created = await heard;
          expect(isBuffer(created.name, BAD_NAME)).toBe(true);
          expect(fs.readFileSync(created.path!, 'utf8')).toBe('deep');
        } finally {
          await afan.close();
        }
      }
    },
  );

  test('addWatch takes a Buffer path of UTF-8 and a file: URL; a Buffer that is not UTF-8 is InvalidPath, not another path', async () => {
    const dir = scratch.freshDir('sub');
    const fan = new Fanotify();
    const afan = new AsyncFanotify();
    try {
      fan.addWatch(Buffer.from(dir), MaskFlags.CREATE);
      await afan.addWatch(pathToFileURL(path.join(dir, 'sub')), MaskFlags.CREATE);
      fs.writeFileSync(path.join(dir, 'x'), '');
      expect(readUntil<string>(fan, (ev) => ev.isCreate()).path).toBe(path.join(dir, 'x'));
      const heard = listenUntil(afan, (ev) => ev.isCreate());
      fs.writeFileSync(path.join(dir, 'sub', 'y'), '');
      expect((await heard).path).toBe(path.join(dir, 'sub', 'y'));
      fan.removeWatch(Buffer.from(dir), MaskFlags.CREATE);

      const bad = join(dir, Buffer.from([0x64, 0xff]));
      fs.mkdirSync(bad);
      const err = thrown(() => fan.addWatch(bad, MaskFlags.CREATE));
      expect(err.kind).toBe('InvalidPath');
      expect(err.message).toMatch(/not UTF-8/);
      await expect(afan.addWatch(bad, MaskFlags.CREATE)).rejects.toMatchObject({ kind: 'InvalidPath' });
      // Nothing was marked: a blocking read says so.
      expect(thrown(() => fan.readEvent()).message).toMatch(/nothing is watched/);
    } finally {
      fan.close();
      await afan.close();
    }
  });

  test('lowLevel.fanotifyMark takes a Buffer path as its exact bytes', () => {
    const dir = scratch.freshDir();
    const file = join(dir, BAD_NAME);
    fs.writeFileSync(file, 'x');
    const g = ll.fanotifyInit(ll.FAN_CLASS_NOTIF | ll.FAN_CLOEXEC | ll.FAN_NONBLOCK, fs.constants.O_RDONLY);
    const dirfd = fs.openSync(dir, 'r');
    try {
      // Relative to dirfd: only the file's own bytes name it.
      ll.fanotifyMark(g, ll.FAN_MARK_ADD, ll.FAN_CLOSE_WRITE, dirfd, BAD_NAME);
      fs.appendFileSync(file, 'y');
      const events = ll.readEvents(g);
      expect(events.map((e) => e.mask)).toEqual([ll.FAN_CLOSE_WRITE]);
      for (const e of events) if (e.fd >= 0) ll.close(e.fd);
      expect(thrown(() => ll.fanotifyMark(g, ll.FAN_MARK_ADD, ll.FAN_CLOSE_WRITE, dirfd, Buffer.from('a\0b'))).kind).toBe('InvalidPath');
      expect(thrown(() => ll.fanotifyMark(g, ll.FAN_MARK_ADD, ll.FAN_CLOSE_WRITE, dirfd, Buffer.alloc(0))).kind).toBe('InvalidPath');
    } finally {
      fs.closeSync(dirfd);
      ll.close(g);
    }
  });

  test("unprivileged recursive watch over a directory whose name is not UTF-8: the watch is placed; 'buffer' names are exact, scanned ones too", async () => {
    ensureDist();
    const dir = scratch.freshDir('ok');
    fs.mkdirSync(join(dir, Buffer.from([0x64, 0xff])));
    fs.chmodSync(dir, 0o777);
    fs.chmodSync(path.join(dir, 'ok'), 0o777);
    const code = `
      const fs = require('fs');
      const { Fanotify, MaskFlags } = require(${JSON.stringify(readableDist())});
      const dir = process.argv[1];
      const bad = Buffer.from([${[...BAD_NAME].join(',')}]);
      const fan = new Fanotify({ encoding: 'buffer' });
      const out = {};
      try {
        fan.addWatch(dir, MaskFlags.CREATE, { recursive: true });
        out.placed = true;
        fs.writeFileSync(Buffer.concat([Buffer.from(dir + '/ok/'), bad]), '');
        // A new directory with such a file made before its mark can be
        // placed: the file comes from the scan of the directory.
        fs.mkdirSync(dir + '/new');
        const inNew = Buffer.concat([Buffer.from(dir + '/new/'), bad]);
        fs.writeFileSync(inNew, '');
        const deadline = Date.now() + 3000;
        while (!(out.name && out.inNew) && Date.now() < deadline) {
          for (const ev of fan.readEvents({ timeout: 200 })) {
            if (!ev.isCreate() || !ev.name || ev.isDirectory) continue;
            if (ev.path.includes(Buffer.from('/ok/'))) out.name = [...ev.name];
            if (ev.path.includes(Buffer.from('/new/'))) out.inNew = ev.path.equals(inNew) && ev.name.equals(bad);
          }
        }
      } catch (e) {
        out.error = e.kind + ': ' + e.message;
      }
      fan.close();
      console.log(JSON.stringify(out));
    `;
    const r = await runChild('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', code, dir], 15000, { cwd: '/' });
    const out = JSON.parse(r.stdout.trim().split('\n').pop() || '{}') as { placed?: boolean; name?: number[]; inNew?: boolean; error?: string };
    expect(out.error).toBeUndefined();
    expect(out.placed).toBe(true);
    expect(out.name).toEqual([...BAD_NAME]);
    expect(out.inNew).toBe(true);
  });
});
