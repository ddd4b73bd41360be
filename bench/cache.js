'use strict';
// Decision cache: what `allow({ cache: true })` saves. The C generator
// (`generator passes`) opens 1,000 files 20 times over under an OPEN_PERM
// guard, timing each pass. Handlers, each alone on a fresh directory, in an
// order that rotates each repetition:
//   none       no handler (baseline)
//   c          the C allow-all reference (bench/c/perm_handler.c), no cache:
//              asked about every open of every pass
//   lib-async  AsyncFanotify, ev.allow(): today's library, asked every time
//   lib-cache  AsyncFanotify, ev.allow({ cache: true }): asked once per file
//              (first pass), then the kernel answers alone
// Each handler first answers `warmup` untimed opens of a file open for
// writing (never cached), as the round-trip benchmark warms up. Placements
// as in permission.js: shared (handler and generator pinned to one CPU: the
// handler's own work), split (two CPUs: each open also wakes the other
// CPU), free (not pinned).
// Added time per open = the handler's pass time / 1,000 minus the baseline's
// same pass in the same repetition and placement. Goals: later passes with
// the cache at most 0.1x what the C handler adds; the cache's first pass no
// worse than about 1.2x the C handler (what the plain library adds, see
// permission.js).

const fs = require('node:fs');
const path = require('node:path');
const { median, fmt, table, verdict } = require('./util');
const { allowedCpus, hasTaskset, cpusFor, pinned } = require('./permission');

const PLACEMENTS = ['shared', 'split', 'free'];
const KINDS = ['none', 'c', 'lib-async', 'lib-cache'];
const NAMES = {
  none: 'none (baseline)',
  c: 'C allow-all, no cache (reference)',
  'lib-async': '`AsyncFanotify`, `ev.allow()`',
  'lib-cache': '`AsyncFanotify`, `ev.allow({ cache: true })`',
};
const TITLES = {
  shared: "handler and generator pinned to one CPU: the handler's own work (strict)",
  split: 'pinned to two CPUs: every open also wakes the other CPU',
  free: 'not pinned: the scheduler decides',
};

function startHandler(env, kind, dir, cpu) {
  if (kind === 'none') return null;
  const [cmd, args] =
    kind === 'c'
      ? pinned(cpu, env.bins.PERM, [dir])
      : pinned(cpu, process.execPath, [env.bins.LIB_PERM, dir, kind === 'lib-cache' ? 'async-cache' : 'async']);
  return env.start(cmd, args, { timeoutMs: 120_000 });
}

