'use strict';
// Benchmark orchestrator (started by scripts/bench.js inside a private mount
// namespace). Every measurement pits the library against a C reference in
// the same run, on the same tmpfs, driven by the same C generator, and is
// repeated with the variants interleaved; tables show medians and ratios.
//
// Safety: every mark is on a tmpfs this script mounts itself (the C programs
// and the Node readers refuse anything that is not a tmpfs); every child is
// time-limited twice (a kill timer here, and its own alarm/timer) and reaped;
// children are killed by pid only, and only those started here.

const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const recursive = require('./recursive');
const { runPermission, reportPermission } = require('./permission');
const { runCache, reportCache } = require('./cache');

const ROOT = path.join(__dirname, '..');
const OUT = path.join(__dirname, 'out');
const C_DIR = path.join(__dirname, 'c');
const TMPFS_MAGIC = 0x01021994;

// ---------------------------------------------------------------- options

function parseArgs(argv) {
  const o = { quick: false, reps: undefined, only: null, modes: null, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') o.quick = true;
    else if (a === '--reps') o.reps = Number(argv[++i]);
    else if (a === '--only') o.only = argv[++i].split(',');
    else if (a === '--modes') o.modes = argv[++i].split(',');
    else if (a === '--help' || a === '-h') {
      console.log(`usage: npm run bench -- [--quick] [--reps N] [--only throughput,flood,permission,memory,recursive,cache] [--modes sync,async]

  --quick   fewer repetitions and smaller workloads (about a minute)
  --reps N  repetitions of every measurement (default 5, quick 3; recursive: 3, quick 1)
  --only    run only these benchmarks
  --modes   library front ends to measure (default: async if built, and sync)`);
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const Q = opts.quick;
const CONFIG = {
  reps: opts.reps ?? (Q ? 3 : 5),
  files: 20000, // > the kernel queue (16384): no open is merged with an older one (see RESULTS.md)
  throughputOps: Q ? 60_000 : 150_000, // open+close pairs per run
  throughputRate: 50_000, // pairs per second (paced: a rate both readers sustain)
  floodOps: 200_000,
  floodReps: 3,
  permOpens: Q ? 10_000 : 20_000,
  permWarmup: 6_000, // past V8's optimizing compiles: with 2000, ms-long stalls landed in the timed opens
  memoryEvents: 1_000_000,
  memoryPhases: 4,
  memoryRate: 50_000,
  cacheFiles: 1_000, // the decision cache: 20 passes over 1,000 files
  cachePasses: 20,
  idleMs: 500,
};

// ---------------------------------------------------------------- children

const live = new Map(); // pid -> ChildProcess

function killAll() {
  for (const [pid, child] of live) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    live.delete(pid);
    void child;
  }
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}

/**
 * Starts a time-limited child. `lines` yields its stdout JSON lines; `done`
 * resolves with its exit; it is SIGKILLed (by pid) if it outlives timeoutMs.
 */
function start(cmd, args, { timeoutMs = 60_000, env = {} } = {}) {
  const child = spawn(cmd, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, BENCH_CHILD_TIMEOUT: String(Math.ceil(timeoutMs / 1000) + 5), ...env },
  });
  if (child.pid === undefined) throw new Error(`could not start ${cmd}`);
  live.set(child.pid, child);
  const queue = [];
  const waiters = [];
  let stderr = '';
  let buffered = '';
  let exited = null;
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk) => {
    buffered += chunk;
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (!line) continue;
      let value;
      try {
        value = JSON.parse(line);
      } catch {
        value = { type: 'text', text: line };
      }
      if (waiters.length) waiters.shift().resolve(value);
      else queue.push(value);
    }
  });
  child.stderr.on('data', (d) => (stderr += d));
  const timer = setTimeout(() => {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }, timeoutMs);
  const done = new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(child.pid);
      exited = { code, signal, stderr };
      for (const w of waiters.splice(0)) w.reject(new Error(`${path.basename(cmd)} exited (${code ?? signal}) before writing a line: ${stderr.trim()}`));
      resolve(exited);
    });
  });
  /** The next JSON line, or a rejection after `ms`. */
  function next(ms = 30_000) {
    if (queue.length) return Promise.resolve(queue.shift());
    if (exited) return Promise.reject(new Error(`${path.basename(cmd)} exited (${exited.code ?? exited.signal}): ${exited.stderr.trim()}`));
    return new Promise((resolve, reject) => {
      const w = { resolve, reject };
      waiters.push(w);
      setTimeout(() => {
        const i = waiters.indexOf(w);
        if (i >= 0) {
          waiters.splice(i, 1);
          reject(new Error(`${path.basename(cmd)} ${args[0] ?? ''}: no output within ${ms} ms; stderr: ${stderr.trim()}`));
        }
      }, ms).unref();
    });
  }
  function stop(sig = 'SIGTERM') {
    if (!exited && live.has(child.pid)) {
      try {
        process.kill(child.pid, sig);
      } catch {
        /* gone */
      }
    }
    return done;
  }
  return { pid: child.pid, next, done, stop, stderr: () => stderr };
}

