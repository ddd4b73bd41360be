import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { capabilities, Fanotify, FanotifyError, MaskFlags } from '../lib';
import { describeRoot } from './helpers/kernel';
import { mountTmpfs, type Scratch } from './helpers/scratch';
import { collectFor, collectUntil } from './helpers/events';

describeRoot('mark options: mntns, dontFollow, evictable', () => {
  let scratch: Scratch;
  beforeAll(() => (scratch = mountTmpfs()));
  afterAll(() => scratch.cleanup());


  test("mark: 'mntns' reports mounts attached and detached in this mount namespace", () => {
    if (!capabilities().mntns) {
      console.warn('skipping: mount events need Linux 6.15');
      return;
    }
    const point = path.join(scratch.freshDir(), 'point');
    fs.mkdirSync(point);
    using fan = new Fanotify();
    // npm test runs in a private mount namespace, so this sees only our mounts.
    fan.addWatch('/proc/self/ns/mnt', MaskFlags.MNT_ATTACH | MaskFlags.MNT_DETACH, { mark: 'mntns' });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'fanotify-test-mntns', point]);
    execFileSync('umount', [point]);
    const events = collectUntil(fan, (evs) => evs.some((e) => e.mask & MaskFlags.MNT_DETACH));
    const attach = events.find((e) => e.mask & MaskFlags.MNT_ATTACH);
    const detach = events.find((e) => e.mask & MaskFlags.MNT_DETACH);
    expect(attach?.types()).toEqual(['MNT_ATTACH']);
    expect(typeof attach?.mountId).toBe('bigint');
    // The same mount went away.
    expect(detach?.mountId).toBe(attach?.mountId);
  });

  test('dontFollow marks the symbolic link itself, not its target', () => {
    const dir = scratch.freshDir();
    const target = path.join(dir, 'target');
    const link = path.join(dir, 'link');
    fs.writeFileSync(target, 'x');
    fs.symlinkSync(target, link);

    using fan = new Fanotify();
    fan.addWatch(link, MaskFlags.ATTRIB, { dontFollow: true });
    fs.chmodSync(target, 0o600);
    expect(collectFor(fan, 300).map((e) => e.path)).toEqual([]);
    fs.lchownSync(link, 0, 0);
    const events = collectUntil(fan, (evs) => evs.length > 0);
    expect(events.map((e) => [e.types().join('|'), e.path])).toEqual([['ATTRIB', link]]);

    // Without dontFollow the target is marked.
    using followed = new Fanotify();
    followed.addWatch(link, MaskFlags.ATTRIB);
    fs.chmodSync(target, 0o644);
    expect(collectUntil(followed, (evs) => evs.length > 0).map((e) => e.path)).toEqual([target]);
  });

  test('evictable: an inode mark that reports events; refused on mount marks', () => {
    const dir = scratch.freshDir();
    const file = path.join(dir, 'f');
    fs.writeFileSync(file, 'x');
    using fan = new Fanotify();
    if (!capabilities().evictable) {
      // Never dropped silently: NotSupported, naming the flag the kernel lacks.
      expect(() => fan.addWatch(file, MaskFlags.CLOSE_WRITE, { evictable: true })).toThrow(
        expect.objectContaining({ kind: 'NotSupported', message: expect.stringMatching(/FAN_MARK_EVICTABLE/) }),
      );
      return;
    }
    fan.addWatch(file, MaskFlags.CLOSE_WRITE, { evictable: true });
    fs.writeFileSync(file, 'y');
    expect(collectUntil(fan, (evs) => evs.length > 0).map((e) => [e.types().join('|'), e.path])).toEqual([['CLOSE_WRITE', file]]);

    let err: unknown;
    try {
      fan.addWatch(scratch.dir, MaskFlags.OPEN, { mark: 'mount', evictable: true });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FanotifyError);
    expect(err).toMatchObject({ kind: 'InvalidArgument', code: 'EINVAL' });
    expect((err as FanotifyError).message).toMatch(/evictable/);
  });

  test('ignore: true uses FAN_MARK_IGNORE where the kernel knows it; onDir/onChildren on the legacy ignored mask throw NotSupported', () => {
    const dir = scratch.freshDir();
    using fan = new Fanotify();
    fan.addWatch(dir, MaskFlags.OPEN);
    const scoped = () => fan.addWatch(dir, MaskFlags.OPEN, { ignore: true, ignoreSurviveModify: true, onChildren: false });
    if (capabilities().markIgnore) {
      expect(scoped).not.toThrow();
    } else {
      expect(scoped).toThrow(expect.objectContaining({ kind: 'NotSupported', message: expect.stringMatching(/FAN_MARK_IGNORE/) }));
      // Without them the legacy ignored mask still works.
      expect(() => fan.addWatch(dir, MaskFlags.OPEN, { ignore: true, ignoreSurviveModify: true })).not.toThrow();
    }
  });
});
