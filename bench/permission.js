'use strict';
// Permission round trip: how much an allow-all handler adds to open() in
// another process. The C generator (`generator lat`) times N opens of a file
// in the handler's tmpfs directory; 'none' (no handler) is the baseline, and
// added latency = handler's open() time - baseline of the same repetition
// and placement.
//
// Every handler runs alone (the order rotates each repetition), in three
// placements, because on this kind of machine where the handler runs
// decides more than what it does:
//   shared: handler and generator pinned to one CPU. Each open is a direct
//           switch to the handler and back: this counts the handler's own
//           work and nothing else, so it is the strict comparison.
//   split:  pinned to two different CPUs. Each open also pays waking a CPU
//           (an inter-processor interrupt; tens of µs in a VM), the same
//           for every handler.
//   free:   not pinned: what a user sees; the scheduler decides per open.
// and, for comparison with earlier results, 'together': every handler at
// once on its own directory, unpinned, the generator opening their files
// round robin. There the scheduler places busy and idle handlers
// differently (see bench/README.md), so it measures placement luck as much
// as handlers.

const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { median, maxOf, fmt, table, verdict } = require('./util');

const PLACEMENTS = ['shared', 'split', 'free'];
const REFERENCES = ['c', 'c-path', 'c-thread'];
const NAMES = { none: 'none (baseline)', c: 'c (reference)', 'c-path': 'c + readlink', 'c-thread': 'c, 2 threads + readlink' };

/** The CPUs this process may run on (Cpus_allowed_list), e.g. [0, 1]. */
function allowedCpus() {
  const list = (fs.readFileSync('/proc/self/status', 'utf8').match(/Cpus_allowed_list:\s*(\S+)/) || [])[1] ?? '';
  const cpus = [];
  for (const part of list.split(',').filter(Boolean)) {
    const [a, b = a] = part.split('-').map(Number);
    for (let c = a; c <= b; c++) cpus.push(c);
  }
  return cpus;
}

