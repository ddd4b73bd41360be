#!/usr/bin/env node
// One watcher of the recursive-watch benchmark (bench/recursive.js starts one
// of these per watcher and repetition, each in its own process).
//
//   node --expose-gc bench/recursive-child.js KIND ROOT DEEP_DIR CREATIONS
//
// KIND: lib      new AsyncFanotify() + addWatch(ROOT, CREATE, { recursive: true })
//       lib-fs   new AsyncFanotify() + addWatch(ROOT, CREATE, { mark: 'filesystem' })
//       parcel   @parcel/watcher subscribe(ROOT, cb)
//       chokidar chokidar watch(ROOT, { ignoreInitial: true }), until 'ready'
//       fswatch  fs.watch(ROOT, { recursive: true })
//
// Prints JSON lines:
//   {"type":"ready", readyMs, rssBefore, rssAfter, hwmBefore, hwmAfter, ...}
//     readyMs: from just before the call to when the watcher says it is
//     ready (see bench/README.md); RSS before: after the module is loaded and
//     after gc(); RSS after: once ready, after gc().
//   {"type":"latency", ms: [...], delivered, wrongPath, missed, ...}
//     CREATIONS files created one at a time in DEEP_DIR (open O_CREAT|O_EXCL
//     + close, by this process), each followed by waiting (at most 5 s) for
//     the watcher's event with its full path.
//   {"type":"unsupported", message}  (KIND lib: recursive: true throws NotSupported)
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const TMPFS_MAGIC = 0x01021994;
const [kind, root, deep, creationsArg] = process.argv.slice(2);
const creations = Number(creationsArg);
const EVENT_TIMEOUT_MS = 5000;
const GAP_MS = 20; // between creations, so that no two are in flight at once

if (fs.statfsSync(root).type !== TMPFS_MAGIC) {
  console.error(`refusing to watch ${root}: not a tmpfs`);
  process.exit(3);
}
if (typeof global.gc !== 'function') {
  console.error('run with --expose-gc');
  process.exit(4);
}
// Die on our own if the orchestrator loses track of us.
setTimeout(() => process.exit(9), Number(process.env.BENCH_CHILD_TIMEOUT || 120) * 1000).unref();

const emit = (obj) => fs.writeSync(1, JSON.stringify(obj) + '\n');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

function status() {
  const s = fs.readFileSync('/proc/self/status', 'utf8');
  const kb = (k) => Number((new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s) || [])[1]) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM'), threads: Number((/^Threads:\s+(\d+)/m.exec(s) || [])[1]) };
}

/** Kernel objects this process holds: inotify watches and fanotify marks (from /proc/self/fdinfo). */
function kernelWatches() {
  let inotify = 0;
  let fanotify = 0;
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    let target;
    try {
      target = fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue;
    }
    if (target !== 'anon_inode:inotify' && target !== 'anon_inode:[fanotify]') continue;
    let info;
    try {
      info = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'latin1');
    } catch {
      continue;
    }
    for (let i = info.indexOf('\n'); i >= 0; i = info.indexOf('\n', i + 1)) {
      if (info.startsWith('inotify wd:', i + 1)) inotify++;
      else if (info.startsWith('fanotify ino:', i + 1) || info.startsWith('fanotify mnt_id:', i + 1) || info.startsWith('fanotify sdev:', i + 1) || info.startsWith('fanotify mntns:', i + 1)) fanotify++;
    }
  }
  return { inotifyWatches: inotify, fanotifyMarks: fanotify };
}

// ------------------------------------------------------------- watchers
// Each: load() before the baseline (module code is not counted), then
// start(onPath) -> Promise<close()> that resolves once the watcher is ready.

