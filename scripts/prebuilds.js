#!/usr/bin/env node
// `npm run prebuilds [-- TARGET...]`: builds the addon for linux-x64 and
// linux-arm64, each for glibc and musl, with one compiler (zig, from the npm
// registry; see scripts/tools.js), into
//   prebuilds/linux-<arch>/node.napi.<libc>.node
// where node-gyp-build picks it (it tells musl from glibc by /etc/alpine-release,
// or by the LIBC environment variable).
//
// glibc targets link against glibc 2.28's symbol versions (Node's own floor);
// LLVM's libc++ and the unwinder are linked in statically and hidden, so the
// only NEEDED libraries are libc's. Each target builds in its own copy of
// binding.gyp + native/ under .cache/prebuild/, so ./build stays the
// developer's own host build.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { root, zig } = require('./tools');

const TARGETS = {
  'linux-x64-glibc': { arch: 'x64', libc: 'glibc', zigTarget: 'x86_64-linux-gnu.2.28' },
  'linux-x64-musl': { arch: 'x64', libc: 'musl', zigTarget: 'x86_64-linux-musl' },
  'linux-arm64-glibc': { arch: 'arm64', libc: 'glibc', zigTarget: 'aarch64-linux-gnu.2.28' },
  'linux-arm64-musl': { arch: 'arm64', libc: 'musl', zigTarget: 'aarch64-linux-musl' },
};

/** Only the two Node-API entry points leave the addon; everything else (libc++, libunwind, node-addon-api) stays inside. */
const EXPORTS_MAP = `{
  global: napi_register_module_v1; node_api_module_get_api_version_v1;
  local: *;
};
`;

function prebuildPath(name) {
  const t = TARGETS[name];
  return path.join(root, 'prebuilds', `linux-${t.arch}`, `node.napi.${t.libc}.node`);
}

function copyTree(from, to) {
  fs.mkdirSync(to, { recursive: true });
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const src = path.join(from, entry.name);
    const dst = path.join(to, entry.name);
    if (entry.isDirectory()) copyTree(src, dst);
    else fs.copyFileSync(src, dst);
  }
}

function build(name, zigPath, jobs) {
  const t = TARGETS[name];
  const work = path.join(root, '.cache', 'prebuild', name);
  fs.rmSync(work, { recursive: true, force: true });
  copyTree(path.join(root, 'native'), path.join(work, 'native'));
  fs.copyFileSync(path.join(root, 'binding.gyp'), path.join(work, 'binding.gyp'));
  const bin = path.join(work, 'bin');
  fs.mkdirSync(bin);
  // gyp's Makefiles take CC/CXX/LINK as commands: small wrappers pin the target.
  for (const [tool, mode] of [['cc', 'cc'], ['cxx', 'c++']]) {
    fs.writeFileSync(path.join(bin, tool), `#!/bin/sh\nexec '${zigPath}' ${mode} -target ${t.zigTarget} -mcpu=baseline "$@"\n`, { mode: 0o755 });
  }
  fs.writeFileSync(path.join(work, 'exports.map'), EXPORTS_MAP);
  const env = {
    ...process.env,
    CC: path.join(bin, 'cc'),
    CXX: path.join(bin, 'cxx'),
    LINK: path.join(bin, 'cxx'),
    // -s strips (no host `strip` understands arm64); the version script hides all but the Node-API entry points.
    LDFLAGS: `-Wno-unused-command-line-argument -s -Wl,--version-script=${path.join(work, 'exports.map')}`,
    // zig ignores these gyp flags with a warning per file; keep the log readable.
    CXXFLAGS: '-Wno-unused-command-line-argument',
    CFLAGS: '-Wno-unused-command-line-argument',
  };
  // Node-API headers do not depend on the architecture: the running Node's serve every target.
  const nodedir = process.env.npm_config_nodedir || path.resolve(path.dirname(process.execPath), '..');
  const nodeGyp = path.join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  const started = Date.now();
  execFileSync(process.execPath, [nodeGyp, 'rebuild', `--arch=${t.arch}`, `--nodedir=${nodedir}`, `--jobs=${jobs}`, '--loglevel=warn'], {
    cwd: work,
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
    timeout: 1_800_000,
  });
  const out = prebuildPath(name);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.copyFileSync(path.join(work, 'build', 'Release', 'fanotify.node'), out);
  fs.rmSync(work, { recursive: true, force: true });
  console.log(`prebuilds: ${path.relative(root, out)} (${name}, zig -target ${t.zigTarget}) ${fs.statSync(out).size} bytes in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

function main() {
  const args = process.argv.slice(2);
  const names = args.length ? args : Object.keys(TARGETS);
  const unknown = names.filter((n) => !TARGETS[n]);
  if (unknown.length) {
    console.error(`prebuilds: unknown target ${unknown.join(', ')}; known: ${Object.keys(TARGETS).join(', ')}`);
    process.exit(2);
  }
  const zigPath = zig();
  if (!args.length) fs.rmSync(path.join(root, 'prebuilds'), { recursive: true, force: true });
  const jobs = process.env.JOBS || require('node:os').availableParallelism();
  for (const name of names) build(name, zigPath, jobs);
}

if (require.main === module) main();

module.exports = { TARGETS, prebuildPath };
