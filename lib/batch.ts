/**
 * Reads the flat batches the native reader hands over (native/convert.h has
 * the layout) into records. Flat on the wire because per-event objects built
 * through Node-API were the reader's biggest cost; plain object literals
 * built here are cheap. With the option encoding: 'buffer', paths and names
 * arrive as Buffers and are passed on as they are.
 */
import { FanotifyError } from './errors';
import { native, RecordKind, type NativeBatch, type NativeRecord } from './native';

const NUMBERS = 6;
const STRINGS = 6;
const PERMISSION_GROUP = 1;
const DIRECTORY = 2;
const PROCESS = 4;

/** What this file reads, in the form of the addon's `batchLayout`. */
export const BATCH_LAYOUT: Readonly<Record<string, number>> = {
  numbers: NUMBERS,
  strings: STRINGS,
  permissionGroup: PERMISSION_GROUP,
  directory: DIRECTORY,
  process: PROCESS,
  normal: RecordKind.Normal,
  overflow: RecordKind.Overflow,
  error: RecordKind.Error,
  warning: RecordKind.Warning,
};

let layoutChecked = false;

/** Throws if the addon writes batches in another layout than this file reads (a stale build). */
export function checkBatchLayout(layout: Record<string, number> = native().batchLayout): void {
  const keys = new Set([...Object.keys(BATCH_LAYOUT), ...Object.keys(layout ?? {})]);
  const differ = [...keys].filter((key) => BATCH_LAYOUT[key] !== layout?.[key]);
  if (differ.length > 0) {
    const what = differ.map((key) => `${key}: ${layout?.[key]} in the addon, ${BATCH_LAYOUT[key]} in lib/batch.ts`).join('; ');
    throw new FanotifyError('Io', `the addon and lib/batch.ts disagree on the batch layout (rebuild both): ${what}`);
  }
}

export function unpackBatch(batch: NativeBatch): NativeRecord[] {
  if (!layoutChecked) {
    checkBatchLayout();
    layoutChecked = true;
  }
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
    // comm and exe are strings in either encoding.
    if (flags & PROCESS) record.process = { comm: (strings[s + 4] as string | undefined) ?? null, exe: (strings[s + 5] as string | undefined) ?? null };
    const extra = extras?.[i];
    records[i] = extra ? Object.assign(record, extra) : record;
  }
  return records;
}
