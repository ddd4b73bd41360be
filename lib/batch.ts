/**
 * Reads the flat batches the native reader hands over (native/convert.h has
 * the layout) into records. Flat on the wire because per-event objects built
 * through Node-API were the reader's biggest cost; plain object literals
 * built here are cheap.
 */
import type { NativeBatch, NativeRecord } from './native';

const NUMBERS = 6;
const STRINGS = 6;
const PERMISSION_GROUP = 1;
const DIRECTORY = 2;
const PROCESS = 4;

export function unpackBatch(batch: NativeBatch): NativeRecord[] {
  const [numbers, strings, extras] = batch;
  // numbers is reused from batch to batch and may be longer: strings says how many.
  const count = strings.length / STRINGS;
  const records: NativeRecord[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const n = i * NUMBERS;
    const s = i * STRINGS;
    const flags = numbers[n + 5];
    const record: NativeRecord = {
      kind: numbers[n],
      mask: numbers[n + 1],
      pid: numbers[n + 2],
      id: numbers[n + 3],
      group: numbers[n + 4],
      permissionGroup: (flags & PERMISSION_GROUP) !== 0,
      isDirectory: (flags & DIRECTORY) !== 0,
      path: strings[s] ?? null,
      name: strings[s + 1] ?? null,
      oldPath: strings[s + 2] ?? null,
      newPath: strings[s + 3] ?? null,
    };
    if (flags & PROCESS) record.process = { comm: strings[s + 4] ?? null, exe: strings[s + 5] ?? null };
    const extra = extras?.[i];
    records[i] = extra ? Object.assign(record, extra) : record;
  }
  return records;
}
