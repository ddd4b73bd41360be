/**
 * fanotify for Node.js. See README.md for the guide and API.md for the contract.
 */
import { native } from './native';
import * as lowLevel from './low-level';

// Load the addon now, so that requiring the package on a platform without
// fanotify fails at once with a FanotifyError of kind NotSupported.
native();

export { Fanotify, type ReadOptions } from './fanotify';
export { AsyncFanotify, type AsyncFanotifyOptions, type AsyncFanotifyEvents, type WaitOptions } from './async';
export { FanotifyEvent } from './event';
export { MaskFlags, FanotifyFlags } from './constants';
export { FanotifyError, type FanotifyErrorKind, type FanotifyErrorDetails } from './errors';
export { capabilities, type Capabilities } from './capabilities';
export type { FanotifyOptions, WatchOptions, MarkType, Response, AuditRule, AllowOptions, DenyOptions, ProcessInfo, EventInfo, Encoding, PathOf } from './types';
export type { RawEvent, RawFileId } from './native';
export { lowLevel };
