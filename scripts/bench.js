#!/usr/bin/env node
// Runs the benchmarks (bench/run.js). As root it first enters a private mount
// namespace, so the tmpfs the benchmarks mount (and every fanotify mark on
// it) is invisible to the rest of the machine and vanishes with the run even
// if the run crashes. The benchmarks refuse to run outside that namespace.
//
//   npm run bench [-- --quick] [-- --reps N --only throughput,flood,permission,memory,recursive,cache --modes sync,async]
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const runner = path.join(__dirname, '..', 'bench', 'run.js');
const args = process.argv.slice(2);
const env = { ...process.env };

if (!process.getuid || process.getuid() !== 0) {
  console.error('bench: needs root (fd-mode and permission fanotify groups need CAP_SYS_ADMIN); try: sudo npm run bench');
  process.exit(1);
}

let result;
if (env.FANOTIFY_BENCH_NAMESPACE) {
  result = spawnSync(process.execPath, [runner, ...args], { stdio: 'inherit', env });
} else {
  env.FANOTIFY_BENCH_NAMESPACE = '1';
  result = spawnSync('unshare', ['--mount', '--propagation', 'private', '--', process.execPath, runner, ...args], { stdio: 'inherit', env });
  if (result.error) {
    console.error(`bench: unshare failed (${result.error.message}); not running without a private mount namespace`);
    process.exit(1);
  }
}
process.exit(result.status ?? 1);
