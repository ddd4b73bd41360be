/**
 * Unprivileged use, by running the built package (dist/) in a child as
 * `nobody`: inode marks with FID reporting work (Linux >= 5.13) and report
 * names and paths; what needs CAP_SYS_ADMIN throws PermissionDenied naming it.
 * The child prints JSON; the assertions are here.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { capabilities } from '../lib';
import { runChild, reapAll } from './helpers/child';
import { distForOthers } from './helpers/dist';
import { withTimeout } from './helpers/events';
import { describeKernel } from './helpers/kernel';
import { mountTmpfs, type Scratch } from './helpers/scratch';

const NOBODY = 65534;
const ROOT = path.resolve(__dirname, '..');
const DIST = path.join(ROOT, 'dist');
/** What the children load: a world-readable copy of dist/ and the addon (the checkout may be closed to nobody). */
const FOR_OTHERS = distForOthers();

/** Runs `code` with node as nobody:nogroup, without supplementary groups. */
function runAsNobody(code: string, args: string[] = [], timeoutMs = 15000) {
  return withTimeout(
    runChild('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, '-e', code, ...args], timeoutMs, { cwd: '/' }),
    timeoutMs + 5000,
    'the child running as nobody',
  );
}

/** The last line of stdout, parsed; fails with the child's stderr if there is none. */
function jsonOut(r: { stdout: string; stderr: string; code: number | null }): Record<string, Any> {
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line);
  } catch {
    throw new Error(`the child printed no JSON (exit ${r.code}):\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

/** Shared by the child programs: require the package, describe an attempt's outcome as JSON. */
const PRELUDE = `
  const fs = require('fs');
  const path = require('path');
  const lib = require(${JSON.stringify(FOR_OTHERS.dist)});
  const { Fanotify, MaskFlags, FanotifyError, capabilities } = lib;
  function attempt(fn) {
    try { fn(); return { ok: true }; }
    catch (e) {
      return { ok: false, isFanotifyError: e instanceof FanotifyError, kind: e.kind, code: e.code, syscall: e.syscall, message: e.message };
    }
  }
  function readUntil(fan, done, ms) {
    const events = [];
    const deadline = Date.now() + ms;
    while (!done(events) && Date.now() < deadline) events.push(...fan.readEvents({ timeout: Math.max(1, deadline - Date.now()) }));
    return events.map((e) => ({ types: e.types(), mask: e.mask, path: e.path, name: e.name, pid: e.pid, fd: e.fd }));
  }
`;

describeKernel('unprivileged use (a child running as nobody)',
  () => capabilities().unprivileged,
  'unprivileged fanotify (FID reporting for normal users, Linux 5.13)',
  () => {
  let scratch: Scratch;
  let dir: string;
  let rootOnly: string;

  beforeAll(() => {
    // dist/ is what a user's require() loads; build it from the current sources.
    const tsc = path.join(ROOT, 'node_modules', '.bin', 'tsc');
    try {
      execFileSync(tsc, ['-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'pipe', timeout: 120000 });
    } catch (e) {
      // Type errors still emit; a missing dist/ is what matters.
      if (!fs.existsSync(path.join(DIST, 'index.js'))) throw e;
      console.warn(`tsc -p tsconfig.build.json reported errors; using the dist/ it emitted:\n${String((e as { stdout?: Buffer }).stdout ?? e)}`);
    }
    FOR_OTHERS.stage();
    scratch = mountTmpfs();
    dir = scratch.file('nobodys');
    fs.mkdirSync(dir);
    fs.chownSync(dir, NOBODY, NOBODY);
    rootOnly = scratch.file('root-only');
    fs.mkdirSync(rootOnly, { mode: 0o700 });
    fs.chmodSync(rootOnly, 0o700);
  });
  afterEach(() => reapAll());
  afterAll(() => {
    scratch?.cleanup();
    FOR_OTHERS.remove();
  });

  test('nobody can load the package from dist/', async () => {
    const r = await runAsNobody(`
      const out = { uid: process.getuid(), gid: process.getgid(), groups: process.getgroups() };
      try { require(${JSON.stringify(FOR_OTHERS.dist)}); out.loaded = true; } catch (e) { out.loaded = false; out.error = String(e && e.message); }
      console.log(JSON.stringify(out));
    `);
    const out = jsonOut(r);
    if (!out.loaded) {
      throw new Error(`nobody cannot load ${FOR_OTHERS.dist} (the world-readable copy of ${DIST}): ${out.error}`);
    }
    expect(out).toMatchObject({ uid: NOBODY, gid: NOBODY, loaded: true });
    // No supplementary groups (process.getgroups() lists the effective gid too).
    expect((out.groups as number[]).filter((g) => g !== NOBODY)).toEqual([]);
  });

  test('capabilities() as nobody: not privileged, FID reporting available', async () => {
    const r = await runAsNobody(`${PRELUDE} console.log(JSON.stringify(capabilities()));`);
    const caps = jsonOut(r);
    expect(caps.kernel).toBe(capabilities().kernel);
    expect(caps).toMatchObject({
      privileged: false,
      permission: false,
      pidfd: false,
      filesystemMarks: false,
      mntns: false,
      fsError: false,
      auditRule: false,
      preContent: false,
    });
    expect(caps.fid).toBe(true);
    expect(caps.dfidName).toBe(true);
  });

  test('new Fanotify() + addWatch(dir, CREATE | MODIFY | CLOSE_WRITE) works and sees events with names and paths', async () => {
    const r = await runAsNobody(
      `${PRELUDE}
      const dir = process.argv[1];
      const out = { pid: process.pid };
      const fan = new Fanotify();
      out.watch = attempt(() => fan.addWatch(dir, MaskFlags.CREATE | MaskFlags.MODIFY | MaskFlags.CLOSE_WRITE));
      const file = path.join(dir, 'by-nobody.txt');
      fs.writeFileSync(file, 'one');
      out.file = file;
      out.events = readUntil(fan, (evs) => evs.some((e) => e.mask & MaskFlags.CLOSE_WRITE), 3000);
      fan.close();
      console.log(JSON.stringify(out));
    `,
      [dir],
    );
    const out = jsonOut(r);
    expect(out.watch).toEqual({ ok: true });
    const file = path.join(dir, 'by-nobody.txt');
    expect(out.file).toBe(file);
    const events = out.events as Array<{ types: string[]; path: string | null; name: string | null; pid: number; fd: number }>;
    expect(events.length).toBeGreaterThanOrEqual(1);
    // The kernel may merge some of these into one event; together they are all there.
    const types = new Set(events.flatMap((e) => e.types));
    expect([...types].sort()).toEqual(expect.arrayContaining(['CLOSE_WRITE', 'CREATE', 'MODIFY']));
    for (const e of events) {
      expect(e).toMatchObject({ path: file, name: 'by-nobody.txt', pid: out.pid, fd: -1 });
    }
    expect(r.code).toBe(0);
  });

  test('what needs privileges throws PermissionDenied naming CAP_SYS_ADMIN; the instance keeps working', async () => {
    const r = await runAsNobody(
      `${PRELUDE}
      const [dir, rootOnly] = process.argv.slice(1);
      const file = path.join(dir, 'guarded.txt');
      fs.writeFileSync(file, 'x');
      const out = {};
      const fan = new Fanotify();
      out.openPerm = attempt(() => fan.addWatch(file, MaskFlags.OPEN_PERM));
      out.accessPerm = attempt(() => fan.addWatch(dir, MaskFlags.ACCESS_PERM));
      out.mount = attempt(() => fan.addWatch(dir, MaskFlags.OPEN, { mark: 'mount' }));
      out.filesystem = attempt(() => fan.addWatch(dir, MaskFlags.CREATE, { mark: 'filesystem' }));
      out.unreadable = attempt(() => fan.addWatch(rootOnly, MaskFlags.CREATE));
      out.removeAfterFailure = attempt(() => fan.removeWatch(file));
      out.watch = attempt(() => fan.addWatch(dir, MaskFlags.CREATE));
      const after = path.join(dir, 'after.txt');
      fs.writeFileSync(after, '');
      out.after = after;
      out.events = readUntil(fan, (evs) => evs.some((e) => e.path === after), 3000);
      fan.close();
      console.log(JSON.stringify(out));
    `,
      [dir, rootOnly],
    );
    const out = jsonOut(r);
    for (const key of ['openPerm', 'accessPerm', 'mount', 'filesystem']) {
      expect([key, out[key]]).toEqual([key, expect.objectContaining({ ok: false, isFanotifyError: true, kind: 'PermissionDenied', code: 'EPERM' })]);
      expect([key, out[key].message]).toEqual([key, expect.stringContaining('CAP_SYS_ADMIN')]);
    }
    expect(out.openPerm.syscall).toBe('fanotify_init');
    expect(out.mount.syscall).toBe('fanotify_mark');
    expect(out.filesystem.syscall).toBe('fanotify_mark');
    // A directory nobody cannot read cannot be watched either.
    expect(out.unreadable).toMatchObject({ ok: false, isFanotifyError: true, kind: 'PermissionDenied' });
    expect(['EACCES', 'EPERM']).toContain(out.unreadable.code);
    // The failures left no mark behind, and the instance still works.
    expect(out.removeAfterFailure).toMatchObject({ ok: false, kind: 'InvalidArgument' });
    expect(out.watch).toEqual({ ok: true });
    expect(out.events.map((e: { path: string }) => e.path)).toContain(out.after);
  });
});
