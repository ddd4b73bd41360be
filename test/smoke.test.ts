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
    // The kernel merges a new event into a queued one for the same object
    // (even past other events), so the three may arrive as one to three
    // events, in any grouping: check the set.
    const seen = new Set(events.flatMap((e) => e.types()));
    expect([...seen].sort()).toEqual(['CLOSE_WRITE', 'CREATE', 'DELETE']);
    expect(events.every((e) => e.path === file)).toBe(true);
    expect(events.every((e) => e.pid === process.pid)).toBe(true);
  });
});
