#!/usr/bin/env node
// The library's side of the notification benchmarks: the same protocol as
// bench/c/reader.c, so the orchestrator drives both alike.
//
//   node bench/lib-reader.js DIR PHASES IDLE_MS MODE [--memory]
//
// MODE: 'sync'  -> Fanotify + readEvents() in a loop (the batch API);
//       'async' -> AsyncFanotify + afan.on('event', ...).
// Prints {"type":"ready",...} after an idle window that measures the
// process's idle CPU, then one {"type":"phase",...} line (cumulative counts
// and CPU of the whole process, all threads) per close of a STOP.* file.
// With --memory each phase line also carries RSS, heap and the fd count,
// before and after a forced GC (run node with --expose-gc).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const TMPFS_MAGIC = 0x01021994;
const [dir, phasesArg, idleArg, mode = 'sync', ...flags] = process.argv.slice(2);
const memory = flags.includes('--memory');
let phases = Number(phasesArg);
const idleMs = Number(idleArg);
// The orchestrator points BENCH_LIB_ROOT at a snapshot of dist/ + the addon.
const lib = require(path.join(process.env.BENCH_LIB_ROOT || path.join(__dirname, '..'), 'dist'));
const { MaskFlags } = lib;

// Marks go only on a tmpfs the bench mounted itself.
if (fs.statfsSync(dir).type !== TMPFS_MAGIC) {
  console.error(`refusing to mark ${dir}: not a tmpfs`);
  process.exit(3);
}
// Die on our own if the orchestrator loses track of us.
const limit = Number(process.env.BENCH_CHILD_TIMEOUT || 120) * 1000;
setTimeout(() => process.exit(9), limit).unref();

const OPEN = MaskFlags.OPEN;
const CLOSE_NOWRITE = MaskFlags.CLOSE_NOWRITE;
const Q_OVERFLOW = MaskFlags.Q_OVERFLOW;
const counts = { records: 0, opens: 0, closes: 0, overflows: 0, pathless: 0 };
let cpu0, t0, switches0;

function switches() {
  const r = process.resourceUsage(); // getrusage(RUSAGE_SELF): all threads
  return r.voluntaryContextSwitches + r.involuntaryContextSwitches;
}

function cpuSince(start) {
  const d = process.cpuUsage(start);
  return { userUs: d.user, sysUs: d.system };
}

function fdCount() {
  return fs.readdirSync('/proc/self/fd').length - 1; // minus readdir's own fd
}

function memorySample() {
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers };
}

/** init flags of this process's fanotify groups, from /proc/self/fdinfo (to pick the matching C reference). */
function fanotifyGroups() {
  const groups = [];
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    let target;
    try {
      target = fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue;
    }
    if (target !== 'anon_inode:[fanotify]') continue;
    const m = /fanotify flags:([0-9a-f]+) event-flags:([0-9a-f]+)/.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
    if (m) groups.push({ flags: parseInt(m[1], 16), eventFlags: parseInt(m[2], 16) });
  }
  return groups;
}

function emit(obj) {
  fs.writeSync(1, JSON.stringify(obj) + '\n');
}

/** Counts one event; true when it closes a STOP.* file (end of a phase). */
function count(ev) {
  counts.records++;
  const mask = ev.mask;
  if (mask & Q_OVERFLOW) {
    counts.overflows++;
    return false;
  }
  if (mask & OPEN) counts.opens++;
  if (mask & CLOSE_NOWRITE) counts.closes++;
  const p = ev.path;
  if (p === null) {
    counts.pathless++;
    return false;
  }
  return (mask & CLOSE_NOWRITE) !== 0 && p.charCodeAt(p.lastIndexOf('/') + 1) === 83 /* S */ && p.includes('/STOP.');
}

function phaseDone() {
  const line = { type: 'phase', ...counts, ...cpuSince(cpu0), wallNs: Number(process.hrtime.bigint() - t0), switches: switches() - switches0 };
  if (memory) {
    line.fds = fdCount();
    line.memory = memorySample();
    if (typeof global.gc === 'function') {
      global.gc();
      line.memoryAfterGc = memorySample();
    }
  }
  emit(line);
  phases--;
}

function ready(idleCpu) {
  const line = { type: 'ready', idleMs, idleUs: idleCpu.userUs + idleCpu.sysUs, mode, groups: fanotifyGroups() };
  if (memory) {
    line.fds = fdCount();
    line.memory = memorySample();
  }
  emit(line);
  cpu0 = process.cpuUsage();
  switches0 = switches();
  t0 = process.hrtime.bigint();
}

function runSync() {
  const fan = new lib.Fanotify({ permissionTimeout: 5000 });
  fan.addWatch(dir, OPEN | CLOSE_NOWRITE);
  // Idle baseline: let start-up work settle, then measure IDLE_MS of idling.
  const cell = new Int32Array(new SharedArrayBuffer(4));
  Atomics.wait(cell, 0, 0, 300);
  const idle0 = process.cpuUsage();
  Atomics.wait(cell, 0, 0, idleMs);
  ready(cpuSince(idle0));
  while (phases > 0) {
    const events = fan.readEvents({ timeout: 5000 });
    if (events.length === 0) {
      console.error('lib-reader: no event for 5 s');
      process.exit(5);
    }
    for (let i = 0; i < events.length; i++) if (count(events[i])) phaseDone();
  }
  fan.close();
}

async function runAsync() {
  if (typeof lib.AsyncFanotify !== 'function') {
    console.error('lib-reader: this build has no AsyncFanotify');
    process.exit(6);
  }
  const afan = new lib.AsyncFanotify({ permissionTimeout: 5000 });
  await afan.addWatch(dir, OPEN | CLOSE_NOWRITE);
  const finished = new Promise((resolve, reject) => {
    afan.on('error', reject);
    afan.on('overflow', () => {
      // 'overflow' may also arrive as an 'event'; count it here only if not.
      counts.overflowSignals = (counts.overflowSignals || 0) + 1;
    });
    afan.on('event', (ev) => {
      if (count(ev)) {
        phaseDone();
        if (phases === 0) resolve();
      }
    });
  });
  await new Promise((r) => setTimeout(r, 300));
  const idle0 = process.cpuUsage();
  await new Promise((r) => setTimeout(r, idleMs));
  ready(cpuSince(idle0));
  if (phases > 0) await finished;
  await afan.close();
}

if (mode === 'sync') runSync();
else if (mode === 'async') runAsync().catch((err) => {
  console.error(err);
  process.exit(7);
});
else {
  console.error(`unknown mode ${mode}`);
  process.exit(1);
}
