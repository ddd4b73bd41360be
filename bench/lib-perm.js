#!/usr/bin/env node
// The library's allow-all permission handler for the round-trip benchmark.
//
//   node bench/lib-perm.js DIR MODE
//
// MODE 'sync': Fanotify + readEvents() + ev.allow(); 'async': AsyncFanotify
// + afan.on('permission', ev => ev.allow()); 'async-cache': the same with
// ev.allow({ cache: true }) (the decision cache benchmark, bench/cache.js),
// which also reports the cache's size when it stops. permissionTimeout is 5000 ms,
// so nothing waits on this process longer than that even if it stalls; the
// orchestrator ends it with SIGTERM (the kernel then allows what is pending).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const TMPFS_MAGIC = 0x01021994;
const [dir, mode = 'sync'] = process.argv.slice(2);
// The orchestrator points BENCH_LIB_ROOT at a snapshot of dist/ + the addon.
const lib = require(path.join(process.env.BENCH_LIB_ROOT || path.join(__dirname, '..'), 'dist'));
const { MaskFlags } = lib;

if (fs.statfsSync(dir).type !== TMPFS_MAGIC) {
  console.error(`refusing to mark ${dir}: not a tmpfs`);
  process.exit(3);
}
const limitMs = Number(process.env.BENCH_CHILD_TIMEOUT || 60) * 1000;
const deadline = Date.now() + limitMs;
setTimeout(() => process.exit(9), limitMs).unref();

let answered = 0;

function runSync() {
  const fan = new lib.Fanotify({ permissionTimeout: 5000 });
  fan.addWatch(dir, MaskFlags.OPEN_PERM);
  fs.writeSync(1, JSON.stringify({ type: 'ready', mode }) + '\n');
  while (Date.now() < deadline) {
    const events = fan.readEvents({ timeout: 1000 });
    for (let i = 0; i < events.length; i++) events[i].allow();
    answered += events.length;
  }
  fan.close();
}

async function runAsync(cache) {
  // (Only here: a SIGTERM handler in sync mode would never run, and would
  // replace the default action that ends the process.)
  let afan;
  process.on('SIGTERM', () => {
    fs.writeSync(1, JSON.stringify({ type: 'done', answered, ...(cache ? { cacheSize: afan.cacheSize } : {}) }) + '\n');
    process.exit(0);
  });
  if (typeof lib.AsyncFanotify !== 'function') {
    console.error('lib-perm: this build has no AsyncFanotify');
    process.exit(6);
  }
  afan = new lib.AsyncFanotify({ permissionTimeout: 5000 });
  afan.on('error', (err) => console.error('lib-perm:', err.message));
  if (cache) {
    afan.on('permission', (ev) => {
      ev.allow({ cache: true });
      answered++;
    });
  } else {
    afan.on('permission', (ev) => {
      ev.allow();
      answered++;
    });
  }
  await afan.addWatch(dir, MaskFlags.OPEN_PERM);
  fs.writeSync(1, JSON.stringify({ type: 'ready', mode }) + '\n');
}

if (mode === 'sync') runSync();
else if (mode === 'async' || mode === 'async-cache') runAsync(mode === 'async-cache').catch((err) => {
  console.error(err);
  process.exit(7);
});
else {
  console.error(`unknown mode ${mode}`);
  process.exit(1);
}