async function runOnce(cmd, args, timeoutMs) {
  const p = start(cmd, args, { timeoutMs });
  const line = await p.next(timeoutMs);
  const exit = await p.done;
  if (exit.code !== 0) throw new Error(`${path.basename(cmd)} ${args.join(' ')} failed (${exit.code ?? exit.signal}): ${exit.stderr.trim()}`);
  return line;
}

// ---------------------------------------------------------------- setup

function compileC() {
  fs.mkdirSync(OUT, { recursive: true });
  for (const name of ['generator', 'reader', 'perm_handler']) {
    const src = path.join(C_DIR, `${name}.c`);
    const bin = path.join(OUT, name);
    const newest = Math.max(fs.statSync(src).mtimeMs, fs.statSync(path.join(C_DIR, 'common.h')).mtimeMs);
    if (fs.existsSync(bin) && fs.statSync(bin).mtimeMs > newest) continue;
    execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-pthread', '-o', bin, src], { stdio: 'inherit' });
  }
}

function checkDist() {
  const index = path.join(ROOT, 'dist', 'index.js');
  if (!fs.existsSync(index)) throw new Error('dist/ is missing: run `npx tsc -p tsconfig.build.json` (and `npx node-gyp build`) first');
  const built = fs.statSync(index).mtimeMs;
  const stale = fs.readdirSync(path.join(ROOT, 'lib')).filter((f) => f.endsWith('.ts') && fs.statSync(path.join(ROOT, 'lib', f)).mtimeMs > built);
  if (stale.length) console.warn(`warning: dist/ is older than lib/${stale.join(', lib/')}: run \`npx tsc -p tsconfig.build.json\``);
}

/**
 * Copies dist/ and the built addon to bench/out/snapshot/, and every library
 * process loads that copy: a rebuild by someone else during the run cannot
 * mix two versions into one set of numbers. Returns the copy's root and a
 * hash that names this build in the results.
 */
function snapshotLibrary() {
  const snap = path.join(OUT, 'snapshot');
  fs.rmSync(snap, { recursive: true, force: true });
  fs.mkdirSync(snap, { recursive: true });
  fs.cpSync(path.join(ROOT, 'dist'), path.join(snap, 'dist'), { recursive: true });
  fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(snap, 'package.json'));
  const addon = path.join(ROOT, 'build', 'Release', 'fanotify.node');
  if (fs.existsSync(addon)) {
    fs.mkdirSync(path.join(snap, 'build', 'Release'), { recursive: true });
    fs.copyFileSync(addon, path.join(snap, 'build', 'Release', 'fanotify.node'));
  } else if (fs.existsSync(path.join(ROOT, 'prebuilds'))) {
    fs.cpSync(path.join(ROOT, 'prebuilds'), path.join(snap, 'prebuilds'), { recursive: true });
  }
  const hash = require('node:crypto').createHash('sha256');
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const f = path.join(dir, e.name);
      if (e.isDirectory()) walk(f);
      else if (!f.endsWith('.map')) hash.update(e.name).update(fs.readFileSync(f));
    }
  };
  walk(snap);
  return { root: snap, hash: hash.digest('hex').slice(0, 12) };
}