function hasTaskset() {
  try {
    execFileSync('taskset', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** [handler CPU, generator CPU] for a placement, or null for unpinned. */
function cpusFor(placement, cpus) {
  if (placement === 'shared') return [cpus[0], cpus[0]];
  if (placement === 'split') return [cpus[1], cpus[0]];
  return null;
}

/** CPU time (ns) and context switches of a live process, all threads (/proc/PID/task/TID/schedstat). */
function processCpu(pid) {
  let ns = 0;
  let switches = 0;
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const f = fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ');
      ns += Number(f[0]);
      switches += Number(f[2]);
    } catch {
      /* thread ended */
    }
  }
  return { ns, switches };
}

const pinned = (cpu, cmd, args) => (cpu === undefined ? [cmd, args] : ['taskset', ['-c', String(cpu), cmd, ...args]]);

function startHandler(env, kind, dir, cpu) {
  if (kind === 'none') return null;
  const [cmd, args] = kind.startsWith('c')
    ? pinned(cpu, env.bins.PERM, kind === 'c' ? [dir] : [dir, kind.slice(2)])
    : pinned(cpu, process.execPath, [env.bins.LIB_PERM, dir, kind.replace(/^lib-/, '')]);
  return env.start(cmd, args, { timeoutMs: 90_000 });
}

async function waitReady(kind, handler) {
  if (!handler) return;
  const ready = await handler.next(20_000);
  if (ready.type !== 'ready') throw new Error(`${kind}: unexpected ${JSON.stringify(ready)}`);
}

/** Runs the generator against `files` with the handlers already started; one record per handler. */
async function timeOpens(env, handlers, files, genCpu) {
  const events = env.config.opens + env.config.warmup;
  const cpu0 = new Map([...handlers].filter(([, h]) => h).map(([k, h]) => [k, processCpu(h.pid)]));
  const [cmd, args] = pinned(genCpu, env.bins.GEN, ['lat', String(env.config.opens), String(env.config.warmup), ...files.values()]);
  const out = await env.runOnce(cmd, args, 120_000);
  const runs = [];
  for (const [kind, h] of handlers) {
    const stats = out.files.find((f) => f.file === files.get(kind));
    const cpu1 = h ? processCpu(h.pid) : null;
    runs.push({
      kind,
      ...stats,
      handlerNsPerEvent: h ? (cpu1.ns - cpu0.get(kind).ns) / events : 0,
      switchesPerEvent: h ? (cpu1.switches - cpu0.get(kind).switches) / events : 0,
    });
  }
  return runs;
}

async function stopAll(handlers) {
  for (const h of handlers.values()) if (h) await h.stop('SIGTERM');
}

/** One handler alone in one placement. */
async function aloneRun(env, kind, placement) {
  const cpus = cpusFor(placement, env.cpus);
  const file = path.join(env.base, kind, 'target');
  const handlers = new Map([[kind, startHandler(env, kind, path.dirname(file), cpus?.[0])]]);
  try {
    await waitReady(kind, handlers.get(kind));
    return (await timeOpens(env, handlers, new Map([[kind, file]]), cpus?.[1]))[0];
  } finally {
    await stopAll(handlers);
  }
}

/** Every handler at once, the generator opening their files round robin (the earlier method). */
async function togetherRun(env, kinds, rep) {
  const handlers = new Map();
  try {
    const order = kinds.map((_, i) => kinds[(i + rep) % kinds.length]);
    const files = new Map(order.map((kind) => [kind, path.join(env.base, kind, 'target')]));
    for (const kind of order) handlers.set(kind, startHandler(env, kind, path.dirname(files.get(kind))));
    for (const [kind, h] of handlers) await waitReady(kind, h);
    return await timeOpens(env, handlers, files);
  } finally {
    await stopAll(handlers);
  }
}

function summarize(runs, kinds, placement, reps) {
  const summary = {};
  for (const kind of kinds) {
    const rs = runs.filter((r) => r.kind === kind && r.placement === placement);
    summary[kind] = {
      meanUs: median(rs.map((r) => r.meanNs / 1000)),
      medianUs: median(rs.map((r) => r.medianNs / 1000)),
      p99Us: median(rs.map((r) => r.p99Ns / 1000)),
      maxUs: maxOf(rs.map((r) => r.maxNs / 1000)),
      handlerCpuUs: median(rs.map((r) => r.handlerNsPerEvent / 1000)),
      switchesPerOpen: median(rs.map((r) => r.switchesPerEvent)),
    };
  }
  // Added latency per repetition (minus that repetition's baseline), then medians.
  for (const kind of kinds.slice(1)) {
    const addMean = [];
    const addMedian = [];
    for (let rep = 0; rep < reps; rep++) {
      const b = runs.find((r) => r.kind === 'none' && r.rep === rep && r.placement === placement);
      const r = runs.find((x) => x.kind === kind && x.rep === rep && x.placement === placement);
      if (!b || !r) continue;
      addMean.push((r.meanNs - b.meanNs) / 1000);
      addMedian.push((r.medianNs - b.medianNs) / 1000);
    }
    summary[kind].addedMeanUs = median(addMean);
    summary[kind].addedMedianUs = median(addMedian);
  }
  for (const kind of kinds.filter((k) => k.startsWith('lib'))) {
    const s = summary[kind];
    for (const ref of REFERENCES) {
      s[`ratioMeanVs_${ref}`] = s.addedMeanUs / summary[ref].addedMeanUs;
      s[`ratioMedianVs_${ref}`] = s.addedMedianUs / summary[ref].addedMedianUs;
      s[`ratioCpuVs_${ref}`] = s.handlerCpuUs / summary[ref].handlerCpuUs;
    }
  }
  return summary;
}

/**
 * env: { dir (a tmpfs), libKinds, config: { reps, opens, warmup }, start,
 * runOnce, bins: { GEN, PERM, LIB_PERM } }
 */
async function runPermission(env) {
  const kinds = ['none', ...REFERENCES, ...env.libKinds];
  const cpus = allowedCpus();
  const taskset = hasTaskset();
  const placements = PLACEMENTS.filter((p) => p === 'free' || (taskset && cpus.length >= (p === 'split' ? 2 : 1)));
  if (placements.length < PLACEMENTS.length) console.log(`  (skipping ${PLACEMENTS.filter((p) => !placements.includes(p)).join(', ')}: needs taskset and enough CPUs)`);
  const base = path.join(env.dir, 'perm');
  for (const kind of kinds) {
    fs.mkdirSync(path.join(base, kind), { recursive: true });
    fs.writeFileSync(path.join(base, kind, 'target'), 'x');
  }
  const ctx = { ...env, base, cpus };
  const runs = [];
  for (let rep = 0; rep < env.config.reps; rep++) {
    for (const placement of placements) {
      const line = [];
      for (let i = 0; i < kinds.length; i++) {
        const kind = kinds[(i + rep) % kinds.length];
        const r = await aloneRun(ctx, kind, placement);
        runs.push({ ...r, rep, placement });
        line.push(`${kind} ${fmt(r.medianNs / 1000, 1)}`);
      }
      process.stdout.write(`  permission ${placement} ${rep + 1}/${env.config.reps} (median µs): ${line.join(', ')}\n`);
    }
    for (const r of await togetherRun(ctx, kinds, rep)) runs.push({ ...r, rep, placement: 'together' });
  }
  const summary = {};
  for (const placement of [...placements, 'together']) summary[placement] = summarize(runs, kinds, placement, env.config.reps);
  return { config: { ...env.config, kinds, placements: [...placements, 'together'], cpus }, summary, runs };
}

const TITLES = {
  shared: 'handler and generator pinned to one CPU: the handler\'s own work (strict)',
  split: 'pinned to two CPUs: every open also wakes the other CPU',
  free: 'not pinned: the scheduler decides',
  together: 'all handlers at once, unpinned, opens round robin (earlier method; placement luck, see bench/README.md)',
};

function reportPermission(p) {
  const parts = [];
  const goals = [];
  for (const placement of p.config.placements) {
    const rows = [['handler', 'open() mean µs', 'median µs', 'p99 µs', 'added mean µs', 'added median µs', 'ratio vs C: mean / median', 'goal ≤ 1.5x (mean and median)', 'vs C+readlink', 'vs C 2 threads', 'handler CPU µs / open', 'CPU ratio vs C', 'context switches / open']];
    for (const [kind, s] of Object.entries(p.summary[placement])) {
      const lib = kind.startsWith('lib');
      const worst = Math.max(s.ratioMeanVs_c, s.ratioMedianVs_c);
      if (lib) goals.push(`${kind} ${placement}: ${fmt(s.ratioMeanVs_c)} / ${fmt(s.ratioMedianVs_c)} (${verdict(worst)})`);
      rows.push([
        NAMES[kind] ?? kind,
        fmt(s.meanUs),
        fmt(s.medianUs),
        fmt(s.p99Us),
        kind === 'none' ? '' : fmt(s.addedMeanUs),
        kind === 'none' ? '' : fmt(s.addedMedianUs),
        lib ? `${fmt(s.ratioMeanVs_c)} / ${fmt(s.ratioMedianVs_c)}` : '',
        lib ? verdict(worst) : '',
        lib ? `${fmt(s['ratioMeanVs_c-path'])} / ${fmt(s['ratioMedianVs_c-path'])}` : '',
        lib ? `${fmt(s['ratioMeanVs_c-thread'])} / ${fmt(s['ratioMedianVs_c-thread'])}` : '',
        kind === 'none' ? '' : fmt(s.handlerCpuUs),
        lib ? fmt(s.ratioCpuVs_c) : '',
        kind === 'none' ? '' : fmt(s.switchesPerOpen, 1),
      ]);
    }
    parts.push(`#### ${placement}: ${TITLES[placement]}\n\n${table(rows)}`);
  }
  const head = `### 2. Permission round trip (${p.config.opens} timed opens per handler and run after ${p.config.warmup} untimed; ${p.config.reps} repetitions; each handler alone, in three placements, then all at once)\n\nAdded latency vs the C one-thread handler, mean / median: ${goals.join('; ')}.`;
  return [head, ...parts].join('\n\n');
}

module.exports = { runPermission, reportPermission, allowedCpus, hasTaskset, cpusFor, pinned };
