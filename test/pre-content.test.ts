/**
 * Pre-content events (PRE_ACCESS, Linux 6.14): a handler fills a file
 * through the event's read-write fd before the reader sees its content.
 * They need a filesystem that opts in (ext4 here, on a loop device; not
 * tmpfs). Every access that must reach JavaScript comes from a child.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AsyncFanotify, MaskFlags, capabilities, type FanotifyEvent } from '../lib';
import { reapAll, runChild } from './helpers/child';
import { withTimeout } from './helpers/events';
import { describeRoot, kernelLacks } from './helpers/kernel';
import { mountExt4, mountTmpfs, type Scratch } from './helpers/scratch';
import { thrown } from './helpers/errors';

const EIO = 5;

/** Reads `count` bytes at `offset` of argv[1] (whole file when no offset); prints the bytes as text, or the error code. */
const READ_AT = `
const fs = require('fs');
const [file, offset, count] = process.argv.slice(1);
try {
  if (offset === undefined) process.stdout.write(fs.readFileSync(file, 'latin1'));
  else {
    const fd = fs.openSync(file, 'r');
    const buf = Buffer.alloc(Number(count));
    const n = fs.readSync(fd, buf, 0, buf.length, Number(offset));
    process.stdout.write(buf.subarray(0, n).toString('latin1'));
  }
} catch (e) { process.stdout.write('ERR ' + (e.code || String(e))); }
`;

async function read(file: string, offset?: number, count?: number): Promise<string> {
  const args = offset === undefined ? [file] : [file, String(offset), String(count)];
  const r = await withTimeout(runChild(process.execPath, ['-e', READ_AT, ...args], 10000), 12000, 'reader child');
  return r.stdout;
}