function isMountPoint(dir) {
  const real = fs.realpathSync(dir);
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => {
      const f = l.split(' ');
      return f[4] === real && l.includes(' - tmpfs ');
    });
}

function mountScratch() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanotify-bench-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=128m,mode=0755', 'fanotify-bench', dir]);
  if (fs.statfsSync(dir).type !== TMPFS_MAGIC || !isMountPoint(dir)) {
    throw new Error(`${dir} is not the tmpfs just mounted; refusing to go on`);
  }
  return dir;
}

function unmountScratch(dir) {
  try {
    execFileSync('umount', [dir]);
    fs.rmdirSync(dir);
  } catch (err) {
    console.warn(`could not unmount ${dir}: ${err.message} (it goes away with the mount namespace)`);
  }
}

function makeFiles(dir, n) {
  fs.mkdirSync(dir, { recursive: true });
  for (let i = 0; i < n; i++) fs.writeFileSync(path.join(dir, `f${String(i).padStart(4, '0')}`), '');
}

let stopSeq = 0;
function stopFile(dir) {
  const name = `STOP.${++stopSeq}`;
  fs.writeFileSync(path.join(dir, name), '');
  return name;
}

// ---------------------------------------------------------------- stats

const { median, minOf, maxOf, fmt, mib, table, verdict } = require('./util');

// ---------------------------------------------------------------- readers

const GEN = path.join(OUT, 'generator');
const READER = path.join(OUT, 'reader');
const PERM = path.join(OUT, 'perm_handler');
const LIB_READER = path.join(__dirname, 'lib-reader.js');
const LIB_PERM = path.join(__dirname, 'lib-perm.js');

const FAN_REPORT_FID = 0x200;
const FAN_REPORT_DIR_FID = 0x400;

/** The C reference that does what the library's group does: fd mode or FID mode. */
function referenceFor(groups) {
  if (!groups || groups.length === 0) return null;
  return groups.some((g) => g.flags & (FAN_REPORT_FID | FAN_REPORT_DIR_FID)) ? 'c-fid' : 'c-fd';
}

/** Asks the library which kind of group addWatch(dir, OPEN|CLOSE_NOWRITE) makes. */
async function probeLibrary(kind, dir) {
  const [cmd, args] = readerCommand(kind, dir, 0);
  args[args.length - 2] = '0'; // no idle window
  const line = await runOnce(cmd, args, 30_000);
  return line.groups;
}

function readerCommand(kind, dir, phases, extra = []) {
  if (kind.startsWith('c-')) return [READER, [dir, String(phases), String(CONFIG.idleMs), kind.slice(2)]];
  const mode = kind.replace(/^lib-/, '');
  const nodeArgs = extra.includes('--memory') ? ['--expose-gc'] : [];
  return [process.execPath, [...nodeArgs, LIB_READER, dir, String(phases), String(CONFIG.idleMs), mode, ...extra]];
}

/**
 * The reader's end-of-phase line. The generator's close of the STOP file
 * ends a phase, but when the kernel queue overflows (flood runs) that very
 * event can be one of those dropped: then the STOP file is opened and closed
 * again every 5 s until the reader answers. (Only a reader still silent
 * after 5 s sees the extra open and close.)
 */