async function loadWatcher() {
  switch (kind) {
    case 'lib':
    case 'lib-fs': {
      const lib = require(path.join(process.env.BENCH_LIB_ROOT || path.join(__dirname, '..'), 'dist'));
      const watchOptions = kind === 'lib' ? { recursive: true } : { mark: 'filesystem' };
      return async (onPath, split) => {
        const c0 = nowMs();
        const afan = new lib.AsyncFanotify();
        split.constructorMs = nowMs() - c0;
        afan.on('event', (ev) => {
          if (ev.isCreate()) onPath(ev.path, ev.name);
        });
        afan.on('error', (err) => console.error(`lib: ${err.message}`));
        try {
          const a0 = nowMs();
          await afan.addWatch(root, lib.MaskFlags.CREATE, watchOptions);
          split.addWatchMs = nowMs() - a0;
        } catch (err) {
          await afan.close();
          throw err;
        }
        return () => afan.close();
      };
    }
    case 'parcel': {
      const watcher = require('@parcel/watcher');
      return async (onPath) => {
        const sub = await watcher.subscribe(root, (err, events) => {
          if (err) console.error(`parcel: ${err.message}`);
          else for (const e of events) if (e.type === 'create') onPath(e.path);
        });
        return () => sub.unsubscribe();
      };
    }
    case 'chokidar': {
      const chokidar = await import('chokidar');
      return (onPath) =>
        new Promise((resolve, reject) => {
          const w = chokidar.watch(root, { ignoreInitial: true });
          w.on('add', (p) => onPath(p));
          w.on('error', (err) => console.error(`chokidar: ${err.message}`));
          w.once('ready', () => resolve(() => w.close()));
          w.once('error', reject);
        });
    }
    case 'fswatch': {
      // Node 20 on Linux: recursive is done in JavaScript (an fs.watch, i.e.
      // an inotify watch, per file and directory, placed synchronously by a
      // readdirSync/statSync walk inside this call).
      return async (onPath) => {
        const w = fs.watch(root, { recursive: true }, (type, filename) => {
          if (filename) onPath(path.join(root, filename.toString()));
        });
        w.on('error', (err) => console.error(`fs.watch: ${err.message}`));
        return () => w.close();
      };
    }
    default:
      throw new Error(`unknown kind ${kind}`);
  }
}

async function main() {
  const startWatcher = await loadWatcher();
  let waiting = null; // { expected, resolve }
  const stray = { count: 0, sample: null };
  const onPath = (p, name) => {
    if (waiting && p === waiting.expected) {
      waiting.resolve({ at: nowMs(), path: p });
    } else if (waiting && (p ? path.basename(p) : name) === path.basename(waiting.expected)) {
      waiting.resolve({ at: nowMs(), path: p, wrong: true });
    } else {
      stray.count++;
      stray.sample ??= p;
    }
  };

  // Baseline: module loaded, heap settled.
  global.gc();
  await sleep(200);
  global.gc();
  const before = status();
  const memBefore = process.memoryUsage();

  const split = {}; // the library's time split: constructor, addWatch
  const t0 = nowMs();
  let close;
  try {
    close = await startWatcher(onPath, split);
  } catch (err) {
    if (kind === 'lib' && err && err.kind === 'NotSupported') {
      emit({ type: 'unsupported', message: err.message });
      process.exit(0);
    }
    throw err;
  }
  const readyMs = nowMs() - t0;
  global.gc();
  const after = status();
  const memAfter = process.memoryUsage();
  emit({
    type: 'ready',
    kind,
    readyMs,
    rssBefore: before.rss,
    rssAfter: after.rss,
    hwmBefore: before.hwm,
    hwmAfter: after.hwm,
    heapUsedBefore: memBefore.heapUsed,
    heapUsedAfter: memAfter.heapUsed,
    externalBefore: memBefore.external,
    externalAfter: memAfter.external,
    threads: after.threads,
    ...split,
    ...kernelWatches(),
  });

  // Let anything the watcher still does after 'ready' settle before timing events.
  await sleep(300);
  stray.count = 0;
  stray.sample = null;
  const ms = [];
  const wrong = [];
  let missed = 0;
  for (let i = 0; i < creations; i++) {
    const expected = path.join(deep, `new-${kind}-${process.pid}-${i}`);
    const arrived = new Promise((resolve) => {
      waiting = { expected, resolve };
    });
    const timeout = sleep(EVENT_TIMEOUT_MS).then(() => null);
    const tc = nowMs();
    fs.closeSync(fs.openSync(expected, 'wx'));
    const got = await Promise.race([arrived, timeout]);
    waiting = null;
    if (got === null) missed++;
    else if (got.wrong) wrong.push(got.path);
    else ms.push(got.at - tc);
    await sleep(GAP_MS);
  }
  const line = { type: 'latency', ms, delivered: ms.length, wrongPath: wrong.length, wrongSample: wrong[0] ?? null, missed, creations, stray: stray.count, straySample: stray.sample };
  // Library, for information: a second watcher in this (now warm) process,
  // to separate one-time start-up costs from the cost of the watch itself.
  if (kind === 'lib' && process.getuid() === 0) {
    const w0 = nowMs();
    const closeWarm = await startWatcher(() => {}, {});
    line.warmReadyMs = nowMs() - w0;
    await closeWarm();
  }
  emit(line);
  await close();
  process.exit(0);
}

main().catch((err) => {
  console.error(`recursive-child ${kind}: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
});
