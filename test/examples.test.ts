/**
 * The examples (examples/*.ts), run the way the README says: through
 * scripts/example.js (`npm run example -- NAME ...`), which compiles them into
 * dist-examples/ and runs one. Each runs to completion (--count or
 * --duration) against directories on a private tmpfs, while this test (or,
 * for permission events, a child process) touches files there.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { capabilities } from '../lib';
import { reapAll, runChild, startChild, startNode, type RunningChild } from './helpers/child';
import { ensureDist } from './helpers/dist';
import { withTimeout } from './helpers/events';
import { describeRoot, kernelLacks } from './helpers/kernel';
import { mountExt4, mountTmpfs, type Scratch } from './helpers/scratch';
import { finished } from './helpers/wait';

const ROOT = path.resolve(__dirname, '..');
const RUNNER = path.join(ROOT, 'scripts', 'example.js');

function example(name: string, args: string[], timeoutMs = 20000): RunningChild {
  return startChild(process.execPath, [RUNNER, name, ...args], timeoutMs, { cwd: ROOT });
}

/** Resolves once stdout has printed something matching `pattern`. */
function printed(child: RunningChild, pattern: RegExp, ms = 15000): Promise<void> {
  let text = '';
  return withTimeout(
    new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer) => {
        text += d.toString();
        if (pattern.test(text)) {
          child.child.stdout?.off('data', onData);
          resolve();
        }
      };
      child.child.stdout?.on('data', onData);
      child.done.then((r) => reject(new Error(`exited (${r.code ?? r.signal}) before printing ${pattern}:\n${r.stdout}\n${r.stderr}`)), reject);
    }),
    ms,
    `${pattern}`,
  );
}