async function phaseEnd(reader, dir, stop, timeoutMs = 60_000) {
  let exited = false;
  void reader.done.then(() => (exited = true));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await reader.next(Math.max(1, Math.min(5_000, deadline - Date.now())));
    } catch (err) {
      if (exited || Date.now() >= deadline) throw err;
      fs.closeSync(fs.openSync(path.join(dir, stop), 'r'));
    }
  }
}

/** One throughput run: reader `kind` against `ops` open+close pairs at `rate` (0: flat out). */
async function throughputRun(kind, dir, ops, rate) {
  const stop = stopFile(dir); // created before the mark: its creation is no event
  const [cmd, args] = readerCommand(kind, dir, 1);
  const reader = start(cmd, args, { timeoutMs: 90_000 });
  try {
    const ready = await reader.next(20_000);
    if (ready.type !== 'ready') throw new Error(`${kind}: unexpected ${JSON.stringify(ready)}`);
    const gen = await runOnce(GEN, ['ops', dir, String(CONFIG.files), String(ops), stop, String(rate)], 60_000);
    const phase = await phaseEnd(reader, dir, stop);
    const exit = await reader.done;
    if (phase.type !== 'phase') throw new Error(`${kind}: unexpected ${JSON.stringify(phase)}`);
    if (exit.code !== 0) throw new Error(`${kind} exited ${exit.code ?? exit.signal}: ${exit.stderr.trim()}`);
    const cpuUs = phase.userUs + phase.sysUs;
    const wallMs = phase.wallNs / 1e6;
    const idleUs = (ready.idleUs / ready.idleMs) * wallMs;
    const netUs = Math.max(0, cpuUs - idleUs);
    // Generated: an open and a close per pair, plus the generator's own open
    // of the directory (ONDIR) and the STOP file's open and close.
    const generated = 2 * ops + 3;
    const received = phase.opens + phase.closes;
    return {
      kind,
      ops,
      rate,
      generated,
      received,
      records: phase.records,
      overflows: phase.overflows,
      pathless: phase.pathless,
      lost: generated - received,
      cpuUs,
      userUs: phase.userUs,
      sysUs: phase.sysUs,
      idleUs,
      netUs,
      wallMs,
      nsPerEvent: (netUs * 1000) / generated,
      nsPerRecord: (netUs * 1000) / phase.records,
      switches: phase.switches,
      switchesPerKEvent: (1000 * phase.switches) / generated,
      groups: ready.groups,
      generator: gen,
    };
  } finally {
    await reader.stop('SIGKILL');
  }
}

async function throughput(dir, kinds, references, { ops, rate, label, reps = CONFIG.reps }) {
  const runs = [];
  for (let rep = 0; rep < reps; rep++) {
    for (const kind of kinds) {
      const r = await throughputRun(kind, dir, ops, rate);
      r.rep = rep;
      runs.push(r);
      process.stdout.write(
        `  ${label} rep ${rep + 1}/${reps} ${kind.padEnd(9)} ${fmt(r.nsPerEvent, 0).padStart(6)} ns/event  ` +
          `${fmt(r.nsPerRecord, 0).padStart(6)} ns/record  received ${r.received}/${r.generated}  overflows ${r.overflows}\n`,
      );
    }
  }
  const summary = {};
  for (const kind of kinds) {
    const rs = runs.filter((r) => r.kind === kind);
    summary[kind] = {
      nsPerEvent: median(rs.map((r) => r.nsPerEvent)),
      nsPerEventMin: minOf(rs.map((r) => r.nsPerEvent)),
      nsPerEventMax: maxOf(rs.map((r) => r.nsPerEvent)),
      nsPerRecord: median(rs.map((r) => r.nsPerRecord)),
      records: median(rs.map((r) => r.records)),
      switchesPerKEvent: median(rs.map((r) => r.switchesPerKEvent)),
      recordsPerSec: median(rs.map((r) => r.records / (r.wallMs / 1000))),
      received: median(rs.map((r) => r.received)),
      generated: rs[0].generated,
      lostMax: maxOf(rs.map((r) => r.lost)),
      overflowsTotal: rs.reduce((a, r) => a + r.overflows, 0),
      overflowRuns: rs.filter((r) => r.overflows > 0).length,
      runs: rs.length,
      generatorWallMs: median(rs.map((r) => r.generator.wallNs / 1e6)),
    };
  }
  for (const kind of kinds) {
    if (kind.startsWith('c-')) continue;
    const ref = references[kind] ?? referenceFor(runs.find((r) => r.kind === kind)?.groups) ?? 'c-fd';
    const s = summary[kind];
    s.reference = ref;
    s.ratioPerEvent = s.nsPerEvent / summary[ref].nsPerEvent;
    s.ratioPerRecord = s.nsPerRecord / summary[ref].nsPerRecord;
    // Ratio within each rep (C and library ran back to back), then the median.
    const perRep = [];
    for (let rep = 0; rep < reps; rep++) {
      const c = runs.find((r) => r.kind === ref && r.rep === rep);
      const l = runs.find((r) => r.kind === kind && r.rep === rep);
      if (c && l) perRep.push(l.nsPerEvent / c.nsPerEvent);
    }
    s.ratioPerRepMedian = median(perRep);
    for (const other of kinds.filter((k) => k.startsWith('c-'))) s[`ratioPerEventVs_${other}`] = s.nsPerEvent / summary[other].nsPerEvent;
  }
  return { config: { ops, rate, files: CONFIG.files, reps }, summary, runs };
}

