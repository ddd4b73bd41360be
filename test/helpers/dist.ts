import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.resolve(__dirname, '../..');

function newest(dir: string): number {
  let latest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(p) : fs.statSync(p).mtimeMs);
  }
  return latest;
}

/** Builds dist/ when it is missing or older than lib/: child processes and workers load the compiled library. */
export function ensureDist(): void {
  const index = path.join(root, 'dist', 'index.js');
  if (fs.existsSync(index) && fs.statSync(index).mtimeMs >= newest(path.join(root, 'lib'))) return;
  try {
    // typescript's package exports hide bin/tsc from require.resolve: use the file.
    execFileSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(root, 'tsconfig.build.json')], {
      cwd: root,
      stdio: 'pipe',
      timeout: 120000,
    });
  } catch (err) {
    // tsc still emits when another file has a type error; only a missing build is fatal.
    if (!fs.existsSync(index)) throw err;
  }
}

/**
 * dist/ as another user loads it. A child running as `nobody` cannot enter
 * a checkout under a directory closed to other users (a clone in /root, a
 * `mktemp -d` folder), so it loads a world-readable copy of what require()
 * needs at run time: dist/, package.json, node-gyp-build and the addon
 * (build/Release and prebuilds/, so node-gyp-build picks as it does here).
 * The directory and its path exist from the call on (child programs can
 * name it); `stage()` copies, after dist/ is built (with the runtime
 * dependencies: node-gyp-build, picomatch, is-glob); the copy is removed in
 * `remove()` or when the process exits.
 */
export interface DistForOthers {
  /** The copy's dist/, for require() in a child. */
  dist: string;
  stage(): void;
  remove(): void;
}

export function distForOthers(): DistForOthers {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanotify-dist-'));
  const remove = (): void => fs.rmSync(dir, { recursive: true, force: true });
  process.once('exit', remove);
  return {
    dist: path.join(dir, 'dist'),
    stage(): void {
      for (const entry of fs.readdirSync(dir)) fs.rmSync(path.join(dir, entry), { recursive: true, force: true });
      const copy = (from: string, to = from): void => {
        if (fs.existsSync(path.join(root, from))) fs.cpSync(path.join(root, from), path.join(dir, to), { recursive: true });
      };
      copy('dist');
      copy('package.json');
      // The runtime dependencies (and theirs) that require() finds from dist/.
      const packages = new Set<string>();
      const addDependencies = (manifest: string): void => {
        const deps = (JSON.parse(fs.readFileSync(path.join(root, manifest), 'utf8')) as { dependencies?: Record<string, string> }).dependencies ?? {};
        for (const name of Object.keys(deps)) {
          const dir = path.join('node_modules', name);
          if (packages.has(dir) || !fs.existsSync(path.join(root, dir, 'package.json'))) continue;
          packages.add(dir);
          addDependencies(path.join(dir, 'package.json'));
        }
      };
      addDependencies('package.json');
      for (const dir of packages) copy(dir);
      copy(path.join('build', 'Release', 'fanotify.node'));
      copy('prebuilds');
      execFileSync('chmod', ['-R', 'a+rX', dir]);
    },
    remove,
  };
}

let shared: DistForOthers | undefined;

/**
 * dist/ as a child running as another user (nobody) can load it, also from a
 * checkout other users cannot enter: a world-readable copy of the built
 * library and its addon, staged once per test file.
 */
export function readableDist(): string {
  if (!shared) {
    ensureDist();
    shared = distForOthers();
    shared.stage();
  }
  return shared.dist;
}
