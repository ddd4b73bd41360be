import { FAN } from './constants';
import { checkBoolean, checkBits, checkInteger, checkOneOf, checkOptions } from './validate';
import type { Encoding, FanotifyOptions } from './types';

/** O_CLOEXEC on every Linux architecture Node supports. */
const O_CLOEXEC = 0o2000000;

/** fanotify_init flags a user may add in `options.flags`; class and reporting bits are the library's. */
export const USER_GROUP_FLAGS =
  FAN.FAN_CLOEXEC | FAN.FAN_NONBLOCK | FAN.FAN_UNLIMITED_QUEUE | FAN.FAN_UNLIMITED_MARKS | FAN.FAN_ENABLE_AUDIT |
  FAN.FAN_REPORT_TID | FAN.FAN_REPORT_PIDFD;

export interface Settings {
  flags: number;
  eventFlags: number;
  bufferSize: number;
  permissionTimeout: number;
  defaultResponse: 'allow' | 'deny';
  allowSelf: boolean;
  queueLimit: number;
  processInfo: boolean;
  encoding: Encoding;
}

export const OPTION_KEYS = [
  'flags',
  'eventFlags',
  'bufferSize',
  'permissionTimeout',
  'defaultResponse',
  'allowSelf',
  'queueLimit',
  'processInfo',
  'encoding',
] as const;

/**
 * Validates `FanotifyOptions` (plus `extraKeys` that a front end handles
 * itself) and fills in the defaults.
 */
export function readOptions(raw: unknown, extraKeys: readonly string[] = []): Settings {
  const o = checkOptions<FanotifyOptions>(raw, 'options', [...OPTION_KEYS, ...extraKeys]);
  return {
    flags: o.flags === undefined ? 0 : checkBits(o.flags, 'options.flags', USER_GROUP_FLAGS, true),
    eventFlags: o.eventFlags === undefined ? O_CLOEXEC : checkInteger(o.eventFlags, 'options.eventFlags', 0, 0x7fffffff),
    bufferSize: o.bufferSize === undefined ? 65536 : checkBufferSize(o.bufferSize),
    permissionTimeout:
      o.permissionTimeout === undefined ? 10000 : checkInteger(o.permissionTimeout, 'options.permissionTimeout', 1, 0x7fffffff),
    defaultResponse: o.defaultResponse === undefined ? 'allow' : checkOneOf(o.defaultResponse, 'options.defaultResponse', ['allow', 'deny']),
    allowSelf: o.allowSelf === undefined ? true : checkBoolean(o.allowSelf, 'options.allowSelf'),
    queueLimit: o.queueLimit === undefined ? 16384 : checkInteger(o.queueLimit, 'options.queueLimit', 1, 10_000_000),
    processInfo: o.processInfo === undefined ? false : checkBoolean(o.processInfo, 'options.processInfo'),
    encoding: o.encoding === undefined ? 'utf8' : checkOneOf(o.encoding, 'options.encoding', ['utf8', 'buffer']),
  };
}

/** At least one maximal event (metadata + three file-id records with names). */
export function checkBufferSize(value: unknown): number {
  return checkInteger(value, 'bufferSize', 4096, 16 * 1024 * 1024);
}
