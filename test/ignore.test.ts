/**
 * Ignore masks (`ignore: true`): what they suppress, what clears them (a
 * modification of the marked file, unless `ignoreSurviveModify`), and how to
 * take them back.
 *
 * Negative checks use a marker: after the operations on the ignored file, an
 * operation on a sibling produces an event in the same kernel group. One
 * group's events arrive in order, so once the marker is read, anything the
 * ignored file produced would already have been read too.
 *
 * The kernel merges queued events of one object (OPEN then CLOSE_NOWRITE can
 * arrive as one OPEN|CLOSE_NOWRITE event), so results are compared per path:
 * the union of the event bits seen for each path, in order of first sight.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Fanotify, FanotifyError, FanotifyEvent, MaskFlags } from '../lib';
import { describeRoot } from './helpers/kernel';
import { mountTmpfs, type Scratch } from './helpers/scratch';
import { brief, waitForMatch } from './helpers/events';

/** Opens and closes `file` read-only: OPEN then CLOSE_NOWRITE, nothing else. */
function openClose(file: string): void {
  fs.closeSync(fs.openSync(file, 'r'));
}

const OPEN_CLOSE = 'CLOSE_NOWRITE|OPEN';

/** Per path, in order of first sight: the names of every bit seen for it. */
function byPath(events: FanotifyEvent[]): Array<[string | null, string]> {
  const masks = new Map<string | null, number>();
  for (const e of events) masks.set(e.path, (masks.get(e.path) ?? 0) | e.mask);
  const names = Object.entries(MaskFlags).filter(([, bit]) => bit !== 0 && (bit & (bit - 1)) === 0);
  return [...masks].map(([p, mask]) => [
    p,
    names
      .filter(([, bit]) => mask & bit)
      .map(([name]) => name)
      .join('|'),
  ]);
}

/** The events up to the marker's CLOSE_NOWRITE, marker included, per path. */
function untilMarker(fan: Fanotify, marker: string): Array<[string | null, string]> {
  openClose(marker);
  return byPath(waitForMatch(fan, (e) => e.isClose() && e.path === marker, `CLOSE_NOWRITE on ${marker}`));
}

/** Waits for the CLOSE of `file` and returns the union of the masks seen for it (queued events of one file may merge). */
function masksFor(fan: Fanotify, file: string): number {
  const events = waitForMatch(fan, (e) => e.isClose() && e.path === file, `CLOSE on ${file}`);
  expect(events.map((e) => e.path)).toEqual(events.map(() => file));
  return events.reduce((m, e) => m | e.mask, 0);
}