describeRoot('pre-content events (PRE_ACCESS)', () => {
  let ext4: Scratch;
  beforeAll(() => {
    ext4 = mountExt4(32);
  });
  afterEach(() => reapAll());
  afterAll(() => ext4.cleanup());

  const skip = () => kernelLacks(capabilities().preContent, 'PRE_ACCESS (Linux 6.14)');

  /** A placeholder directory: each file of `contents` with its size and no content, and the source it comes from. */
  function placeholders(contents: Record<string, string | Buffer>): { lazy: string; source: string } {
    const base = ext4.freshDir();
    const lazy = path.join(base, 'lazy');
    const source = path.join(base, 'source');
    fs.mkdirSync(lazy);
    fs.mkdirSync(source);
    for (const [name, data] of Object.entries(contents)) {
      fs.writeFileSync(path.join(source, name), data);
      fs.writeFileSync(path.join(lazy, name), '');
      fs.truncateSync(path.join(lazy, name), Buffer.byteLength(data));
    }
    return { lazy, source };
  }

  async function guard(lazy: string, handle: (ev: FanotifyEvent) => void) {
    const afan = new AsyncFanotify({ permissionTimeout: 8000 });
    const seen: FanotifyEvent[] = [];
    afan.on('permission', (ev) => {
      seen.push(ev);
      handle(ev);
    });
    afan.on('error', () => undefined);
    await afan.addWatch(lazy, MaskFlags.PRE_ACCESS);
    return { afan, seen };
  }

  test('a placeholder is filled on first cat through ev.fd; allow({ cache: true }) stops later events', async () => {
    if (skip()) return;
    const { lazy, source } = placeholders({ 'a.txt': 'the real content of a\n', 'b.txt': 'bee\n' });
    const { afan, seen } = await guard(lazy, (ev) => {
      const name = path.basename(String(ev.path));
      const data = fs.readFileSync(path.join(source, name));
      const fd = ev.fd;
      try {
        fs.writeSync(fd, data, 0, data.length, 0);
      } finally {
        fs.closeSync(fd);
      }
      ev.allow({ cache: true });
    });
    try {
      const cat = await withTimeout(runChild('cat', [path.join(lazy, 'a.txt')]), 10000, 'cat');
      expect(cat.stdout).toBe('the real content of a\n');
      expect(seen).toHaveLength(1);
      expect(seen[0].isAccess()).toBe(true);
      expect(seen[0].isPermission()).toBe(true);
      expect(seen[0].types()).toEqual(['PRE_ACCESS']);
      expect(seen[0].range).toEqual({ offset: 0, count: expect.any(Number) });
      expect(await read(path.join(lazy, 'a.txt'))).toBe('the real content of a\n');
      expect(await read(path.join(lazy, 'a.txt'), 4, 4)).toBe('real');
      expect(seen).toHaveLength(1);
      expect(afan.cacheSize).toBe(1);
      // The other placeholder is still asked about.
      expect(await read(path.join(lazy, 'b.txt'))).toBe('bee\n');
      expect(seen).toHaveLength(2);
    } finally {
      await afan.close();
    }
  });

  test('an unreachable source: deny({ errno: EIO }) fails the reader with EIO', async () => {
    if (skip()) return;
    const { lazy } = placeholders({ 'gone.bin': 'never fetched' });
    const { afan, seen } = await guard(lazy, (ev) => ev.deny({ errno: EIO }));
    try {
      expect(await read(path.join(lazy, 'gone.bin'))).toBe('ERR EIO');
      const cat = await withTimeout(runChild('cat', [path.join(lazy, 'gone.bin')]), 10000, 'cat');
      expect(cat.code).not.toBe(0);
      expect(cat.stderr).toMatch(/Input\/output error/);
      expect(seen.length).toBeGreaterThanOrEqual(2);
      expect(afan.cacheSize).toBe(0);
    } finally {
      await afan.close();
    }
  });

  test('a read in the middle of a large file gets its range; filling just that range serves it', async () => {
    if (skip()) return;
    const size = 8 * 1024 * 1024;
    const big = Buffer.alloc(size);
    for (let i = 0; i < size; i += 4096) big.write(`block ${i / 4096} `.padEnd(32, '.'), i, 'latin1');
    const { lazy, source } = placeholders({ 'big.bin': big });
    const ranges: Array<{ offset: number; count: number } | undefined> = [];
    const { afan } = await guard(lazy, (ev) => {
      ranges.push(ev.range);
      const { offset, count } = ev.range!;
      const data = Buffer.alloc(count);
      const src = fs.openSync(path.join(source, 'big.bin'), 'r');
      const n = fs.readSync(src, data, 0, count, offset);
      fs.closeSync(src);
      const fd = ev.fd;
      fs.writeSync(fd, data, 0, n, offset);
      fs.closeSync(fd);
      ev.allow();
    });
    try {
      // Reads of a few bytes in the middle of the file, page-aligned and not.
      const offset = 5 * 1024 * 1024 + 4096 * 3 + 100;
      const block = 5 * 1024 * 1024 + 4096 * 3;
      expect(await read(path.join(lazy, 'big.bin'), block, 32)).toBe(`block ${block / 4096} `.padEnd(32, '.'));
      expect(await read(path.join(lazy, 'big.bin'), offset, 20)).toBe(big.subarray(offset, offset + 20).toString('latin1'));
      // Each range covers the bytes read, and only a part of the file (this
      // kernel reports the page-cache range it is about to fill: whole pages).
      const covers = (r: { offset: number; count: number } | undefined, at: number, n: number) =>
        r !== undefined && r.offset <= at && at + n <= r.offset + r.count && r.count < size / 100;
      expect(ranges).toHaveLength(2);
      expect(ranges[0]!.offset).toBe(block);
      expect(covers(ranges[0], block, 32)).toBe(true);
      expect(covers(ranges[1], offset, 20)).toBe(true);
      // Not cached: the next read elsewhere asks again, with its range.
      expect(await read(path.join(lazy, 'big.bin'), 4096 * 7, 4096)).toBe(big.subarray(4096 * 7, 4096 * 8).toString('latin1'));
      expect(ranges).toHaveLength(3);
      expect(covers(ranges[2], 4096 * 7, 4096)).toBe(true);
    } finally {
      await afan.close();
    }
  });

  test('mmap: one event for the whole mapped range', async () => {
    if (skip()) return;
    const data = Buffer.alloc(3 * 4096, 'm');
    const { lazy, source } = placeholders({ 'mapped.bin': data });
    const { afan, seen } = await guard(lazy, (ev) => {
      const fd = ev.fd;
      fs.writeSync(fd, fs.readFileSync(path.join(source, 'mapped.bin')), 0, data.length, 0);
      fs.closeSync(fd);
      ev.allow();
    });
    try {
      const r = await withTimeout(
        runChild('python3', ['-c', 'import mmap,sys\nf=open(sys.argv[1],"rb")\nm=mmap.mmap(f.fileno(),0,access=mmap.ACCESS_READ)\nprint(m[:1].decode(), m[-1:].decode(), m[4096*2:4096*2+1].decode())', path.join(lazy, 'mapped.bin')]),
        10000,
        'python mmap',
      );
      expect(r.stdout.trim()).toBe('m m m');
      expect(seen).toHaveLength(1);
      expect(seen[0].range).toEqual({ offset: 0, count: data.length });
    } finally {
      await afan.close();
    }
  });

  test('NotSupported on tmpfs, with a message that says why', async () => {
    if (skip()) return;
    const tmpfs = mountTmpfs();
    try {
      const afan = new AsyncFanotify();
      try {
        let err: unknown;
        await afan.addWatch(tmpfs.dir, MaskFlags.PRE_ACCESS).catch((e: unknown) => (err = e));
        const e = thrown(() => {
          if (err) throw err;
        });
        expect(e.kind).toBe('NotSupported');
        expect(e.message).toMatch(/ext4, xfs, btrfs; not tmpfs/);
      } finally {
        await afan.close();
      }
    } finally {
      tmpfs.cleanup();
    }
  });
});

describeRoot('pre-content events on a kernel without them', () => {
  test('PRE_ACCESS and deny errno: NotSupported, saying Linux 6.14', async () => {
    if (capabilities().preContent) return; // covered above; the kernel matrix runs this on 5.10, 6.1, 6.12
    const scratch = mountExt4(16);
    try {
      const afan = new AsyncFanotify();
      try {
        const err = await afan.addWatch(scratch.dir, MaskFlags.PRE_ACCESS).then(() => undefined, (e: unknown) => e);
        const e = thrown(() => {
          if (err) throw err;
        });
        expect(e.kind).toBe('NotSupported');
        expect(e.message).toMatch(/6\.14/);
        expect(capabilities().denyErrno).toBe(false);
      } finally {
        await afan.close();
      }
    } finally {
      scratch.cleanup();
    }
  });
});

