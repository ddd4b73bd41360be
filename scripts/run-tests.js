#!/usr/bin/env node
// Runs jest in band. As root it first enters a private mount namespace, so
// every tmpfs the tests mount is invisible to the rest of the machine and
// vanishes with the run even if a test crashes before unmounting.
'use strict';
const { spawnSync } = require('node:child_process');

const jest = require.resolve('jest/bin/jest');
const args = ['--runInBand', ...process.argv.slice(2)];
const env = { ...process.env };

function run(cmd, argv) {
  return spawnSync(cmd, argv, { stdio: 'inherit', env });
}

let result;
if (process.getuid && process.getuid() === 0 && !env.FANOTIFY_TEST_NAMESPACE) {
  env.FANOTIFY_TEST_NAMESPACE = '1';
  result = run('unshare', ['--mount', '--propagation', 'private', '--', process.execPath, jest, ...args]);
  if (result.error) {
    console.error(`run-tests: unshare failed (${result.error.message}); tests will unmount their own tmpfs`);
    result = run(process.execPath, [jest, ...args]);
  }
} else {
  result = run(process.execPath, [jest, ...args]);
}
process.exit(result.status ?? 1);
