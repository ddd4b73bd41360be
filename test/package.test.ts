/**
 * The published artefact, end to end: pack the package as `npm pack` would
 * publish it, install the tarball into a scratch project with npm's defaults
 * (npm here blocks dependencies' install scripts, so nothing is compiled
 * there), then use it from a child process in that project. The child must
 * load the prebuild shipped in the tarball and see a real event on a private
 * tmpfs that this file mounts.
 *
 * Slow (tsc, prebuildify and npm): every step is a time-limited child.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describeRoot } from './helpers/kernel';
import { mountTmpfs, type Scratch } from './helpers/scratch';
import { reapAll, runChild, type ChildResult } from './helpers/child';

const root = path.resolve(__dirname, '..');
const platformDir = `${process.platform}-${process.arch}`;
const PREBUILD_TIMEOUT = 900_000;
const SETUP_TIMEOUT = 240_000 + PREBUILD_TIMEOUT;

/** The environment for npm and node children: no npm_* leaking from an outer `npm test`. */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^npm_/i.test(key) && key !== 'INIT_CWD') env[key] = value;
  }
  return env;
}

function tail(text: string, lines = 30): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/** Runs a command to completion within `timeoutMs`; throws with its output if it fails. */
async function run(command: string, args: string[], cwd: string, timeoutMs: number): Promise<ChildResult> {
  const result = await runChild(command, args, timeoutMs, { cwd, env: childEnv() });
  if (result.code !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} (in ${cwd}) ended with ${result.signal ? `signal ${result.signal} (time limit ${timeoutMs} ms?)` : `code ${result.code}`}\n` +
        `--- stdout\n${tail(result.stdout)}\n--- stderr\n${tail(result.stderr)}`,
    );
  }
  return result;
}

/** Newest modification time among the files under `paths` (0 if none). */
function newest(paths: string[]): number {
  let latest = 0;
  const visit = (p: string): void => {
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch {
      return;
    }
    if (st.isDirectory()) for (const entry of fs.readdirSync(p)) visit(path.join(p, entry));
    else latest = Math.max(latest, st.mtimeMs);
  };
  paths.forEach(visit);
  return latest;
}

function prebuiltAddons(dir: string): string[] {
  try {
    return fs.readdirSync(dir).filter((f) => f.endsWith('.node'));
  } catch {
    return [];
  }
}

/** dist/ compiled from lib/, and a prebuild compiled from native/; (re)built when missing or older than their sources. */
async function ensureBuildOutputs(): Promise<void> {
  const distIndex = path.join(root, 'dist', 'index.js');
  if (!fs.existsSync(distIndex) || fs.statSync(distIndex).mtimeMs < newest([path.join(root, 'lib')])) {
    await run(path.join(root, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.build.json'], root, 60_000);
  }
  const prebuildDir = path.join(root, 'prebuilds', platformDir);
  const addons = prebuiltAddons(prebuildDir);
  const sourcesTime = newest([path.join(root, 'native'), path.join(root, 'binding.gyp')]);
  if (addons.length === 0 || addons.some((f) => fs.statSync(path.join(prebuildDir, f)).mtimeMs < sourcesTime)) {
    // Only this machine's target (all four: `npm run prebuilds`). The first
    // build on a machine installs zig and compiles libc++ for the target: minutes.
    await run('npm', ['run', 'prebuilds', '--', `${platformDir}-glibc`], root, PREBUILD_TIMEOUT);
  }
}

/** What the child prints: one JSON line. */
interface ChildReport {
  pid: number;
  resolved: string;
  packageJson: string;
  exportTypes: Record<string, string>;
  sameLowLevel: boolean;
  watcherFunctions: string[];
  createMatchesKernel: boolean;
  deepImport: string;
  addon: string;
  kernel: string;
  error: { isFanotifyError: boolean; isError: boolean; kind: string; name: string };
  file: string;
  events: { types: string[]; path: string | null; pid: number }[];
}

// Runs in the scratch project, so `require('fanotify')` resolves to the
// installed tarball; argv[2] is the tmpfs mount point the parent made.
const CHILD_SOURCE = String.raw`'use strict';
const fs = require('node:fs');
const path = require('node:path');
const dir = process.argv[2];
const fanotify = require('fanotify');
const lowLevel = require('fanotify/low-level');
const watcher = require('fanotify/watcher');
const out = { pid: process.pid };
out.watcherFunctions = ['subscribe', 'unsubscribe', 'writeSnapshot', 'getEventsSince'].map((name) => name + ':' + typeof watcher[name]);
out.resolved = require.resolve('fanotify');
out.packageJson = require.resolve('fanotify/package.json');
out.exportTypes = {};
for (const name of ['Fanotify', 'FanotifyEvent', 'MaskFlags', 'FanotifyFlags', 'FanotifyError', 'lowLevel', 'capabilities']) {
  out.exportTypes[name] = typeof fanotify[name];
}
out.sameLowLevel = fanotify.lowLevel === lowLevel;
out.createMatchesKernel = fanotify.MaskFlags.CREATE === lowLevel.FAN_CREATE && lowLevel.FAN_CREATE === 0x100;
try {
  require.resolve('fanotify/dist/native.js');
  out.deepImport = 'resolved';
} catch (e) {
  out.deepImport = e.code;
}
const pkgDir = path.dirname(out.packageJson);
out.addon = require(require.resolve('node-gyp-build', { paths: [pkgDir] })).path(pkgDir);
out.kernel = fanotify.capabilities().kernel;
const fan = new fanotify.Fanotify();
try {
  try {
    fan.addWatch(path.join(dir, 'does-not-exist'), fanotify.MaskFlags.CREATE);
    out.error = { isFanotifyError: false, isError: false, kind: 'none (addWatch did not throw)', name: '' };
  } catch (e) {
    out.error = { isFanotifyError: e instanceof fanotify.FanotifyError, isError: e instanceof Error, kind: e.kind, name: e.name };
  }
  fan.addWatch(dir, fanotify.MaskFlags.CREATE);
  out.file = path.join(dir, 'created-through-the-package.txt');
  fs.writeFileSync(out.file, 'hello');
  out.events = fan.readEvents({ timeout: 3000 }).map((e) => ({ types: e.types(), path: e.path, pid: e.pid }));
} finally {
  fan.close();
}
process.stdout.write(JSON.stringify(out) + '\n');
`;

describeRoot('package: the packed tarball installs without a compile step and loads its prebuild', () => {
  let work: string;
  let app: string;
  let installed: string;
  let tarball: string;
  let entries: string[];
  let scratch: Scratch | undefined;

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'fanotify-package-'));
    await ensureBuildOutputs();

    // What `npm publish` would upload (prepare recompiles dist/ on the way).
    await run('npm', ['pack', '--pack-destination', work, '--no-audit', '--no-fund'], root, 90_000);
    const tarballs = fs.readdirSync(work).filter((f) => f.endsWith('.tgz'));
    expect(tarballs).toHaveLength(1);
    tarball = path.join(work, tarballs[0]);
    entries = (await run('tar', ['-tzf', tarball], work, 30_000)).stdout.split('\n').filter(Boolean);

    // A user's project: `npm install <tarball>` with npm's defaults, so the
    // package's own install script (node-gyp-build) is blocked.
    app = path.join(work, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(
      path.join(app, 'package.json'),
      JSON.stringify({ name: 'fanotify-package-test', version: '1.0.0', private: true }, null, 2),
    );
    await run('npm', ['install', tarball, '--prefer-offline', '--no-audit', '--no-fund'], app, 150_000);
    installed = path.join(app, 'node_modules', 'fanotify');
    scratch = mountTmpfs();
  }, SETUP_TIMEOUT);

  afterAll(() => {
    reapAll();
    scratch?.cleanup();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test('the tarball ships dist/, the prebuild, the native sources, README and LICENSE, and no tests or source maps', () => {
    const files = new Set(entries.map((e) => e.replace(/^package\//, '')));
    for (const required of [
      'package.json',
      'README.md',
      'LICENSE',
      'binding.gyp',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/low-level.js',
      'dist/low-level.d.ts',
      'dist/watcher.js',
      'dist/watcher.d.ts',
    ]) {
      expect({ required, shipped: files.has(required) }).toEqual({ required, shipped: true });
    }
    const nativeSources = fs.readdirSync(path.join(root, 'native')).filter((f) => /\.(cc|h)$/.test(f));
    expect(nativeSources.filter((f) => !files.has(`native/${f}`))).toEqual([]);
    expect([...files].filter((f) => f.startsWith(`prebuilds/${platformDir}/`) && f.endsWith('.node'))).not.toEqual([]);
    const unwanted = [...files].filter(
      (f) =>
        f.endsWith('.map') ||
        /\.test\.[jt]s$/.test(f) ||
        (f.endsWith('.ts') && !f.endsWith('.d.ts')) ||
        /^(test|lib|build|node_modules|scripts|bench|examples|\.ci|dist\/test|dist\/lib)\//.test(f),
    );
    expect(unwanted).toEqual([]);
  });

  test('the installed package has no build/ (nothing was compiled) and its declared entry points exist', () => {
    expect(fs.existsSync(path.join(installed, 'build'))).toBe(false);
    expect(prebuiltAddons(path.join(installed, 'prebuilds', platformDir))).not.toEqual([]);
    const pkg = JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8'));
    expect(pkg.exports['./package.json']).toBe('./package.json');
    for (const target of [pkg.main, pkg.types, pkg.exports['.'].default, pkg.exports['.'].types, pkg.exports['./low-level'].default, pkg.exports['./low-level'].types, pkg.exports['./watcher'].default, pkg.exports['./watcher'].types]) {
      expect({ target, exists: fs.existsSync(path.join(installed, target)) }).toEqual({ target, exists: true });
    }
  });

  test('a child process in the scratch project loads the prebuild and receives a CREATE on a private tmpfs', async () => {
    const script = path.join(app, 'use-fanotify.js');
    fs.writeFileSync(script, CHILD_SOURCE);
    const result = await runChild(process.execPath, [script, scratch!.dir], 20_000, { cwd: app, env: childEnv() });
    if (result.code !== 0) {
      throw new Error(`child ended with ${result.signal ?? result.code}\n${tail(result.stderr)}\n${tail(result.stdout)}`);
    }
    const report = JSON.parse(result.stdout.trim().split('\n').pop()!) as ChildReport;

    expect(report.resolved).toBe(path.join(installed, 'dist', 'index.js'));
    expect(report.packageJson).toBe(path.join(installed, 'package.json'));
    expect(report.exportTypes).toEqual({
      Fanotify: 'function',
      FanotifyEvent: 'function',
      MaskFlags: 'object',
      FanotifyFlags: 'object',
      FanotifyError: 'function',
      lowLevel: 'object',
      capabilities: 'function',
    });
    expect(report.sameLowLevel).toBe(true);
    expect(report.watcherFunctions).toEqual(['subscribe:function', 'unsubscribe:function', 'writeSnapshot:function', 'getEventsSince:function']);
    expect(report.createMatchesKernel).toBe(true);
    expect(report.deepImport).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED');
    // node-gyp-build picks the shipped prebuild: there is no build/ to prefer.
    expect(path.relative(installed, report.addon)).toMatch(new RegExp(`^prebuilds/${platformDir}/[^/]+\\.node$`));
    expect(report.kernel).toBe(os.release());
    expect(report.error.isFanotifyError).toBe(true);
    expect(report.error.isError).toBe(true);
    expect(report.error.name).toBe('FanotifyError');
    expect(report.error.kind).toBe('InvalidPath');
    expect(report.events).toContainEqual({ types: ['CREATE'], path: report.file, pid: report.pid });
  });
});
