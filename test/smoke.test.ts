import * as fs from 'node:fs';
import { Fanotify, MaskFlags } from '../lib';
import { describeRoot } from './helpers/kernel';
import { mountTmpfs, type Scratch } from './helpers/scratch';
import { collectUntil } from './helpers/events';

describeRoot('smoke: a directory watch sees a create with its full path', () => {
  let scratch: Scratch;
  beforeAll(() => (scratch = mountTmpfs()));
  afterAll(() => scratch.cleanup());

  test('create, write and delete of a file', () => {
    using fan = new Fanotify();
    fan.addWatch(scratch.dir, MaskFlags.CREATE | MaskFlags.CLOSE_WRITE | MaskFlags.DELETE);
    const file = scratch.file('hello.txt');
    fs.writeFileSync(file, 'hi');
    fs.unlinkSync(file);
    const events = collectUntil(fan, (evs) => evs.some((e) => e.isDelete()));
    const seen = events.map((e) => [e.types().join('|'), e.path]);
    expect(seen).toEqual([
      ['CREATE', file],
      ['CLOSE_WRITE', file],
      ['DELETE', file],
    ]);
    expect(events.every((e) => e.pid === process.pid)).toBe(true);
  });
});
