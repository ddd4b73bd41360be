/**
 * Audit rules in answers (FAN_INFO, Linux 6.3): `respond(ev, { allow, audit:
 * { rule } })` writes struct fanotify_response followed by the
 * FAN_RESPONSE_INFO_AUDIT_RULE record, as fapolicyd does, so the kernel's
 * audit record of the answer names the rule. auditd need not run: the kernel
 * checks the record whether or not audit logs it, so an answer it accepts
 * (the opener's call denied) is one with a well-formed record; the same
 * response bits without the record are refused (EINVAL). `audit: true` stays
 * the plain FAN_AUDIT. Both need the group flag ENABLE_AUDIT. On a kernel
 * without FAN_INFO (5.10, 6.1 in the kernel matrix) a rule is NotSupported.
 */
import * as fs from 'node:fs';
import { AsyncFanotify, Fanotify, FanotifyFlags, MaskFlags, capabilities, lowLevel as ll, type FanotifyEvent, type RawEvent } from '../lib';
import { READ_FILE, reapAll, startNode, type RunningChild } from './helpers/child';
import { pendingRead, withTimeout } from './helpers/events';
import { thrown } from './helpers/errors';
import { describeRoot } from './helpers/kernel';
import { mountTmpfs, type Scratch } from './helpers/scratch';
import { finished } from './helpers/wait';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