describeRoot('ignore masks', () => {
  let scratch: Scratch;
  let counter = 0;

  /** A watched-to-be directory with an `ignored` file and a `marker` sibling. */
  function setup(): { dir: string; file: string; marker: string } {
    const dir = scratch.file(`t${++counter}`);
    fs.mkdirSync(dir);
    const file = path.join(dir, 'ignored');
    const marker = path.join(dir, 'marker');
    fs.writeFileSync(file, 'content');
    fs.writeFileSync(marker, 'marker');
    return { dir, file, marker };
  }

  beforeAll(() => (scratch = mountTmpfs()));
  afterAll(() => scratch.cleanup());

  test('without an ignore mask, the file and the marker are both reported (the control)', () => {
    const { dir, file, marker } = setup();
    using fan = new Fanotify();
    fan.addWatch(dir, MaskFlags.OPEN | MaskFlags.CLOSE);
    openClose(file);
    expect(masksFor(fan, file)).toBe(MaskFlags.OPEN | MaskFlags.CLOSE_NOWRITE);
    expect(untilMarker(fan, marker)).toEqual([[marker, OPEN_CLOSE]]);
  });

  test('an ignore mask on a file inside a watched directory suppresses its events', () => {
    const { dir, file, marker } = setup();
    using fan = new Fanotify();
    fan.addWatch(dir, MaskFlags.OPEN | MaskFlags.CLOSE | MaskFlags.ACCESS);
    fan.addWatch(file, MaskFlags.OPEN | MaskFlags.CLOSE | MaskFlags.ACCESS, { ignore: true });

    openClose(file);
    expect(fs.readFileSync(file, 'utf8')).toBe('content');
    expect(untilMarker(fan, marker)).toEqual([[marker, OPEN_CLOSE]]);
  });

  test('an ignore mask suppresses only the events in it', () => {
    const { dir, file, marker } = setup();
    using fan = new Fanotify();
    fan.addWatch(dir, MaskFlags.OPEN | MaskFlags.CLOSE);
    fan.addWatch(file, MaskFlags.OPEN, { ignore: true });

    openClose(file);
    expect(untilMarker(fan, marker)).toEqual([
      [file, 'CLOSE_NOWRITE'],
      [marker, OPEN_CLOSE],
    ]);
  });

  test('an ignore mask for ATTRIB (a FID-group event) suppresses chmod of that file only', () => {
    const { dir, file, marker } = setup();
    using fan = new Fanotify();
    fan.addWatch(dir, MaskFlags.ATTRIB);
    fan.addWatch(file, MaskFlags.ATTRIB, { ignore: true });
    fs.chmodSync(file, 0o600);
    fs.chmodSync(marker, 0o600);
    expect(waitForMatch(fan, (e) => e.path === marker, 'ATTRIB on the marker').map(brief)).toEqual([['ATTRIB', marker]]);
  });

  test('without ignoreSurviveModify, a modification of the file clears the ignore mask', () => {
    const { dir, file, marker } = setup();
    using fan = new Fanotify();
    fan.addWatch(dir, MaskFlags.OPEN | MaskFlags.CLOSE);
    fan.addWatch(file, MaskFlags.OPEN | MaskFlags.CLOSE, { ignore: true });

    // Ignored as long as the file is not modified.
    openClose(file);
    openClose(file);
    expect(untilMarker(fan, marker)).toEqual([[marker, OPEN_CLOSE]]);

    // A write (FS_MODIFY) clears the ignore mask, although this instance does
    // not watch MODIFY. The open for writing happens before the write, so it
    // is still ignored; the close comes after it and is reported.
    const fd = fs.openSync(file, 'r+');
    try {
      expect(untilMarker(fan, marker)).toEqual([[marker, OPEN_CLOSE]]);
      fs.writeSync(fd, 'changed');
    } finally {
      fs.closeSync(fd);
    }
    expect(masksFor(fan, file)).toBe(MaskFlags.CLOSE_WRITE);

    // From now on the file is reported again.
    openClose(file);
    expect(masksFor(fan, file)).toBe(MaskFlags.OPEN | MaskFlags.CLOSE_NOWRITE);
  });

  test('opening for writing without writing does not clear the ignore mask', () => {
    const { dir, file, marker } = setup();
    using fan = new Fanotify();
    fan.addWatch(dir, MaskFlags.OPEN | MaskFlags.CLOSE);
    fan.addWatch(file, MaskFlags.OPEN | MaskFlags.CLOSE, { ignore: true });

    fs.closeSync(fs.openSync(file, 'r+'));
    openClose(file);
    expect(untilMarker(fan, marker)).toEqual([[marker, OPEN_CLOSE]]);
  });

  test('a truncate is a modification too and clears the ignore mask', () => {
    const { dir, file, marker } = setup();
    using fan = new Fanotify();
    fan.addWatch(dir, MaskFlags.OPEN | MaskFlags.CLOSE_NOWRITE);
    fan.addWatch(file, MaskFlags.OPEN | MaskFlags.CLOSE_NOWRITE, { ignore: true });

    // Node truncates by path as open, ftruncate, close: FS_MODIFY on the file.
    // CLOSE_WRITE is not watched, so only the next open and close are reported.
    fs.truncateSync(file, 1);
    openClose(file);
    expect(untilMarker(fan, marker)).toEqual([
      [file, OPEN_CLOSE],
      [marker, OPEN_CLOSE],
    ]);
  });

  test('a modification of another file does not clear the ignore mask', () => {
    const { dir, file, marker } = setup();
    using fan = new Fanotify();
    fan.addWatch(dir, MaskFlags.OPEN | MaskFlags.CLOSE_NOWRITE);
    fan.addWatch(file, MaskFlags.OPEN | MaskFlags.CLOSE_NOWRITE, { ignore: true });

    fs.appendFileSync(marker, 'more'); // OPEN of the marker (for writing), no CLOSE_NOWRITE
    openClose(file);
    expect(untilMarker(fan, marker)).toEqual([[marker, OPEN_CLOSE]]);
  });

  test('with ignoreSurviveModify the ignore mask survives modifications', () => {
    const { dir, file, marker } = setup();
    using fan = new Fanotify();
    fan.addWatch(dir, MaskFlags.OPEN | MaskFlags.CLOSE | MaskFlags.MODIFY);
    fan.addWatch(file, MaskFlags.OPEN | MaskFlags.CLOSE | MaskFlags.MODIFY, { ignore: true, ignoreSurviveModify: true });

    fs.appendFileSync(file, ' more');
    fs.writeFileSync(file, 'rewritten');
    fs.truncateSync(file, 2);
    openClose(file);
    expect(fs.readFileSync(file, 'utf8')).toBe('re');
    expect(untilMarker(fan, marker)).toEqual([[marker, OPEN_CLOSE]]);
  });

  test('removing the ignore mask brings the events back; the watch itself stays', () => {
    const { dir, file, marker } = setup();
    using fan = new Fanotify();
    fan.addWatch(dir, MaskFlags.OPEN | MaskFlags.CLOSE);
    fan.addWatch(file, MaskFlags.OPEN | MaskFlags.CLOSE, { ignore: true, ignoreSurviveModify: true });
    openClose(file);
    expect(untilMarker(fan, marker)).toEqual([[marker, OPEN_CLOSE]]);

    // The ignore mark is its own mark: removing "the watch" on the file
    // (there is none) is an error, removing the ignore mark is not.
    expect(() => fan.removeWatch(file)).toThrow(FanotifyError);
    fan.removeWatch(file, undefined, { ignore: true });
    openClose(file);
    expect(masksFor(fan, file)).toBe(MaskFlags.OPEN | MaskFlags.CLOSE_NOWRITE);
  });

  test('an ignore mask on a directory suppresses events on its children', () => {
    const { dir, file, marker } = setup();
    const sub = path.join(dir, 'quiet');
    fs.mkdirSync(sub);
    const inSub = path.join(sub, 'f');
    fs.writeFileSync(inSub, '');
    using fan = new Fanotify();
    fan.addWatch(scratch.dir, MaskFlags.OPEN | MaskFlags.CLOSE, { mark: 'filesystem' });
    fan.addWatch(sub, MaskFlags.OPEN | MaskFlags.CLOSE, { ignore: true, ignoreSurviveModify: true });

    openClose(inSub);
    openClose(file);
    expect(untilMarker(fan, marker)).toEqual([
      [file, OPEN_CLOSE],
      [marker, OPEN_CLOSE],
    ]);
  });

  test('an ignore mask on a mount or filesystem mark needs ignoreSurviveModify', () => {
    using fan = new Fanotify();
    const err = (() => {
      try {
        fan.addWatch(scratch.dir, MaskFlags.OPEN, { mark: 'filesystem', ignore: true });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(FanotifyError);
    expect((err as FanotifyError).kind).toBe('InvalidArgument');
    expect((err as FanotifyError).message).toMatch(/ignoreSurviveModify/);
    // With it, the kernel takes it.
    expect(() => fan.addWatch(scratch.dir, MaskFlags.OPEN, { mark: 'filesystem', ignore: true, ignoreSurviveModify: true })).not.toThrow();
  });

  test('ignoreSurviveModify without ignore is an InvalidArgument', () => {
    const { file } = setup();
    using fan = new Fanotify();
    expect(() => fan.addWatch(file, MaskFlags.OPEN, { ignoreSurviveModify: true })).toThrow(expect.objectContaining({ kind: 'InvalidArgument' }));
  });
});