// ---------------------------------------------------------------- memory

async function memory(dir, kind) {
  const phases = CONFIG.memoryPhases;
  const warmupOps = 25_000;
  const opsPerPhase = Math.ceil(CONFIG.memoryEvents / 2 / phases);
  const [cmd, args] = readerCommand(kind, dir, phases + 1, ['--memory']);
  const reader = start(cmd, args, { timeoutMs: 180_000 });
  const samples = [];
  try {
    const ready = await reader.next(20_000);
    samples.push({ events: 0, label: 'after addWatch', fds: ready.fds, memory: ready.memory });
    const runPhase = async (ops, label) => {
      const stop = stopFile(dir);
      await runOnce(GEN, ['ops', dir, String(CONFIG.files), String(ops), stop, String(CONFIG.memoryRate)], 120_000);
      const p = await reader.next(60_000);
      if (p.type !== 'phase') throw new Error(`memory: unexpected ${JSON.stringify(p)}`);
      samples.push({ events: p.opens + p.closes, records: p.records, overflows: p.overflows, label, fds: p.fds, memory: p.memory, memoryAfterGc: p.memoryAfterGc });
      process.stdout.write(`  memory ${kind} ${label}: ${p.opens + p.closes} events, rss ${fmt(mib(p.memory.rss), 1)} MiB (after gc ${fmt(mib(p.memoryAfterGc?.rss ?? NaN), 1)}), heap ${fmt(mib(p.memory.heapUsed), 1)} MiB, fds ${p.fds}, overflows ${p.overflows}\n`);
    };
    await runPhase(warmupOps, 'after warm-up');
    for (let i = 1; i <= phases; i++) await runPhase(opsPerPhase, `after +${((i * opsPerPhase * 2) / 1e6).toFixed(2)}M`);
    const exit = await reader.done;
    if (exit.code !== 0) throw new Error(`memory reader exited ${exit.code ?? exit.signal}: ${exit.stderr.trim()}`);
  } finally {
    await reader.stop('SIGKILL');
  }
  const before = samples[1];
  const after = samples[samples.length - 1];
  return {
    kind,
    samples,
    summary: {
      events: after.events - before.events,
      rssBeforeMiB: mib(before.memory.rss),
      rssAfterMiB: mib(after.memory.rss),
      rssAfterGcBeforeMiB: mib(before.memoryAfterGc.rss),
      rssAfterGcAfterMiB: mib(after.memoryAfterGc.rss),
      rssMaxMiB: mib(Math.max(...samples.map((s) => s.memory.rss))),
      heapUsedAfterGcBeforeMiB: mib(before.memoryAfterGc.heapUsed),
      heapUsedAfterGcAfterMiB: mib(after.memoryAfterGc.heapUsed),
      fdsBefore: before.fds,
      fdsAfter: after.fds,
      overflows: after.overflows,
    },
  };
}