describeRoot('audit rules in answers (FAN_INFO)', () => {
  let scratch: Scratch;
  let file: string;

  beforeAll(() => {
    scratch = mountTmpfs();
    file = scratch.file('guarded.txt');
    fs.writeFileSync(file, 'x');
  });
  afterEach(() => reapAll());
  afterAll(() => scratch.cleanup());

  /** A pending OPEN_PERM event from a child reading `file`. */
  const pending = (fan: Fanotify): { ev: FanotifyEvent; child: RunningChild } => pendingRead(fan, file);

  const opened = async (child: RunningChild) => (await finished(child, 5000, 'the reading child')).stdout.trim();

  test('capabilities().auditRule is what the kernel does with a FAN_INFO record for FAN_NOFD', () => {
    const group = ll.fanotifyInit(ll.FAN_CLASS_CONTENT | ll.FAN_CLOEXEC, 0);
    let accepted: boolean;
    try {
      ll.writeResponse(group, ll.FAN_NOFD, ll.FAN_ALLOW | ll.FAN_INFO, { rule: 7 });
      accepted = true;
    } catch (err) {
      expect((err as { code?: string }).code).toBe('EINVAL');
      accepted = false;
    } finally {
      ll.close(group);
    }
    expect(capabilities().auditRule).toBe(accepted);
  });

  test('bad audit values are InvalidArgument and leave the event pending', async () => {
    using fan = new Fanotify({ flags: FanotifyFlags.ENABLE_AUDIT, permissionTimeout: 10000 });
    fan.addWatch(file, MaskFlags.OPEN_PERM);
    const { ev, child } = pending(fan);
    for (const audit of [{}, { rule: -1 }, { rule: 2 ** 32 }, { rule: 1.5 }, { rule: '42' }, { rule: 1, bogus: 1 }, { rule: 1, subjectTrust: 1 }, null, 'yes', [42]]) {
      expect([audit, thrown(() => fan.respond(ev, { allow: false, audit } as Any)).kind]).toEqual([audit, 'InvalidArgument']);
    }
    ev.allow();
    expect(await opened(child)).toBe('ok');
  });

  if (!capabilities().auditRule) {
    test('a kernel without FAN_INFO: audit: { rule } is NotSupported naming Linux 6.3; the event stays pending', async () => {
      using fan = new Fanotify({ flags: FanotifyFlags.ENABLE_AUDIT, permissionTimeout: 10000 });
      fan.addWatch(file, MaskFlags.OPEN_PERM);
      const { ev, child } = pending(fan);
      const err = thrown(() => fan.respond(ev, { allow: false, audit: { rule: 42 } }));
      expect(err.kind).toBe('NotSupported');
      expect(err.message).toMatch(/Linux 6\.3/);
      // The plain audit flag still works there.
      fan.respond(ev, { allow: false, audit: true });
      expect(await opened(child)).toBe('EPERM');
    });
    return;
  }

  test('sync: respond(ev, { allow: false, audit: { rule: 42 } }) is accepted by the kernel and denies the open', async () => {
    using fan = new Fanotify({ flags: FanotifyFlags.ENABLE_AUDIT, permissionTimeout: 10000 });
    fan.addWatch(file, MaskFlags.OPEN_PERM);
    const { ev, child } = pending(fan);
    // FAN_AUDIT | FAN_INFO and the record: the kernel refuses FAN_AUDIT from a
    // group without ENABLE_AUDIT and FAN_INFO without a well-formed record.
    fan.respond(ev, { allow: false, audit: { rule: 42, subjectTrust: false, objectTrust: true } });
    expect(await opened(child)).toBe('EPERM');
    // Answered: a second answer is a no-op, never a write.
    fan.respond(ev, { allow: true, audit: { rule: 1 } });
  });

  test('ev.respond with a rule and allow: true lets the open through; audit: true stays the plain FAN_AUDIT', async () => {
    using fan = new Fanotify({ flags: FanotifyFlags.ENABLE_AUDIT, permissionTimeout: 10000 });
    fan.addWatch(file, MaskFlags.OPEN_PERM);
    const first = pending(fan);
    first.ev.respond({ allow: true, audit: { rule: 0xffffffff } });
    expect(await opened(first.child)).toBe('ok');
    const second = pending(fan);
    second.ev.respond({ allow: false, audit: true });
    expect(await opened(second.child)).toBe('EPERM');
  });

  test('AsyncFanotify: afan.respond(ev, { allow: false, audit: { rule } }) from a permission listener', async () => {
    const afan = new AsyncFanotify({ flags: FanotifyFlags.ENABLE_AUDIT, permissionTimeout: 10000 });
    try {
      await afan.addWatch(file, MaskFlags.OPEN_PERM);
      const answered: string[] = [];
      afan.on('permission', (ev) => {
        afan.respond(ev, { allow: false, audit: { rule: 7 } });
        answered.push(ev.path ?? '?');
      });
      const child = startNode(READ_FILE, [file]);
      expect(await withTimeout(opened(child), 6000, 'the child')).toBe('EPERM');
      expect(answered).toEqual([file]);
    } finally {
      await afan.close();
    }
  });

  test('the kernel checks the record: FAN_INFO without one is refused (EINVAL), so an accepted answer carried it', async () => {
    const group = ll.fanotifyInit(ll.FAN_CLASS_CONTENT | ll.FAN_ENABLE_AUDIT | ll.FAN_CLOEXEC | ll.FAN_NONBLOCK, 0);
    let child: RunningChild | undefined;
    try {
      ll.fanotifyMark(group, ll.FAN_MARK_ADD, ll.FAN_OPEN_PERM, ll.AT_FDCWD, file);
      child = startNode(READ_FILE, [file]);
      let ev: RawEvent | undefined;
      const deadline = Date.now() + 5000;
      while (!ev && Date.now() < deadline) {
        ev = ll.readEvents(group).find((e) => e.pid === child!.pid);
        if (!ev) await new Promise((r) => setTimeout(r, 10));
      }
      if (!ev) throw new Error('no permission event from the child');
      const bits = ll.FAN_DENY | ll.FAN_AUDIT | ll.FAN_INFO;
      expect(thrown(() => ll.writeResponse(group, ev!.fd, bits)).code).toBe('EINVAL');
      ll.writeResponse(group, ev.fd, bits, { rule: 42, subjTrust: 1, objTrust: 0 });
      ll.close(ev.fd);
      expect(await opened(child)).toBe('EPERM');
    } finally {
      ll.close(group);
    }
  });

  test('without ENABLE_AUDIT: audit (true or a rule) is InvalidArgument naming the flag; the event stays pending', async () => {
    using fan = new Fanotify({ permissionTimeout: 10000 });
    fan.addWatch(file, MaskFlags.OPEN_PERM);
    const { ev, child } = pending(fan);
    for (const audit of [true, { rule: 42 }]) {
      const err = thrown(() => fan.respond(ev, { allow: false, audit }));
      expect(err.kind).toBe('InvalidArgument');
      expect(err.message).toContain('ENABLE_AUDIT');
    }
    fan.deny(ev);
    expect(await opened(child)).toBe('EPERM');
  });
});
