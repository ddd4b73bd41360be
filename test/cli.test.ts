/**
 * The `fanotify` command (dist/cli.js, built from lib/cli.ts and lib/cli/):
 * help, exit codes, `watch` (human and JSON Lines, filters, SIGINT/SIGTERM),
 * `stats` (plain snapshots and the terminal view) and `demo` (as root, and as
 * nobody through `npx fanotify demo` in a fresh copy of the repository).
 *
 * Every mark is on a private tmpfs (the demo's scratch directory too: its
 * TMPDIR points there); every child is time-limited and reaped.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkKernel, globMatcher, parseEvents, EXIT } from '../lib/cli/common';
import { table } from '../lib/cli/demo';
import { Fanotify, MaskFlags, type FanotifyEvent } from '../lib';
import { reapAll, runChild, startChild, type RunningChild } from './helpers/child';
import { ensureDist } from './helpers/dist';
import { withTimeout } from './helpers/events';
import { describeRoot } from './helpers/kernel';
import { mountTmpfs, type Scratch } from './helpers/scratch';
import { finished } from './helpers/wait';

const ROOT = path.resolve(__dirname, '..');
const CLI = path.join(ROOT, 'dist', 'cli.js');
const NOBODY = 65534;
const AS_NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups'];

function cli(args: string[], timeoutMs = 15000, env: NodeJS.ProcessEnv = {}) {
  return runChild(process.execPath, [CLI, ...args], timeoutMs, { env: { ...process.env, ...env } });
}

function startCli(args: string[], timeoutMs = 15000, env: NodeJS.ProcessEnv = {}): RunningChild {
  return startChild(process.execPath, [CLI, ...args], timeoutMs, { env: { ...process.env, ...env } });
}

/** Resolves once the child's stderr (or stdout) has printed something matching `pattern`. */
function printed(child: RunningChild, stream: 'stdout' | 'stderr', pattern: RegExp, ms = 10000): Promise<void> {
  let text = '';
  return withTimeout(
    new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer) => {
        text += d.toString();
        if (pattern.test(text)) {
          child.child[stream]?.off('data', onData);
          resolve();
        }
      };
      child.child[stream]?.on('data', onData);
      child.done.then((r) => reject(new Error(`exited (${r.code ?? r.signal}) before printing ${pattern}:\n${r.stdout}\n${r.stderr}`)), reject);
    }),
    ms,
    `${pattern} on ${stream}`,
  );
}

/** Writes files in `dir` every `everyMs` until stopped: activity for a watcher to see. */
function activity(dir: string, everyMs = 40): () => void {
  let n = 0;
  const timer = setInterval(() => {
    const file = path.join(dir, `busy-${n++ % 3}.txt`);
    fs.writeFileSync(file, `write ${n}\n`);
  }, everyMs);
  return () => clearInterval(timer);
}

/** The rows of the demo's table as 'TYPE path', one per type of each row. */
function demoTable(out: string): string[] {
  const rows: string[] = [];
  for (const line of out.split('\n')) {
    const m = /^\s+\d+\s+\d+\s+(\S+)\s+(.+?)\s+\d+\s+\S.*$/.exec(line);
    if (m) for (const type of m[1].split('|')) rows.push(`${type} ${m[2]}`);
  }
  return rows;
}

describe('command-line helpers (no kernel needed)', () => {
  test('event names: case and dashes are forgiven; unknown and permission events are usage errors', () => {
    expect(parseEvents('create,Close-Write', MaskFlags)).toBe(MaskFlags.CREATE | MaskFlags.CLOSE_WRITE);
    expect(parseEvents('all', MaskFlags)).toBe(MaskFlags.ALL_EVENTS);
    expect(() => parseEvents('creat', MaskFlags)).toThrow(/unknown event 'creat'; known events: access/);
    expect(() => parseEvents('open_perm', MaskFlags)).toThrow(/permission event/);
    expect(() => parseEvents(',', MaskFlags)).toThrow(/at least one/);
  });

  test('globs: no slash matches any component, a slash matches the path or its tail', () => {
    expect(globMatcher('*.log')('/srv/data/app.log')).toBe(true);
    expect(globMatcher('*.log')('/srv/data/app.log.1')).toBe(false);
    expect(globMatcher('node_modules')('/srv/app/node_modules/x/index.js')).toBe(true);
    expect(globMatcher('build/**')('/srv/app/build/a/b.o')).toBe(true);
    expect(globMatcher('build/**')('/srv/app/rebuild/a')).toBe(false);
    expect(globMatcher('/srv/*/x?.txt')('/srv/data/x1.txt')).toBe(true);
    expect(globMatcher('/srv/*/x?.txt')('/srv/data/sub/x1.txt')).toBe(false);
    expect(globMatcher('[ab].txt')('/d/a.txt')).toBe(true);
  });

  test('a kernel too old for unprivileged fanotify is "not supported" (exit 4), with the version needed', () => {
    const fake = { capabilities: () => ({ privileged: false, unprivileged: false, fid: true, kernel: '5.4.0-old' }) };
    let err: unknown;
    try {
      checkKernel(fake as never);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: EXIT.NOT_SUPPORTED });
    expect((err as Error).message).toMatch(/kernel too old.*Linux 5\.13.*5\.4\.0-old/);
  });
});