// ---------------------------------------------------------------- report

function machineInfo() {
  const cpu = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) || [])[1] || 'unknown';
  let git = 'unknown';
  try {
    git = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['-C', ROOT, 'status', '--porcelain', 'lib', 'native'], { encoding: 'utf8' }).trim();
    if (dirty) git += ' (+ uncommitted changes in lib/ or native/)';
  } catch {
    /* not a repository */
  }
  return {
    nproc: os.cpus().length,
    cpu,
    kernel: os.release(),
    node: process.version,
    loadavg: os.loadavg().map((x) => +x.toFixed(2)),
    memTotalMiB: Math.round(mib(os.totalmem())),
    date: new Date().toISOString(),
    commit: git,
  };
}

function buildLine(results) {
  return `library build ${results.libraryBuild} (sha256 of dist/ + addon, as copied to bench/out/snapshot)`;
}

function report(results) {
  const parts = [];
  const t = results.throughput;
  if (t) {
    const rows = [['reader', 'CPU ns / generated event', '(min–max)', 'CPU ns / record read', 'records read', 'received / generated events', 'overflows (runs)', 'context switches / 1000 events', 'ratio vs matching C', 'goal ≤ 1.5x', 'ratio vs c-fd', 'ratio vs c-fid']];
    for (const [kind, s] of Object.entries(t.summary)) {
      const c = kind.startsWith('c-');
      rows.push([
        c ? `${kind} (C reference, ${kind === 'c-fd' ? 'fd mode' : 'FID mode'})` : `${kind} (library)`,
        fmt(s.nsPerEvent, 0),
        `${fmt(s.nsPerEventMin, 0)}–${fmt(s.nsPerEventMax, 0)}`,
        fmt(s.nsPerRecord, 0),
        fmt(s.records, 0),
        `${s.received}/${s.generated}`,
        `${s.overflowsTotal} (${s.overflowRuns}/${s.runs})`,
        fmt(s.switchesPerKEvent, 1),
        c ? '' : `${fmt(s.ratioPerEvent)} vs ${s.reference} (per-rep median ${fmt(s.ratioPerRepMedian)})`,
        c ? '' : verdict(s.ratioPerEvent),
        c ? '' : fmt(s['ratioPerEventVs_c-fd']),
        c ? '' : fmt(s['ratioPerEventVs_c-fid']),
      ]);
    }
    parts.push(`### 1. Notification throughput (paced: ${t.config.ops} open+close pairs at ${t.config.rate}/s on ${t.config.files} files, ${t.config.reps} reps)\n\n${table(rows)}`);
  }
  const f = results.flood;
  if (f) {
    const rows = [['reader', 'records read / s', 'CPU ns / record read', 'received / generated', 'overflows (runs)', 'ratio vs matching C (per record)']];
    for (const [kind, s] of Object.entries(f.summary)) {
      const c = kind.startsWith('c-');
      rows.push([kind, fmt(s.recordsPerSec, 0), fmt(s.nsPerRecord, 0), `${s.received}/${s.generated}`, `${s.overflowsTotal} (${s.overflowRuns}/${s.runs})`, c ? '' : `${fmt(s.ratioPerRecord)} vs ${s.reference}`]);
    }
    parts.push(`### 1b. Notification flood (generator flat out: ${f.config.ops} pairs, ${f.config.reps} reps; the reader falls behind, so the kernel merges open+close and may overflow)\n\n${table(rows)}`);
  }
  if (results.permission) parts.push(reportPermission(results.permission));
  if (results.cache) parts.push(reportCache(results.cache));
  const m = results.memory;
  if (m) {
    const s = m.summary;
    const rows = [['measure', 'before (after warm-up)', `after ${fmt(s.events / 1e6)}M more events`]];
    rows.push(['RSS MiB', fmt(s.rssBeforeMiB, 1), fmt(s.rssAfterMiB, 1)]);
    rows.push(['RSS MiB after gc()', fmt(s.rssAfterGcBeforeMiB, 1), fmt(s.rssAfterGcAfterMiB, 1)]);
    rows.push(['heap used MiB after gc()', fmt(s.heapUsedAfterGcBeforeMiB, 1), fmt(s.heapUsedAfterGcAfterMiB, 1)]);
    rows.push(['open fds', s.fdsBefore, s.fdsAfter]);
    const timeline = [['checkpoint', 'events', 'RSS MiB', 'RSS after gc MiB', 'heap used MiB', 'fds', 'overflows']];
    for (const x of m.samples) timeline.push([x.label, x.events, fmt(mib(x.memory.rss), 1), x.memoryAfterGc ? fmt(mib(x.memoryAfterGc.rss), 1) : '', fmt(mib(x.memory.heapUsed), 1), x.fds, x.overflows ?? '']);
    parts.push(`### 3. Memory of the library process (${m.kind}), ${fmt(s.events / 1e6)}M events (max RSS seen ${fmt(s.rssMaxMiB, 1)} MiB, overflows ${s.overflows})\n\n${table(rows)}\n\n${table(timeline)}`);
  }
  if (results.recursive) parts.push(recursive.reportRecursive(results.recursive, results));
  return parts.join('\n\n');
}

