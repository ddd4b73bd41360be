/**
 * `fanotify demo`: the first thing to run. Watches a private scratch
 * directory (made with mkdtemp under the temporary directory and removed at
 * the end; nothing else is touched or mounted), runs a short script of file
 * operations, and prints what fanotify reported. With CAP_SYS_ADMIN it also
 * shows a permission check: a child process opens a file that carries a
 * permission mark, and this process allows the first open and denies the
 * second. The opener must be another process: the library allows its own
 * process's permission events natively, so they never reach JavaScript.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { FanotifyEvent } from '../index';
import { CliError, EXIT, UsageError, checkKernel, fit, loadLibrary } from './common';

export const summary = 'watch a private scratch directory while it runs a few file operations, then show what was seen';

export const usage = `Usage: fanotify demo

Makes a private scratch directory under ${'$'}TMPDIR (or /tmp), watches it, runs a
short script of file operations (create, write, chmod, rename, mkdir, delete)
and prints the events fanotify reported, in a table. As root it also shows a
permission check: a child process opens a file that only this demo guards,
and the demo allows the first open and denies the second. As a normal user
the permission part is skipped (it needs CAP_SYS_ADMIN), and the demo says so.
Nothing outside the scratch directory is touched; it is removed at the end.

Options:
  -h, --help   this help`;

/** How long the child may stay blocked on an unanswered open (the demo answers at once). */
const PERMISSION_TIMEOUT_MS = 3000;

const OPENER = `
const fs = require('fs');
const results = [];
for (let i = 0; i < 2; i++) {
  try { results.push({ ok: true, bytes: fs.readFileSync(process.argv[1]).length }); }
  catch (e) { results.push({ ok: false, code: e.code || String(e) }); }
}
console.log(JSON.stringify(results));
`;

export interface Row {
  at: number;
  event: FanotifyEvent;
}

interface Decision {
  n: number;
  pid: number;
  allowed: boolean;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write(usage + '\n');
    return EXIT.OK;
  }
  if (positionals.length > 0) throw new UsageError(`demo takes no arguments (got '${positionals[0]}')`);

  const lib = loadLibrary();
  const { AsyncFanotify, MaskFlags } = lib;
  checkKernel(lib);
  const caps = lib.capabilities();
  const withPermission = caps.permission;

  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fanotify-demo-'));
  const out = (line = '') => process.stdout.write(line + '\n');
  out(`fanotify demo: watching a private scratch directory, ${dir}`);
  out(
    `Linux ${caps.kernel}, ${caps.privileged ? 'running with CAP_SYS_ADMIN' : 'running as a normal user'}, pid ${process.pid}` +
      (withPermission ? '' : ' (notification events only)'),
  );
  out();

  const afan = new AsyncFanotify({ processInfo: true, permissionTimeout: PERMISSION_TIMEOUT_MS, defaultResponse: 'allow' });
  const rows: Row[] = [];
  const decisions: Decision[] = [];
  const problems: string[] = [];
  let childPid = 0;
  const t0 = Date.now();
  afan.on('error', (err) => problems.push(err.message));
  afan.on('warning', (message) => problems.push(message));
  afan.on('event', (event) => rows.push({ at: Date.now() - t0, event }));
  afan.on('permission', (event) => {
    // The demo's rule: allow the first open, deny every later one.
    const allowed = decisions.length === 0;
    decisions.push({ n: decisions.length + 1, pid: event.pid, allowed });
    if (allowed) event.allow();
    else event.deny();
  });

  let childResult: Array<{ ok: boolean; bytes?: number; code?: string }> | null = null;
  const secret = path.join(dir, 'secret.txt');
  try {
    // Set-up, before any mark: the file the permission check guards.
    if (withPermission) await fs.writeFile(secret, 'the guarded file\n');

    const move = caps.rename ? MaskFlags.RENAME : MaskFlags.MOVE;
    try {
      await afan.addWatch(dir, MaskFlags.CREATE | MaskFlags.DELETE | move | MaskFlags.MODIFY | MaskFlags.CLOSE_WRITE | MaskFlags.ATTRIB);
      // The permission mark goes on that one file only.
      if (withPermission) await afan.addWatch(secret, MaskFlags.OPEN_PERM);
    } catch (err) {
      const kind = (err as { kind?: string }).kind;
      if (kind === 'NotSupported') {
        throw new CliError(`${(err as Error).message}\nThe temporary directory ${os.tmpdir()} is on a filesystem fanotify cannot watch here; try TMPDIR=/dev/shm npx fanotify demo`, EXIT.NOT_SUPPORTED);
      }
      throw err;
    }

    const notes = path.join(dir, 'notes.txt');
    const final = path.join(dir, 'notes-final.txt');
    const archive = path.join(dir, 'archive');
    const steps: Array<[string, () => Promise<unknown>]> = [
      ['create notes.txt and write to it', () => fs.writeFile(notes, 'first line\n')],
      ['append to notes.txt', () => fs.appendFile(notes, 'second line\n')],
      ['chmod 600 notes.txt', () => fs.chmod(notes, 0o600)],
      ['rename notes.txt to notes-final.txt', () => fs.rename(notes, final)],
      ['mkdir archive', () => fs.mkdir(archive)],
      ['delete notes-final.txt', () => fs.unlink(final)],
      ['rmdir archive', () => fs.rmdir(archive)],
    ];
    out('What the demo does (this process):');
    for (const [i, [what, act]] of steps.entries()) {
      out(`  ${i + 1}. ${what}`);
      await act();
      // A moment between steps, so the kernel reports each one on its own
      // instead of merging it into a still-queued event for the same file.
      await sleep(15);
    }
    if (withPermission) {
      out(`  ${steps.length + 1}. a child process opens secret.txt twice (this file alone carries an OPEN_PERM mark)`);
      childResult = await runOpener(secret, (pid) => (childPid = pid));
    }
    await waitFor(() => rows.some((r) => r.event.isDelete() && r.event.isDirectory), 2000);
  } finally {
    await afan.close();
    await fs.rm(dir, { recursive: true, force: true });
  }

  out();
  out(`What fanotify reported (${rows.length} events):`);
  out(table(rows, dir, childPid));
  out();
  if (withPermission) {
    out(`Permission check: an OPEN_PERM mark on secret.txt only, answered by this process (rule: allow the first open, deny the next;`);
    out(`unanswered events would be allowed after permissionTimeout, ${PERMISSION_TIMEOUT_MS} ms):`);
    for (const d of decisions) {
      const seen = childResult?.[d.n - 1];
      const outcome = !seen ? '' : seen.ok ? `: the child read ${seen.bytes} bytes` : `: the child's open failed with ${seen.code}`;
      out(`  open #${d.n} by pid ${d.pid}${d.pid === childPid ? ' (the child)' : ''}: ${d.allowed ? 'allowed' : 'denied'}${outcome}`);
    }
    if (decisions.length === 0) out('  no permission event arrived (unexpected)');
  } else {
    out('Permission check skipped: permission events need CAP_SYS_ADMIN, and this process does not have it');
    out('(run as root to see it: sudo npx fanotify demo).');
  }
  for (const p of problems) out(`note: ${p}`);
  out();
  out(`Removed ${dir}. Next: 'fanotify watch DIR' prints events as they happen; 'fanotify stats DIR' counts them.`);
  return EXIT.OK;
}