describeRoot('the fanotify command', () => {
  let scratch: Scratch;
  let dir: string;

  beforeAll(() => {
    ensureDist();
    scratch = mountTmpfs('size=512m,mode=1777');
    dir = scratch.file('watched');
    fs.mkdirSync(dir);
  });
  afterEach(() => reapAll());
  afterAll(() => {
    reapAll();
    scratch?.cleanup();
  });

  test('dist/cli.js starts with a shebang, and package.json names it as the fanotify bin', () => {
    expect(fs.readFileSync(CLI, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    expect(JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).bin).toEqual({ fanotify: 'dist/cli.js' });
  });

  test('--help lists the commands and the exit codes; each command has --help; no command is a usage error', async () => {
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    for (const word of ['demo', 'watch PATH', 'stats PATH', 'Exit codes', '3  not permitted', '4  not supported']) expect(help.stdout).toContain(word);
    for (const command of ['demo', 'watch', 'stats']) {
      const r = await cli([command, '--help']);
      expect([command, r.code]).toEqual([command, 0]);
      expect(r.stdout).toMatch(new RegExp(`^Usage: fanotify ${command}`));
    }
    const watchHelp = await cli(['watch', '--help']);
    for (const option of ['--events', '--recursive', '--mark', '--json', '--pid', '--comm', '--exclude']) expect(watchHelp.stdout).toContain(option);
    expect((await cli(['stats', '--help'])).stdout).toContain('--interval');
    const none = await cli([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('Usage: fanotify');
  });

  test.each([
    [['bogus'], /unknown command 'bogus'/],
    [['watch'], /at least one PATH/],
    [['watch', '--bogus', '/x'], /Unknown option '--bogus'/],
    [['watch', '/x', '--events', 'create,nope'], /unknown event 'nope'/],
    [['watch', '/x', '--events', 'open_perm'], /permission event/],
    [['watch', '/x', '--mark', 'mntns'], /--mark must be inode, mount or filesystem/],
    [['watch', '/x', '--count', '0'], /--count must be an integer/],
    [['stats', '/x', '--interval', 'soon'], /--interval must be a number/],
    [['demo', 'extra'], /takes no arguments/],
  ])('usage error %j: exit 2 and a pointer to --help', async (args, message) => {
    const r = await cli(args as string[]);
    expect(r.code).toBe(EXIT.USAGE);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/Run 'fanotify .*--help' for usage/);
    expect(r.stdout).toBe('');
  });

  test('no such path: exit 5 and a message naming the path', async () => {
    const missing = scratch.file('does-not-exist');
    const r = await cli(['watch', missing, '--duration', '5']);
    expect(r.code).toBe(EXIT.NO_SUCH_PATH);
    expect(r.stderr).toContain(missing);
    expect(r.stderr).toMatch(/does not exist/);
  });

  test('watch prints one human line per event: time, types, path, pid and command name', async () => {
    const sub = scratch.file('human');
    fs.mkdirSync(sub);
    const watcher = startCli(['watch', sub, '--events', 'create', '--count', '2']);
    await printed(watcher, 'stderr', /watching/);
    const maker = await runChild('sh', ['-c', 'echo one > "$1/one.txt"; echo two > "$1/two.txt"; sleep 0.5', 'sh', sub], 5000);
    expect(maker.code).toBe(0);
    const r = await finished(watcher, 5000, 'watch --count 2');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3}  CREATE +${sub}/one\\.txt  pid \\d+ sh$`));
    expect(lines[1]).toMatch(new RegExp(`  CREATE +${sub}/two\\.txt  pid \\d+ sh$`));
  });

  test('watch --json prints JSON Lines; --pid and --comm keep only the matching process; --exclude drops paths', async () => {
    const sub = scratch.file('json');
    fs.mkdirSync(sub);
    const watcher = startCli(['watch', sub, '--json', '--events', 'create', '--comm', 'sh', '--exclude', '*.tmp', '--count', '1']);
    await printed(watcher, 'stderr', /watching/);
    fs.writeFileSync(path.join(sub, 'from-jest.txt'), 'x'); // comm node: filtered out
    await runChild('sh', ['-c', 'echo > "$1/skip.tmp"; echo > "$1/kept.txt"; sleep 0.5', 'sh', sub], 5000);
    const r = await finished(watcher, 5000, 'watch --json');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ types: ['CREATE'], path: path.join(sub, 'kept.txt'), name: 'kept.txt', comm: 'sh', process: { comm: 'sh' } });
    expect(new Date(lines[0].time).getTime()).toBeGreaterThan(Date.now() - 60000);

    const byPid = startCli(['watch', sub, '--json', '--events', 'close_write', '--pid', String(process.pid), '--count', '1']);
    await printed(byPid, 'stderr', /watching/);
    await runChild('sh', ['-c', 'echo > "$1/other.txt"', 'sh', sub], 5000);
    fs.writeFileSync(path.join(sub, 'mine.txt'), 'x');
    const p = await finished(byPid, 5000, 'watch --pid');
    expect(p.stdout.trim().split('\n').map((l) => JSON.parse(l).path)).toEqual([path.join(sub, 'mine.txt')]);
  });

  test.each(['SIGINT', 'SIGTERM'] as const)('watch stops cleanly on %s: exit 0, promptly', async (signal) => {
    const sub = scratch.file(`signal-${signal}`);
    fs.mkdirSync(sub);
    const watcher = startCli(['watch', sub]);
    await printed(watcher, 'stderr', /watching/);
    fs.writeFileSync(path.join(sub, 'a.txt'), 'x');
    await printed(watcher, 'stdout', /a\.txt/);
    const t0 = Date.now();
    watcher.child.kill(signal);
    const r = await finished(watcher, 5000, `watch after ${signal}`);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect({ code: r.code, signal: r.signal }).toEqual({ code: 0, signal: null });
  });

  test('watch --recursive is passed to the library: the subtree is reported, or its NotSupported error shows (exit 4)', async () => {
    const top = scratch.file('tree');
    fs.mkdirSync(path.join(top, 'a', 'b'), { recursive: true });
    const watcher = startCli(['watch', top, '--recursive', '--events', 'create', '--count', '1', '--duration', '5']);
    const ready = await Promise.race([printed(watcher, 'stderr', /watching/).then(() => true), watcher.done.then(() => false)]);
    if (!ready) {
      const r = await watcher.done;
      expect(r.code).toBe(EXIT.NOT_SUPPORTED);
      expect(r.stderr).toMatch(/recursive/);
      return;
    }
    fs.writeFileSync(path.join(top, 'a', 'b', 'deep.txt'), 'x');
    const r = await finished(watcher, 8000, 'watch --recursive');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(path.join(top, 'a', 'b', 'deep.txt'));
  });

  test('not permitted (a filesystem mark as nobody): exit 3, naming CAP_SYS_ADMIN', async () => {
    // nobody runs a copy of what the command needs, so it does not depend on the checkout's permissions.
    const copy = scratch.file('nobody-copy');
    copyRuntime(copy);
    const target = scratch.file('nobodys');
    fs.mkdirSync(target);
    fs.chownSync(target, NOBODY, NOBODY);
    const r = await runChild('setpriv', [...AS_NOBODY, process.execPath, path.join(copy, 'dist', 'cli.js'), 'watch', target, '--mark', 'filesystem', '--duration', '3'], 10000, { cwd: '/' });
    expect(r.code).toBe(EXIT.NOT_PERMITTED);
    expect(r.stderr).toMatch(/CAP_SYS_ADMIN/);
  });

  test('stats with a non-TTY stdout prints plain snapshots: rates, busiest files, busiest processes', async () => {
    const sub = scratch.file('stats');
    fs.mkdirSync(sub);
    const stats = startCli(['stats', sub, '--interval', '0.3', '--duration', '1.5']);
    await printed(stats, 'stderr', /watching/);
    const stop = activity(sub);
    const r = await finished(stats, 8000, 'stats --duration').finally(stop);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('\x1b[');
    expect(r.stdout.match(/^fanotify stats /gm)?.length ?? 0).toBeGreaterThanOrEqual(3);
    expect(r.stdout).toMatch(/events: \d+ total, [\d.]+\/s now/);
    expect(r.stdout).toContain('busiest files');
    expect(r.stdout).toContain(path.join(sub, 'busy-0.txt'));
    expect(r.stdout).toContain('busiest processes');
    expect(r.stdout).toMatch(/CLOSE_WRITE/);
    expect(r.stdout).toMatch(new RegExp(`\\s${process.pid}\\s`));
  });

  test('stats in a terminal redraws the screen in place', async () => {
    const sub = scratch.file('stats-tty');
    fs.mkdirSync(sub);
    const stop = activity(sub);
    // script(1) gives the command a pseudo-terminal.
    const command = [process.execPath, CLI, 'stats', sub, '--interval', '0.3', '--duration', '1.2'].map((a) => `'${a}'`).join(' ');
    const r = await runChild('script', ['-qec', command, '/dev/null'], 10000).finally(stop);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\x1b[H\x1b[2J').length).toBeGreaterThanOrEqual(3);
    expect(r.stdout).toContain('busiest files');
  });

  test('demo as root: notification events and a permission check by a child; it leaves nothing behind and mounts nothing', async () => {
    const tmp = scratch.file('demo-tmp');
    fs.mkdirSync(tmp);
    const mountsBefore = fs.readFileSync('/proc/self/mountinfo', 'utf8');
    const r = await cli(['demo'], 20000, { TMPDIR: tmp });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = r.stdout;
    expect(out).toContain(`watching a private scratch directory, ${tmp}/fanotify-demo-`);
    // The kernel may merge a step's events into one still queued (e.g. CREATE|MODIFY|CLOSE_WRITE): compare type by type.
    const seen = demoTable(out);
    for (const [type, where] of [['CREATE', 'notes.txt'], ['MODIFY', 'notes.txt'], ['CLOSE_WRITE', 'notes.txt'], ['ATTRIB', 'notes.txt'], ['CREATE', 'archive'], ['DELETE', 'notes-final.txt'], ['DELETE', 'archive']]) {
      expect(seen).toContain(`${type} ${where}`);
    }
    expect(seen.some((s) => s === 'RENAME notes.txt -> notes-final.txt' || s === 'MOVED_FROM notes.txt')).toBe(true);
    expect(out).toMatch(/OPEN_PERM +secret\.txt .*\(the child\)/);
    expect(out).toMatch(/open #1 by pid \d+ \(the child\): allowed: the child read 17 bytes/);
    expect(out).toMatch(/open #2 by pid \d+ \(the child\): denied: the child's open failed with EPERM/);
    expect(fs.readdirSync(tmp)).toEqual([]);
    expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).toBe(mountsBefore);
  });

  test("demo's table: an event the kernel merged shows every type, and the columns after it stay aligned", () => {
    const sub = scratch.file('demo-table');
    fs.mkdirSync(sub);
    const fan = new Fanotify();
    try {
      fan.addWatch(sub, MaskFlags.MODIFY | MaskFlags.ATTRIB | MaskFlags.CLOSE_WRITE);
      // The kernel merges events of one object and process while they are
      // unread. The reader reads the first write at once, then at most once
      // per millisecond while events keep coming, so chmod, a second write
      // and close usually become one MODIFY|ATTRIB|CLOSE_WRITE, as in the
      // demo's steps; a try that a read split is repeated.
      let events: FanotifyEvent[] = [];
      let merged: FanotifyEvent | undefined;
      for (let attempt = 0; attempt < 10 && !merged; attempt++) {
        const file = path.join(sub, `notes-${attempt}.txt`);
        const fd = fs.openSync(file, 'w');
        fs.writeSync(fd, 'x');
        fs.fchmodSync(fd, 0o600);
        fs.writeSync(fd, 'y');
        fs.closeSync(fd);
        events = [];
        const deadline = Date.now() + 5000;
        while (!events.some((e) => e.path === file && e.types().includes('CLOSE_WRITE')) && Date.now() < deadline) events.push(...fan.readEvents({ timeout: 500 }));
        merged = events.find((e) => e.path === file && e.types().length === 3);
      }
      expect(merged?.types().sort()).toEqual(['ATTRIB', 'CLOSE_WRITE', 'MODIFY']);
      const types = merged!.types().join('|');
      expect(types.length).toBeGreaterThan(22); // wider than the column's least width
      const lines = table(events.map((event) => ({ at: 0, event })), sub, 0).split('\n');
      const row = lines.find((line) => line.includes(` ${types} `));
      expect(row).toBeDefined();
      expect(row!.indexOf(path.basename(merged!.path!))).toBe(lines[0].indexOf('path'));
      expect(row).toMatch(/ this demo$/);
    } finally {
      fan.close();
    }
  });

  test('demo as a normal user, through `npx fanotify demo` in a fresh copy of the repository: no permission part, and why', async () => {
    // A copy owned by nobody, as a user's own clone would be (npx runs the
    // package's prepare script, which writes dist/).
    const clone = scratch.file('clone');
    copyRepository(clone);
    const home = scratch.file('nobody-home');
    const tmp = scratch.file('nobody-tmp');
    for (const d of [home, tmp]) fs.mkdirSync(d);
    execFileSync('chown', ['-R', `${NOBODY}:${NOBODY}`, clone, home, tmp]);
    // NODE_DISABLE_COMPILE_CACHE: npm on Node >= 22 enables Node's module compile cache, which lands in TMPDIR.
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: home, TMPDIR: tmp, NODE_DISABLE_COMPILE_CACHE: '1', npm_config_update_notifier: 'false', npm_config_audit: 'false', npm_config_fund: 'false' };
    const r = await runChild('setpriv', [...AS_NOBODY, 'npx', 'fanotify', 'demo'], 60000, { cwd: clone, env });
    if (r.code !== 0) throw new Error(`npx fanotify demo as nobody: exit ${r.code ?? r.signal}\n${r.stdout}\n${r.stderr}`);
    expect(r.stdout).toContain('running as a normal user');
    expect(demoTable(r.stdout)).toEqual(expect.arrayContaining(['CREATE notes.txt', 'DELETE archive', 'ONDIR archive']));
    expect(r.stdout).toContain('Permission check skipped: permission events need CAP_SYS_ADMIN');
    expect(r.stdout).not.toContain('OPEN_PERM');
    expect(fs.readdirSync(tmp)).toEqual([]);
  }, 90000);

  /** What `node dist/cli.js` needs at run time: dist/, the addon, package.json and node-gyp-build. */
  function copyRuntime(to: string): void {
    fs.mkdirSync(path.join(to, 'node_modules'), { recursive: true });
    fs.cpSync(path.join(ROOT, 'dist'), path.join(to, 'dist'), { recursive: true });
    fs.cpSync(path.join(ROOT, 'package.json'), path.join(to, 'package.json'));
    copyAddon(to);
    fs.cpSync(path.join(ROOT, 'node_modules', 'node-gyp-build'), path.join(to, 'node_modules', 'node-gyp-build'), { recursive: true });
    execFileSync('chmod', ['-R', 'a+rX', to]);
  }

  function copyAddon(to: string): void {
    const built = path.join(ROOT, 'build', 'Release', 'fanotify.node');
    if (fs.existsSync(built)) {
      fs.mkdirSync(path.join(to, 'build', 'Release'), { recursive: true });
      fs.cpSync(built, path.join(to, 'build', 'Release', 'fanotify.node'));
    } else {
      fs.cpSync(path.join(ROOT, 'prebuilds'), path.join(to, 'prebuilds'), { recursive: true });
    }
  }

  /** The repository as a clone has it (sources, no dist/), plus node_modules and the built addon, as `npm ci` leaves them. */
  function copyRepository(to: string): void {
    fs.mkdirSync(to);
    for (const entry of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'lib', 'node_modules']) {
      fs.cpSync(path.join(ROOT, entry), path.join(to, entry), { recursive: true, verbatimSymlinks: true });
    }
    copyAddon(to);
  }
});