function writeResultsMd(results, tables) {
  const mi = results.machine;
  const md = `# Benchmark results

Produced by \`${results.command}\` (scripts/bench.js; methods in bench/README.md).

Library: commit ${mi.commit}, ${buildLine(results)}.

Machine: ${mi.nproc} CPUs (${mi.cpu}), ${mi.memTotalMiB} MiB, kernel ${mi.kernel}, Node ${mi.node}; load average at start ${mi.loadavg.join(' ')}; ${mi.date}.
The machine is shared and noisy: numbers are medians of ${results.config.reps} interleaved repetitions; compare ratios measured in the same run, not absolute numbers across runs.

${tables}

Raw runs: bench/out/results.json (not committed).
`;
  const file = path.join(__dirname, 'RESULTS.md');
  fs.writeFileSync(file, recursive.mergeResultsMd(fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '', md, results));
}

// ---------------------------------------------------------------- main

async function main() {
  if (process.getuid() !== 0) throw new Error('the benchmarks need root (fd-mode and permission fanotify groups need CAP_SYS_ADMIN)');
  if (!process.env.FANOTIFY_BENCH_NAMESPACE) throw new Error('run through scripts/bench.js (it enters a private mount namespace first)');
  const t0 = Date.now();
  checkDist();
  compileC();
  const snapshot = snapshotLibrary();
  process.env.BENCH_LIB_ROOT = snapshot.root; // inherited by every library process
  const lib = require(path.join(snapshot.root, 'dist'));
  const hasAsync = typeof lib.AsyncFanotify === 'function';
  const modes = opts.modes ?? (hasAsync ? ['async', 'sync'] : ['sync']);
  if (modes.includes('async') && !hasAsync) throw new Error('--modes async: this build of dist/ has no AsyncFanotify');
  const libKinds = modes.map((m) => `lib-${m}`);
  const want = (name) => !opts.only || opts.only.includes(name);

  const results = {
    command: `npm run bench${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}`,
    machine: machineInfo(),
    config: CONFIG,
    libraryModes: modes,
    libraryBuild: snapshot.hash,
  };
  console.log(`fanotify benchmarks: ${results.machine.nproc} CPUs, kernel ${results.machine.kernel}, node ${results.machine.node}, load ${results.machine.loadavg.join(' ')}; library modes: ${modes.join(', ')}${hasAsync ? '' : ' (no AsyncFanotify in dist/ yet)'}`);

  const scratch = mountScratch();
  try {
    const tp = path.join(scratch, 'tp');
    const references = {};
    const needsNoFiles = opts.only && opts.only.every((name) => name === 'recursive' || name === 'cache');
    if (!needsNoFiles) makeFiles(tp, CONFIG.files);
    for (const kind of needsNoFiles ? [] : libKinds) {
      const groups = await probeLibrary(kind, tp);
      references[kind] = referenceFor(groups) ?? 'c-fd';
      console.log(`${kind}: addWatch(dir, OPEN|CLOSE_NOWRITE) made group(s) with init flags ${groups.map((g) => '0x' + g.flags.toString(16)).join(', ')}: compared with ${references[kind]}`);
    }
    results.references = references;
    // Both C references run (fd mode and FID mode); each library mode is
    // compared with the one that does what its group does.
    const kinds = ['c-fd', 'c-fid', ...libKinds];
    if (want('throughput')) {
      console.log(`1. throughput (paced, ${CONFIG.throughputOps} pairs at ${CONFIG.throughputRate}/s)`);
      results.throughput = await throughput(tp, kinds, references, { ops: CONFIG.throughputOps, rate: CONFIG.throughputRate, label: 'paced' });
    }
    if (want('flood') && !Q) {
      console.log(`1b. flood (${CONFIG.floodOps} pairs, generator flat out)`);
      results.flood = await throughput(tp, kinds, references, { ops: CONFIG.floodOps, rate: 0, label: 'flood', reps: Math.min(CONFIG.reps, CONFIG.floodReps) });
    }
    if (want('permission')) {
      console.log(`2. permission round trip (${CONFIG.permOpens} opens)`);
      results.permission = await runPermission({
        dir: scratch,
        libKinds,
        config: { reps: CONFIG.reps, opens: CONFIG.permOpens, warmup: CONFIG.permWarmup },
        start,
        runOnce,
        bins: { GEN, PERM, LIB_PERM },
      });
    }
    if (want('memory')) {
      console.log(`3. memory (${CONFIG.memoryEvents} events, ${libKinds[0]})`);
      results.memory = await memory(tp, libKinds[0]);
    }
    if (want('cache')) {
      console.log(`5. decision cache (${CONFIG.cachePasses} passes over ${CONFIG.cacheFiles} files)`);
      results.cache = await runCache({
        dir: scratch,
        config: { reps: CONFIG.reps, files: CONFIG.cacheFiles, passes: CONFIG.cachePasses, warmup: CONFIG.permWarmup },
        start,
        runOnce,
        bins: { GEN, PERM, LIB_PERM },
      });
    }
    if (want('recursive')) {
      console.log('4. recursive watch of a large tree (bench/recursive.js)');
      results.recursive = await recursive.runRecursive({ quick: Q, reps: opts.reps, start });
    }
  } finally {
    killAll();
    unmountScratch(scratch);
  }
  results.elapsedSec = (Date.now() - t0) / 1000;
  const tables = report(results);
  fs.mkdirSync(OUT, { recursive: true });
  const json = path.join(OUT, 'results.json');
  const previous = fs.existsSync(json) ? JSON.parse(fs.readFileSync(json, 'utf8')) : null;
  fs.writeFileSync(json, JSON.stringify(recursive.mergeResultsJson(previous, results), null, 2));
  writeResultsMd(results, tables);
  console.log(`\n${tables}\n\n(${fmt(results.elapsedSec, 0)} s; raw runs in bench/out/results.json, summary in bench/RESULTS.md)`);
}

main().catch((err) => {
  console.error(`bench: ${err.stack || err.message}`);
  killAll();
  process.exit(1);
});