describeRoot('examples', () => {
  let scratch: Scratch;

  beforeAll(async () => {
    ensureDist();
    scratch = mountTmpfs();
    // The first run compiles every example (tsc -p tsconfig.examples.json).
    const r = await runChild(process.execPath, [RUNNER, '--help'], 10000, { cwd: ROOT });
    expect(r.code).toBe(0);
  }, 60000);
  afterEach(() => reapAll());
  afterAll(() => {
    reapAll();
    scratch?.cleanup();
  });

  function dir(name: string): string {
    const d = scratch.file(name);
    fs.mkdirSync(d, { recursive: true });
    return d;
  }

  test('the runner lists the examples and refuses an unknown one', async () => {
    const help = await runChild(process.execPath, [RUNNER, '--help'], 10000, { cwd: ROOT });
    expect(help.stdout).toContain('examples: advanced_monitor, async_monitor, basic_monitor, lazy_files, permission_monitor');
    const bad = await runChild(process.execPath, [RUNNER, 'no_such_monitor'], 10000, { cwd: ROOT });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("no example named 'no_such_monitor'");
  });

  test('basic_monitor (sync) prints each event with its path, and stops after --count', async () => {
    const d = dir('basic');
    const child = example('basic_monitor', [d, '--count', '3']);
    await printed(child, /watching/);
    // Distinct files: the kernel merges events of one process on one file.
    let n = 0;
    const timer = setInterval(() => fs.writeFileSync(path.join(d, `file-${n++}.txt`), 'hello'), 50);
    const r = await finished(child, 10000, 'basic_monitor --count 3').finally(() => clearInterval(timer));
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^Event: CREATE\\S* ${d}/file-0\\.txt \\(pid ${process.pid}\\)$`, 'm'));
    expect(r.stdout).toContain(`  Path: ${d}/file-0.txt (file file-0.txt)`);
    expect(r.stdout.match(/^Event: /gm)).toHaveLength(3);
    expect(r.stdout).toMatch(/^3 events$/m);
  });

  test('basic_monitor: --duration ends a quiet watch; a missing path is an error with its kind', async () => {
    const quiet = await finished(example('basic_monitor', [dir('quiet'), '--duration', '0.3']), 10000);
    expect(quiet.code).toBe(0);
    expect(quiet.stdout).toMatch(/^0 events$/m);
    const missing = await finished(example('basic_monitor', [scratch.file('missing')]), 10000);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/cannot watch .*missing: .*\[InvalidPath\]/);
  });

  test('async_monitor prints events from nextEvent() and stops after --count, or when --duration aborts it', async () => {
    const d = dir('async');
    const child = example('async_monitor', [d, '--count', '2']);
    await printed(child, /watching/);
    fs.mkdirSync(path.join(d, 'sub'));
    fs.writeFileSync(path.join(d, 'two.txt'), 'x');
    const r = await finished(child, 10000, 'async_monitor --count 2');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Async event: CREATE|ONDIR ${d}/sub (pid ${process.pid})`);
    expect(r.stdout).toMatch(/^2 events$/m);

    const t0 = Date.now();
    const quiet = await finished(example('async_monitor', [d, '--duration', '0.5']), 10000);
    expect(quiet.code).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(500);
    expect(quiet.stdout).toMatch(/^0 events$/m);
  });

  test('lazy_files fills placeholders on first read, once, and fails reads of a missing source with EIO', async () => {
    if (kernelLacks(capabilities().preContent, 'pre-content events (Linux 6.14)')) return;
    const ext4 = mountExt4(16);
    try {
      const source = path.join(ext4.dir, 'source');
      const lazy = path.join(ext4.dir, 'lazy');
      fs.mkdirSync(source);
      fs.mkdirSync(lazy);
      fs.writeFileSync(path.join(source, 'a.txt'), 'alpha content\n');
      fs.writeFileSync(path.join(source, 'b.txt'), 'beta content\n');
      fs.writeFileSync(path.join(source, 'c.txt'), 'gamma');
      const server = example('lazy_files', [lazy, '--source', source, '--count', '3', '--timeout', '5000'], 30000);
      await printed(server, /serving/);
      expect(fs.statSync(path.join(lazy, 'a.txt')).size).toBe(14);
      fs.rmSync(path.join(source, 'c.txt')); // its placeholder stays: the store became unreachable
      const reader = startChild('sh', ['-c', `cat ${lazy}/a.txt ${lazy}/a.txt ${lazy}/b.txt; cat ${lazy}/c.txt || echo c failed`], 20000);
      const o = await finished(reader, 15000, 'the reader');
      expect(o.stdout).toBe('alpha content\nalpha content\nbeta content\nc failed\n');
      expect(o.stderr).toMatch(/c\.txt: Input\/output error/);
      const r = await finished(server, 10000, 'lazy_files --count 3');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^FILLED ${lazy}/a\\.txt \\(14 bytes\\) for pid \\d+ cat, who read bytes 0-\\d+$`, 'm'));
      expect(r.stdout.match(/^FILLED /gm)).toHaveLength(2);
      expect(r.stdout).toMatch(new RegExp(`^FAILED ${lazy}/c\\.txt for pid \\d+ cat: ENOENT`, 'm'));
      expect(r.stdout).toMatch(/^2 filled, 1 failed$/m);
    } finally {
      ext4.cleanup();
    }
  });

  test('permission_monitor denies opens matching --deny-glob, allows the rest, and prints each decision', async () => {
    const d = dir('guarded');
    fs.writeFileSync(path.join(d, 'a.secret'), 'secret');
    fs.writeFileSync(path.join(d, 'b.txt'), 'public');
    const monitor = example('permission_monitor', [d, '--deny-glob', '*.secret', '--count', '2', '--timeout', '5000'], 30000);
    await printed(monitor, /guarding opens/);
    // The opener must be another process: the monitor's own opens are allowed natively.
    const opener = startNode(
      `const fs = require('fs');
       for (const f of process.argv.slice(1)) {
         try { fs.readFileSync(f); console.log(f + ' ok'); } catch (e) { console.log(f + ' ' + e.code); }
       }`,
      [path.join(d, 'a.secret'), path.join(d, 'b.txt')],
      20000,
    );
    const o = await finished(opener, 15000, 'the opener');
    expect(o.stdout.trim().split('\n')).toEqual([`${d}/a.secret EPERM`, `${d}/b.txt ok`]);
    const r = await finished(monitor, 10000, 'permission_monitor --count 2');
    expect(r.code).toBe(0);
    // The opener is this same Node binary, so it has our process name ("node"; "node-MainThread" from Node 26 on).
    const comm = fs.readFileSync('/proc/self/comm', 'utf8').trim();
    expect(r.stdout).toContain(`DENY  ${d}/a.secret (pid ${opener.pid} ${comm}) matches *.secret`);
    expect(r.stdout).toContain(`ALLOW ${d}/b.txt (pid ${opener.pid} ${comm})`);
    expect(r.stdout).toMatch(/^2 decisions$/m);
  });

  test('permission_monitor needs a rule', async () => {
    const r = await finished(example('permission_monitor', [dir('norule')]), 10000);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/usage: permission_monitor DIR --deny-glob GLOB/);
  });

  test('advanced_monitor watches several --paths, skips what it cannot watch, filters, and prints statistics', async () => {
    const a = dir('adv-a');
    const b = dir('adv-b');
    const missing = scratch.file('adv-missing');
    const child = example('advanced_monitor', ['--paths', [a, missing, b].join(','), '--exclude', '*.tmp', '--interval', '0.3', '--duration', '1.5'], 20000);
    await printed(child, new RegExp(`watching ${b}`));
    for (const d of [a, b]) {
      fs.writeFileSync(path.join(d, 'kept.txt'), 'x');
      fs.writeFileSync(path.join(d, 'dropped.tmp'), 'x');
    }
    const r = await finished(child, 10000, 'advanced_monitor --duration');
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/skipping .*adv-missing: .*\[InvalidPath\]/);
    expect(r.stdout).toContain(`CREATE ${a}/kept.txt`);
    expect(r.stdout).toContain(`CREATE ${b}/kept.txt`);
    expect(r.stdout).not.toMatch(/^[A-Z_|]+ .*dropped\.tmp/m);
    const reports = r.stdout.match(/^--- statistics after [\d.]+ s: (\d+) events \([\d.]+\/s\), (\d+) filtered out, 0 overflows$/gm) ?? [];
    expect(reports.length).toBeGreaterThanOrEqual(2);
    const last = /(\d+) events \([\d.]+\/s\), (\d+) filtered out/.exec(reports[reports.length - 1])!;
    expect(Number(last[1])).toBeGreaterThanOrEqual(4); // CREATE and CLOSE_WRITE (maybe MODIFY) of two kept files
    expect(Number(last[2])).toBeGreaterThanOrEqual(2);
    expect(r.stdout).toMatch(/by type: .*CREATE=\d+/);
    expect(r.stdout).toContain(`top pids:   ${process.pid}`);
  });

  test('advanced_monitor --pid keeps one process, and --events takes MaskFlags names', async () => {
    const d = dir('adv-pid');
    const child = example('advanced_monitor', ['--paths', d, '--events', 'create', '--pid', String(process.pid), '--count', '1', '--quiet']);
    await printed(child, /watching/);
    await runChild('sh', ['-c', 'echo > "$1/other.txt"', 'sh', d], 5000);
    fs.writeFileSync(path.join(d, 'mine.txt'), 'x');
    const r = await finished(child, 10000, 'advanced_monitor --pid --count 1');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/1 events \([\d.]+\/s\), 1 filtered out/);
    expect(r.stdout).toContain(`top paths:  ${d}/mine.txt (1)`);
    const bad = await finished(example('advanced_monitor', ['--paths', d, '--events', 'open_perm']), 10000);
    expect(bad.code).toBe(2);
  });
});