async function oneRun(env, kind, rep, placement) {
  const cpus = cpusFor(placement, env.cpus);
  const dir = path.join(env.base, `${kind}-${rep}-${placement}`);
  fs.mkdirSync(dir, { recursive: true });
  for (let i = 0; i < env.config.files; i++) fs.writeFileSync(path.join(dir, `f${String(i).padStart(4, '0')}`), 'x');
  fs.writeFileSync(path.join(dir, 'warm'), 'x');
  const handler = startHandler(env, kind, dir, cpus?.[0]);
  let done = null;
  try {
    if (handler) {
      const ready = await handler.next(20_000);
      if (ready.type !== 'ready') throw new Error(`${kind}: unexpected ${JSON.stringify(ready)}`);
    }
    const [cmd, args] = pinned(cpus?.[1], env.bins.GEN, ['passes', dir, String(env.config.files), String(env.config.passes), String(env.config.warmup)]);
    const out = await env.runOnce(cmd, args, 120_000);
    if (handler && kind !== 'c') {
      const stopped = handler.next(10_000);
      await handler.stop('SIGTERM');
      done = await stopped.catch(() => null);
    }
    return { kind, rep, placement, perOpenUs: out.passNs.map((ns) => ns / env.config.files / 1000), done };
  } finally {
    if (handler) await handler.stop('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** env: { dir (a tmpfs), config: { reps, files, passes, warmup }, start, runOnce, bins: { GEN, PERM, LIB_PERM } } */
async function runCache(env) {
  const base = path.join(env.dir, 'cache');
  const cpus = allowedCpus();
  const taskset = hasTaskset();
  const placements = PLACEMENTS.filter((p) => p === 'free' || (taskset && cpus.length >= (p === 'split' ? 2 : 1)));
  const ctx = { ...env, base, cpus };
  const runs = [];
  for (let rep = 0; rep < env.config.reps; rep++) {
    for (const placement of placements) {
      const line = [];
      for (let i = 0; i < KINDS.length; i++) {
        const kind = KINDS[(i + rep) % KINDS.length];
        const r = await oneRun(ctx, kind, rep, placement);
        runs.push(r);
        line.push(`${kind} ${fmt(r.perOpenUs[0], 1)} / ${fmt(median(r.perOpenUs.slice(1)), 1)}`);
      }
      process.stdout.write(`  cache ${placement} ${rep + 1}/${env.config.reps} (µs per open, first pass / later passes): ${line.join(', ')}\n`);
    }
  }
  const summary = {};
  for (const placement of placements) summary[placement] = summarize(runs.filter((r) => r.placement === placement));
  return { config: { ...env.config, placements }, summary, runs };
}

function summarize(runs) {
  const summary = {};
  const first = (xs) => xs[0];
  const later = (xs) => xs.slice(1).reduce((a, b) => a + b, 0) / (xs.length - 1);
  for (const kind of KINDS) {
    const rs = runs.filter((r) => r.kind === kind);
    const added = (pick) =>
      median(
        rs.map((r) => {
          const b = runs.find((x) => x.kind === 'none' && x.rep === r.rep);
          return b ? pick(r.perOpenUs) - pick(b.perOpenUs) : NaN;
        }),
      );
    summary[kind] = {
      firstUs: median(rs.map((r) => first(r.perOpenUs))),
      laterUs: median(rs.map((r) => later(r.perOpenUs))),
      addedFirstUs: kind === 'none' ? 0 : added(first),
      addedLaterUs: kind === 'none' ? 0 : added(later),
      answered: median(rs.map((r) => r.done?.answered)),
      cacheSize: median(rs.map((r) => r.done?.cacheSize)),
    };
  }
  for (const kind of ['lib-async', 'lib-cache']) {
    const s = summary[kind];
    s.ratioFirstVsC = s.addedFirstUs / summary.c.addedFirstUs;
    s.ratioLaterVsC = s.addedLaterUs / summary.c.addedLaterUs;
  }
  summary['lib-cache'].ratioFirstVsLib = summary['lib-cache'].addedFirstUs / summary['lib-async'].addedFirstUs;
  return summary;
}

function tableFor(summary) {
  const rows = [['handler', 'first pass µs / open', 'later passes µs / open', 'added, first pass', 'added, later passes', 'first pass vs C', 'later passes vs C', 'events answered']];
  for (const kind of KINDS) {
    const s = summary[kind];
    const lib = kind.startsWith('lib');
    rows.push([
      NAMES[kind],
      fmt(s.firstUs),
      fmt(s.laterUs),
      kind === 'none' ? '' : fmt(s.addedFirstUs),
      kind === 'none' ? '' : fmt(s.addedLaterUs),
      lib ? fmt(s.ratioFirstVsC) : '',
      lib ? fmt(s.ratioLaterVsC, 3) : '',
      lib ? `${fmt(s.answered, 0)}${kind === 'lib-cache' ? ` (cacheSize ${fmt(s.cacheSize, 0)})` : ''}` : '',
    ]);
  }
  return table(rows);
}

function reportCache(p) {
  const { files, passes, reps, warmup } = p.config;
  const goals = [];
  const parts = [];
  for (const placement of p.config.placements) {
    const summary = p.summary[placement];
    const c = summary['lib-cache'];
    goals.push(
      `${placement}: later passes ${fmt(c.ratioLaterVsC, 3)}x the C handler (goal ≤ 0.1x: ${verdict(c.ratioLaterVsC, 0.1)}), first pass ${fmt(c.ratioFirstVsC)}x (goal ≤ about 1.2x: ${verdict(c.ratioFirstVsC, 1.2)}; the plain library ${fmt(summary['lib-async'].ratioFirstVsC)}x, so the cache's first pass costs ${fmt(c.ratioFirstVsLib)}x today's)`,
    );
    parts.push(`#### ${placement}: ${TITLES[placement]}\n\n${tableFor(summary)}`);
  }
  return `### 5. Decision cache (${passes} passes over ${files} files under an OPEN_PERM guard after ${warmup} untimed opens, each handler alone; ${reps} repetitions; medians; events answered includes the warm-up)\n\n${goals.join('.\n\n')}.\n\n${parts.join('\n\n')}`;
}

module.exports = { runCache, reportCache };
