import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
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
