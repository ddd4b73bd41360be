/**
 * Facts kept in one place, checked: the batch layout the addon writes
 * (native/convert.h) and the one lib/batch.ts reads; errno names, which only
 * TypeScript knows (from Node's own table); one pidfd per event from the
 * decoder. No kernel needed.
 */
import * as util from 'node:util';
import { FanotifyError, lowLevel } from '../lib';
import { BATCH_LAYOUT, checkBatchLayout } from '../lib/batch';
import { errnoName, fromNative } from '../lib/errors';
import { native } from '../lib/native';

const FAN_EVENT_INFO_TYPE_PIDFD = 4;

/** An event's metadata (24 bytes) followed by `records`. */
function event(records: Buffer[]): Buffer {
  const body = Buffer.concat(records);
  const b = Buffer.alloc(24);
  b.writeUInt32LE(24 + body.length, 0);
  b.writeUInt8(3, 4);
  b.writeUInt16LE(24, 6);
  b.writeBigUInt64LE(BigInt(lowLevel.FAN_OPEN), 8);
  b.writeInt32LE(-1, 16);
  b.writeInt32LE(4242, 20);
  return Buffer.concat([b, body]);
}

function pidfdRecord(pidfd: number): Buffer {
  const r = Buffer.alloc(8);
  r.writeUInt8(FAN_EVENT_INFO_TYPE_PIDFD, 0);
  r.writeUInt16LE(8, 2);
  r.writeInt32LE(pidfd, 4);
  return r;
}

describe('one source of truth, checked', () => {
  test('the addon exports its batch layout, and lib/batch.ts reads the same one', () => {
    expect(native().batchLayout).toEqual(BATCH_LAYOUT);
    expect(() => checkBatchLayout()).not.toThrow();
  });

  test('a layout that differs is a clear error, naming what differs', () => {
    const err = (() => {
      try {
        checkBatchLayout({ ...BATCH_LAYOUT, strings: BATCH_LAYOUT.strings + 1 });
      } catch (e) {
        return e as FanotifyError;
      }
      throw new Error('no error');
    })();
    expect(err).toBeInstanceOf(FanotifyError);
    expect(err.kind).toBe('Io');
    expect(err.message).toMatch(/strings: 7 in the addon, 6 in lib\/batch.ts/);
  });

  test("native system errors carry the errno; the code is Node's name for it", () => {
    let err: FanotifyError | undefined;
    try {
      lowLevel.close(0x7ffffff0); // EBADF
    } catch (e) {
      err = e as FanotifyError;
    }
    expect(err).toBeInstanceOf(FanotifyError);
    expect(err).toMatchObject({ code: 'EBADF', errno: -9, syscall: 'close', kind: 'Closed' });
    // Errors the addon throws carry only numbers.
    expect((err!.cause as { code?: string }).code).toBeUndefined();
    for (const n of [1, 2, 11, 22, 95, 110]) expect(errnoName(n)).toBe(util.getSystemErrorName(-n));
    expect(errnoName(0)).toBeUndefined();
    expect(errnoName(100000)).toBeUndefined();
    expect(fromNative({ message: 'x', errno: -95, syscall: 'fanotify_mark' }).code).toBe(util.getSystemErrorName(-95));
  });

  test('a second PIDFD record does not replace the first (the reader closes the duplicate)', () => {
    const { events } = lowLevel.decode(event([pidfdRecord(101), pidfdRecord(202)]));
    expect(events).toHaveLength(1);
    expect(events[0].pidfd).toBe(101);
  });
});