/** Starts the opener child, reports its pid, and waits (time-limited) for its JSON line. */
function runOpener(file: string, started: (pid: number) => void): Promise<Array<{ ok: boolean; bytes?: number; code?: string }> | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', OPENER, file], { stdio: ['ignore', 'pipe', 'inherit'] });
    if (child.pid !== undefined) started(child.pid);
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 4 * PERMISSION_TIMEOUT_MS);
    child.on('error', () => {
      clearTimeout(timer);
      resolve(null);
    });
    child.on('close', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(stdout.trim()));
      } catch {
        resolve(null);
      }
    });
  });
}

async function waitFor(done: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done() && Date.now() < deadline) await sleep(10);
}

/** The table of what fanotify reported (exported for its test). */
export function table(rows: Row[], dir: string, childPid: number): string {
  const rel = (p: string | null) => (p === null ? '-' : p === dir ? '.' : p.startsWith(dir + '/') ? p.slice(dir.length + 1) : p);
  const typesOf = (event: FanotifyEvent) => (event.isOverflow() ? 'OVERFLOW' : event.types().join('|'));
  // The kernel merges a step's events (MODIFY|ATTRIB|CLOSE_WRITE): the event
  // column is as wide as its longest entry, never cut.
  const typeWidth = Math.max(22, ...rows.map(({ event }) => typesOf(event).length));
  const lines = [`  ${'#'.padStart(3)}  ${'+ms'.padStart(5)}  ${'event'.padEnd(typeWidth)}  ${'path'.padEnd(28)}  ${'pid'.padStart(7)}  process`];
  rows.forEach(({ at, event }, i) => {
    const where =
      event.oldPath !== null && event.newPath !== null && event.oldPath !== event.newPath
        ? `${rel(event.oldPath)} -> ${rel(event.newPath)}`
        : event.path !== null
          ? rel(event.path)
          : (event.name ?? '-');
    const who =
      event.pid === process.pid ? 'this demo' : event.pid === childPid ? `${event.process?.comm ?? '?'} (the child)` : (event.process?.comm ?? '?');
    lines.push(`  ${String(i + 1).padStart(3)}  ${String(at).padStart(5)}  ${typesOf(event).padEnd(typeWidth)}  ${fit(where, 28)}  ${String(event.pid).padStart(7)}  ${who}`);
  });
  return lines.join('\n');
}
