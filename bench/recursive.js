'use strict';
// Benchmark 4: recursive watch of a large directory tree (issue 4).
//
// Called by bench/run.js (`npm run bench -- --only recursive`), inside the
// private mount namespace scripts/bench.js makes. It mounts its own tmpfs
// (2 GiB, 2M inodes), makes trees of WIDTH^1 + ... + WIDTH^DEPTH directories
// with bench/c/mktree.c, and watches each tree with one watcher per child
// process (bench/recursive-child.js), one after another, in the same run:
//   lib        this library: AsyncFanotify + addWatch(root, CREATE, { recursive: true })
//   lib-fs     this library: addWatch(root, CREATE, { mark: 'filesystem' }) (what
//              privileged recursive mode places underneath; the stand-in while
//              recursive: true is not available)
//   lib-unpriv this library, recursive: true as user nobody (a mark per directory)
//   parcel     @parcel/watcher subscribe()
//   parcel-unpriv  @parcel/watcher subscribe() as user nobody
//   c-unpriv   bench/c/walkmark.c as nobody: walk + one mark per directory, the
//              floor of the unprivileged mode (no bookkeeping, no following)
//   base-unpriv    lib-unpriv of another build of the library (BENCH_BASE_ROOT,
//              a checkout with dist/ and build/), for before/after in one run
//   chokidar   chokidar watch(root, { ignoreInitial: true }) until 'ready'
//   fswatch    fs.watch(root, { recursive: true })
// Each child reports its time until ready, its RSS growth, and the latency
// and correctness of events for files created in the deepest directory.
//
// Safety: every watcher watches only the tmpfs mounted here (the children
// check it is a tmpfs); every child is killed by its pid if it outlives its
// limit; a raised inotify limit is restored in `finally`.

const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const OUT = path.join(__dirname, 'out');
const C_DIR = path.join(__dirname, 'c');
const CHILD = path.join(__dirname, 'recursive-child.js');
const MKTREE = path.join(OUT, 'mktree');
const WALKMARK = path.join(OUT, 'walkmark');
const TMPFS_MAGIC = 0x01021994;
const WATCHES = '/proc/sys/fs/inotify/max_user_watches';

const LABELS = {
  lib: 'fanotify (this library), recursive: true',
  'lib-fs': "fanotify (this library), mark: 'filesystem'",
  'lib-unpriv': 'fanotify (this library), recursive: true, unprivileged',
  'base-unpriv': 'fanotify (BENCH_BASE_ROOT build), recursive: true, unprivileged',
  'c-unpriv': 'C walk + one fanotify mark per directory, unprivileged (floor)',
  parcel: '@parcel/watcher subscribe()',
  'parcel-unpriv': '@parcel/watcher subscribe(), unprivileged',
  chokidar: 'chokidar watch()',
  fswatch: 'fs.watch({ recursive: true })',
};
const START_MARK = '<!-- bench:recursive -->';
const END_MARK = '<!-- /bench:recursive -->';

function config(quick, reps) {
  return {
    width: 10,
    // 11,110 and 111,110 directories; BENCH_RECURSIVE_DEPTHS=4,5,6 adds 1,111,110
    depths: process.env.BENCH_RECURSIVE_DEPTHS ? process.env.BENCH_RECURSIVE_DEPTHS.split(',').map(Number) : [4, 5],
    // BENCH_RECURSIVE_KINDS=c-unpriv,lib-unpriv,parcel-unpriv: only these watchers
    kinds: process.env.BENCH_RECURSIVE_KINDS ? process.env.BENCH_RECURSIVE_KINDS.split(',') : null,
    reps: reps ?? (quick ? 1 : 3),
    creations: 20, // files created in the deepest directory, per child
    timeoutMs: { lib: 60_000, 'lib-fs': 60_000, 'lib-unpriv': 600_000, 'base-unpriv': 600_000, 'c-unpriv': 600_000, parcel: 600_000, 'parcel-unpriv': 600_000, chokidar: 600_000, fswatch: 600_000 },
  };
}

const { median, quantile, fmt, mib, table } = require('./util');
const commas = (n) => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');

function compileMktree() {
  fs.mkdirSync(OUT, { recursive: true });
  for (const [name, out] of [['mktree.c', MKTREE], ['walkmark.c', WALKMARK]]) {
    const src = path.join(C_DIR, name);
    const newest = Math.max(fs.statSync(src).mtimeMs, fs.statSync(path.join(C_DIR, 'common.h')).mtimeMs);
    if (fs.existsSync(out) && fs.statSync(out).mtimeMs > newest) continue;
    execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-o', out, src], { stdio: 'inherit' });
  }
  // Run as nobody, from bench/out (which is root's): readable and runnable by all.
  fs.chmodSync(WALKMARK, 0o755);
}

function isTmpfsMountPoint(dir) {
  const real = fs.realpathSync(dir);
  return (
    fs.statfsSync(dir).type === TMPFS_MAGIC &&
    fs
      .readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .some((l) => l.split(' ')[4] === real && l.includes(' - tmpfs '))
  );
}

function mountTrees() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fanotify-bench-tree-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2g,nr_inodes=2m,mode=0755', 'fanotify-bench-tree', dir]);
  if (!isTmpfsMountPoint(dir)) throw new Error(`${dir} is not the tmpfs just mounted; refusing to go on`);
  return dir;
}

function unmountTrees(dir) {
  try {
    execFileSync('umount', [dir]);
    fs.rmdirSync(dir);
  } catch (err) {
    console.warn(`could not unmount ${dir}: ${err.message} (it goes away with the mount namespace)`);
  }
}

/** Inotify watches held by all processes now (from /proc/PID/fdinfo), to size the limit. */
function inotifyWatchesInUse() {
  let n = 0;
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let fds;
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) !== 'anon_inode:inotify') continue;
        n += (fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'latin1').match(/^inotify wd:/gm) || []).length;
      } catch {
        /* gone */
      }
    }
  }
  return n;
}

/** The tree: depth levels of width directories; returns its root, directory count and deepest directory. */
function makeTree(base, depth, width) {
  const root = path.join(base, `d${depth}`);
  fs.mkdirSync(root);
  const out = JSON.parse(execFileSync(MKTREE, [root, String(depth), String(width)], { encoding: 'utf8' }));
  const deep = path.join(root, ...Array(depth).fill(String(width - 1)));
  if (!fs.statSync(deep).isDirectory()) throw new Error(`mktree: ${deep} missing`);
  return { depth, width, root, deep, dirs: out.dirs, mktreeMs: out.ms };
}

/** One child: a watcher of `kind` on tree `t`. Never throws: failures are results. */
async function runChild(start, kind, t, cfg) {
  const timeoutMs = cfg.timeoutMs[kind];
  const unpriv = kind.endsWith('-unpriv');
  const base = kind.replace(/-unpriv$/, '');
  const nodeArgs = ['--expose-gc', CHILD, base === 'base' ? 'lib' : base, t.root, t.deep, String(cfg.creations)];
  const program = base === 'c' ? [WALKMARK, t.root, t.deep, String(cfg.creations)] : [process.execPath, ...nodeArgs];
  const [cmd, args] = unpriv ? ['setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', ...program]] : [program[0], program.slice(1)];
  const env = base === 'base' ? { BENCH_LIB_ROOT: process.env.BENCH_BASE_ROOT } : {};
  const t0 = Date.now();
  const child = start(cmd, args, { timeoutMs, env });
  const result = { kind, depth: t.depth, dirs: t.dirs };
  try {
    const ready = await child.next(timeoutMs + 1000);
    if (ready.type === 'unsupported') {
      Object.assign(result, { status: 'unsupported', message: ready.message });
    } else if (ready.type !== 'ready') {
      throw new Error(`unexpected ${JSON.stringify(ready)}`);
    } else {
      Object.assign(result, ready, { kind });
      const lat = await child.next(cfg.creations * 6000 + 10_000);
      if (lat.type !== 'latency') throw new Error(`unexpected ${JSON.stringify(lat)}`);
      Object.assign(result, { status: 'ok', latency: lat });
    }
    const exit = await child.done;
    if (exit.code !== 0 && result.status === 'ok') result.exit = exit.code ?? exit.signal;
  } catch (err) {
    await child.stop('SIGKILL');
    const timedOut = Date.now() - t0 >= timeoutMs; // start()'s timer killed it
    Object.assign(result, {
      status: timedOut ? 'timeout' : 'failed',
      message: timedOut ? `killed after ${((Date.now() - t0) / 1000).toFixed(1)} s (limit ${timeoutMs / 1000} s)` : `${err.message.split('\n')[0]}`,
      stderr: child.stderr().trim().slice(-2000),
    });
  }
  // Leave the tree as it was for the next watcher.
  for (const f of fs.readdirSync(t.deep)) if (f.startsWith('new-')) fs.rmSync(path.join(t.deep, f), { force: true });
  return result;
}

function oneLine(r) {
  if (r.status !== 'ok') return `${r.status}: ${r.message}`;
  const l = r.latency;
  return `ready ${fmt(r.readyMs, 1)} ms, RSS +${fmt(mib(r.rssAfter - r.rssBefore), 1)} MiB, inotify ${r.inotifyWatches} / fanotify ${r.fanotifyMarks}, event median ${fmt(median(l.ms), 2)} ms, delivered ${l.delivered}/${l.creations}${l.wrongPath ? `, wrong path ${l.wrongPath} (${l.wrongSample})` : ''}`;
}

/**
 * Runs the benchmark. ctx: { quick, reps, start } where start is run.js's
 * time-limited child starter (it kills by pid).
 */
async function runRecursive(ctx) {
  const cfg = config(ctx.quick, ctx.reps);
  compileMktree();
  const maxDirs = Math.max(...cfg.depths.map((d) => Array.from({ length: d }, (_, i) => cfg.width ** (i + 1)).reduce((a, b) => a + b, 0)));
  const env = ['BENCH_BASE_ROOT', 'BENCH_RECURSIVE_KINDS', 'BENCH_RECURSIVE_DEPTHS'].filter((k) => process.env[k]).map((k) => `${k}=${process.env[k]}`);
  const results = { config: { ...cfg, timeoutMs: undefined, timeoutsMs: cfg.timeoutMs, env }, trees: [], runs: [] };

  // One inotify watch per directory for parcel, chokidar and fs.watch (and
  // per file for the last two), plus what other processes hold now.
  const limit0 = Number(fs.readFileSync(WATCHES, 'utf8'));
  const inUse = inotifyWatchesInUse();
  const needed = maxDirs + 1 + 10 * cfg.creations + inUse + 1000;
  results.inotify = { maxUserWatches: limit0, inUseAtStart: inUse, needed, raisedTo: null };
  const base = mountTrees();
  try {
    if (limit0 < needed) {
      const raised = Math.max(needed, 262_144);
      fs.writeFileSync(WATCHES, String(raised));
      results.inotify.raisedTo = raised;
      console.log(`  ${WATCHES}: ${limit0} < ${needed} needed by the inotify-based watchers: raised to ${raised} for this run`);
    }
    for (const depth of cfg.depths) {
      const t = makeTree(base, depth, cfg.width);
      // Writable deepest directory: the unprivileged child creates its files there.
      fs.chmodSync(t.deep, 0o1777);
      results.trees.push({ depth: t.depth, width: t.width, dirs: t.dirs, mktreeMs: t.mktreeMs });
      console.log(`  tree depth ${depth} x width ${cfg.width}: ${commas(t.dirs)} directories made in ${fmt(t.mktreeMs, 0)} ms`);
      const kinds = cfg.kinds ? [...cfg.kinds] : ['lib', 'lib-fs', 'c-unpriv', 'parcel', 'parcel-unpriv', 'chokidar', 'fswatch'];
      if (!cfg.kinds && process.env.BENCH_BASE_ROOT) kinds.splice(kinds.indexOf('parcel-unpriv'), 0, 'base-unpriv');
      for (let rep = 0; rep < cfg.reps; rep++) {
        for (let k = 0; k < kinds.length; k++) {
          const kind = kinds[k];
          const r = await runChild(ctx.start, kind, t, cfg);
          r.rep = rep;
          results.runs.push(r);
          console.log(`  depth ${depth} rep ${rep + 1}/${cfg.reps} ${kind.padEnd(10)} ${oneLine(r)}`);
          if (kind === 'lib' && r.status === 'unsupported') {
            // Not in this build: the filesystem mark stands in (and is labelled so).
            results.recursiveUnsupported = r.message;
            kinds.splice(k--, 1);
          } else if (kind === 'lib' && !kinds.includes('lib-unpriv') && !cfg.kinds) {
            kinds.splice(kinds.indexOf('lib-fs') + 1, 0, 'lib-unpriv');
          }
        }
      }
    }
  } finally {
    if (results.inotify.raisedTo !== null) {
      fs.writeFileSync(WATCHES, String(limit0));
      results.inotify.restored = Number(fs.readFileSync(WATCHES, 'utf8')) === limit0;
      console.log(`  ${WATCHES} restored to ${limit0}`);
    }
    unmountTrees(base);
  }
  results.summary = summarize(results, cfg);
  return results;
}

function summarize(results, cfg) {
  const summary = {};
  for (const t of results.trees) {
    const rows = {};
    const kinds = [...new Set(results.runs.filter((r) => r.depth === t.depth).map((r) => r.kind))];
    for (const kind of kinds) {
      const rs = results.runs.filter((r) => r.depth === t.depth && r.kind === kind);
      const ok = rs.filter((r) => r.status === 'ok');
      const lat = ok.flatMap((r) => r.latency.ms);
      rows[kind] = {
        runs: rs.length,
        ok: ok.length,
        statuses: rs.map((r) => r.status),
        message: rs.find((r) => r.status !== 'ok')?.message ?? null,
        readyMs: median(ok.map((r) => r.readyMs)),
        readyMsMin: Math.min(...ok.map((r) => r.readyMs)),
        readyMsMax: Math.max(...ok.map((r) => r.readyMs)),
        rssGrowthMiB: median(ok.map((r) => mib(r.rssAfter - r.rssBefore))),
        peakGrowthMiB: median(ok.map((r) => mib(r.hwmAfter - r.rssBefore))),
        heapGrowthMiB: median(ok.map((r) => mib(r.heapUsedAfter - r.heapUsedBefore))),
        constructorMs: median(ok.map((r) => r.constructorMs)),
        addWatchMs: median(ok.map((r) => r.addWatchMs)),
        warmReadyMs: median(ok.map((r) => r.latency.warmReadyMs)),
        inotifyWatches: median(ok.map((r) => r.inotifyWatches)),
        fanotifyMarks: median(ok.map((r) => r.fanotifyMarks)),
        latencyMedianMs: median(lat),
        latencyP90Ms: quantile(lat, 0.9),
        latencyMaxMs: lat.length ? Math.max(...lat) : NaN,
        delivered: ok.reduce((a, r) => a + r.latency.delivered, 0),
        wrongPath: ok.reduce((a, r) => a + r.latency.wrongPath, 0),
        wrongSample: ok.find((r) => r.latency.wrongSample)?.latency.wrongSample ?? null,
        created: ok.reduce((a, r) => a + r.latency.creations, 0),
      };
    }
    // The row the others are compared with: lib, else lib-fs, else (a run of
    // only unprivileged watchers) lib-unpriv.
    const libKind = rows.lib && rows.lib.ok ? 'lib' : rows['lib-fs'] || !rows['lib-unpriv'] ? 'lib-fs' : 'lib-unpriv';
    const lib = rows[libKind];
    for (const row of Object.values(rows)) {
      row.readyVsLib = lib ? row.readyMs / lib.readyMs : NaN;
    }
    const parcel = rows.parcel;
    const goal = libKind !== 'lib-unpriv' && lib && {
      libKind,
      setupSpeedupVsParcel: parcel ? parcel.readyMs / lib.readyMs : NaN,
      setupGoalMet: parcel ? parcel.readyMs / lib.readyMs >= 50 : false,
      rssGrowthMiB: lib.rssGrowthMiB,
      rssGoalMet: lib.rssGrowthMiB < 5,
      delivered: `${lib.delivered}/${lib.created}`,
      deliveredGoalMet: lib.created > 0 && lib.delivered === lib.created && lib.runs === lib.ok,
    };
    // Issue 12: unprivileged recursive: true against @parcel/watcher, both as nobody.
    const up = rows['lib-unpriv'];
    const pp = rows['parcel-unpriv'];
    const unprivGoal = up && pp && up.ok && pp.ok && {
      readyRatio: up.readyMs / pp.readyMs,
      readyGoalMet: up.readyMs / pp.readyMs <= 0.6,
      rssRatio: up.rssGrowthMiB / pp.rssGrowthMiB,
      rssGoalMet: up.rssGrowthMiB / pp.rssGrowthMiB <= 0.2,
      floorReadyRatio: rows['c-unpriv']?.ok ? rows['c-unpriv'].readyMs / pp.readyMs : NaN,
      delivered: `${up.delivered}/${up.created}`,
    };
    summary[`depth${t.depth}`] = { dirs: t.dirs, rows, goal, unprivGoal };
  }
  void cfg;
  return summary;
}

const yes = (b) => (b ? 'meets goal' : 'misses goal');

/** The markdown section (between markers, so that RESULTS.md can keep it across runs of other parts). */
function reportRecursive(results, run) {
  const r = results;
  const cfg = r.config;
  const parts = [START_MARK, `### 4. Recursive watch of a large tree (issue 4)`];
  const mi = run.machine;
  parts.push(
    `Run: \`${cfg.env && cfg.env.length ? `${cfg.env.join(' ')} ` : ''}${run.command}\`, commit ${mi.commit}, library build ${run.libraryBuild}; ${mi.nproc} CPUs, kernel ${mi.kernel}, Node ${mi.node}, load ${mi.loadavg.join(' ')}; ${mi.date}. ` +
      `Median of ${cfg.reps} run(s) per watcher and tree, each watcher in its own process, one after another on the same tree (a tmpfs); event latency: median (p90) over ${cfg.creations} files created one at a time in the deepest directory per run.`,
  );
  if (r.recursiveUnsupported) {
    parts.push(`**\`recursive: true\` was not available in this build** (\`${r.recursiveUnsupported}\`): the library row is \`addWatch(root, CREATE, { mark: 'filesystem' })\`, the single filesystem mark that privileged recursive mode places underneath, without its subtree filter.`);
  }
  const inotify = r.inotify;
  parts.push(
    inotify.raisedTo
      ? `inotify: \`max_user_watches\` was ${inotify.maxUserWatches}, below the ${inotify.needed} the inotify-based peers need (one watch per directory, and per file for chokidar and fs.watch): raised to ${inotify.raisedTo} for the run and restored afterwards${inotify.restored ? '' : ' (restore FAILED)'}. The library needs no such limit.`
      : `inotify: \`max_user_watches\` is ${inotify.maxUserWatches}, enough for the inotify-based peers (one watch per directory, and per file for chokidar and fs.watch: ${inotify.needed} needed); left unchanged. The library needs no such limit.`,
  );
  for (const t of r.trees) {
    const s = r.summary[`depth${t.depth}`];
    const rows = [['watcher', 'ready ms (min–max)', 'ready time ÷ library\'s', 'RSS growth MiB', 'peak RSS growth MiB', 'inotify watches / fanotify marks', 'event latency ms median (p90)', 'delivered, correct full path']];
    for (const [kind, x] of Object.entries(s.rows)) {
      const isLib = kind === s.goal?.libKind;
      const label = `${LABELS[kind]}${isLib ? ' **(library)**' : ''}`;
      if (!x.ok) {
        rows.push([label, `${x.statuses.join(', ')}: ${x.message}`, '', '', '', '', '', '']);
        continue;
      }
      const failed = x.runs - x.ok;
      rows.push([
        label,
        `${fmt(x.readyMs, x.readyMs < 100 ? 2 : 0)} (${fmt(x.readyMsMin, x.readyMs < 100 ? 2 : 0)}–${fmt(x.readyMsMax, x.readyMs < 100 ? 2 : 0)})${failed ? ` (${failed} run(s) ${x.statuses.filter((st) => st !== 'ok').join(', ')})` : ''}`,
        isLib ? '1' : `${fmt(x.readyVsLib, x.readyVsLib < 10 ? 1 : 0)}x`,
        fmt(x.rssGrowthMiB, 1),
        fmt(x.peakGrowthMiB, 1),
        `${x.inotifyWatches} / ${x.fanotifyMarks}`,
        `${fmt(x.latencyMedianMs)} (${fmt(x.latencyP90Ms)})`,
        `${x.delivered}/${x.created}${x.wrongPath ? ` (${x.wrongPath} with a wrong path, e.g. ${x.wrongSample})` : ''}`,
      ]);
    }
    const g = s.goal;
    const goalLine = g
      ? `Goal: setup ≥ 50x faster than @parcel/watcher: ${Number.isFinite(g.setupSpeedupVsParcel) ? `**${fmt(g.setupSpeedupVsParcel, 0)}x**, ${yes(g.setupGoalMet)}` : 'not measured (@parcel/watcher did not get ready)'}; RSS growth < 5 MiB: **${fmt(g.rssGrowthMiB, 1)} MiB**, ${yes(g.rssGoalMet)}; event delivered with its full path: **${g.delivered}**, ${yes(g.deliveredGoalMet)}${g.libKind === 'lib-fs' ? ' (measured with the stand-in, not recursive: true)' : ''}.`
      : s.rows.lib || s.rows['lib-fs'] ? 'Goal: no library run succeeded.' : '';
    const u = s.unprivGoal;
    const unprivLine = u
      ? `Goal (issue 12), both as nobody: \`recursive: true\` ready in ≤ 0.6x @parcel/watcher's time: **${fmt(u.readyRatio, 2)}x**, ${yes(u.readyGoalMet)} (the C floor: ${fmt(u.floorReadyRatio, 2)}x); RSS growth ≤ 0.2x @parcel/watcher's: **${fmt(u.rssRatio, 2)}x**, ${yes(u.rssGoalMet)}; events with full paths: ${u.delivered}.`
      : '';
    const split = Object.entries(s.rows)
      .filter(([kind, x]) => kind.startsWith('lib') && x.ok)
      .map(([kind, x]) => `${kind} ${fmt(x.constructorMs)} + ${fmt(x.addWatchMs)}`)
      .join(', ');
    const warm = s.rows.lib && Number.isFinite(s.rows.lib.warmReadyMs) ? ` A second \`recursive: true\` watcher (new instance) in the same, now warm, process is ready in ${fmt(s.rows.lib.warmReadyMs)} ms (median): the rest of the first one's time is one-time start-up.` : '';
    const splitLine = split ? `Library ready time = \`new AsyncFanotify()\` + \`await addWatch()\`, ms (medians): ${split}.${warm}` : '';
    parts.push(`#### Depth ${t.depth} × width ${t.width}: ${commas(t.dirs)} directories (made in ${fmt(t.mktreeMs, 0)} ms)\n\n${table(rows)}${goalLine ? `\n\n${goalLine}` : ''}${unprivLine ? `\n\n${unprivLine}` : ''}${splitLine ? `\n\n${splitLine}` : ''}`);
  }
  if (r.trees.length > 1) {
    const [a, b] = [r.trees[0], r.trees[r.trees.length - 1]];
    const sa = r.summary[`depth${a.depth}`].rows;
    const sb = r.summary[`depth${b.depth}`].rows;
    const rows = [['watcher', `ready ms, ${commas(a.dirs)} → ${commas(b.dirs)} dirs`, 'growth', `RSS growth MiB, ${commas(a.dirs)} → ${commas(b.dirs)}`, 'growth']];
    for (const kind of Object.keys(sb)) {
      const x = sa[kind];
      const y = sb[kind];
      if (!x || !y) continue;
      rows.push([LABELS[kind], `${fmt(x.readyMs, 1)} → ${fmt(y.readyMs, 1)}`, `${fmt(y.readyMs / x.readyMs, 1)}x`, `${fmt(x.rssGrowthMiB, 1)} → ${fmt(y.rssGrowthMiB, 1)}`, `${fmt(y.rssGrowthMiB / x.rssGrowthMiB, 1)}x`]);
    }
    parts.push(`#### Scaling (${b.dirs / a.dirs > 9 ? `${Math.round(b.dirs / a.dirs)}x` : ''} the directories)\n\n${table(rows)}`);
  }
  parts.push(END_MARK);
  return parts.join('\n\n');
}

const OTHER_PARTS = ['throughput', 'flood', 'permission', 'memory'];

/**
 * RESULTS.md keeps the recursive section of an earlier run when this run did
 * not measure it, and the other sections when this run measured only it.
 */
function mergeResultsMd(previous, md, results) {
  const block = (text) => {
    const i = text.indexOf(START_MARK);
    const j = text.indexOf(END_MARK);
    return i >= 0 && j > i ? { i, j: j + END_MARK.length, text: text.slice(i, j + END_MARK.length) } : null;
  };
  const beforeRaw = (text, insert) => {
    const k = text.lastIndexOf('\nRaw runs:');
    return k >= 0 ? `${text.slice(0, k)}\n${insert}\n${text.slice(k)}` : `${text}\n${insert}\n`;
  };
  const onlyRecursive = results.recursive && !OTHER_PARTS.some((p) => results[p]);
  const old = previous ? block(previous) : null;
  if (onlyRecursive && previous && previous.includes('# Benchmark results')) {
    const fresh = block(md);
    if (!fresh) return md;
    return old ? previous.slice(0, old.i) + fresh.text + previous.slice(old.j) : beforeRaw(previous, fresh.text);
  }
  if (!results.recursive && old) return beforeRaw(md, old.text);
  return md;
}

/** results.json likewise: a run of only the recursive part updates that part of the previous file. */
function mergeResultsJson(previous, results) {
  const onlyRecursive = results.recursive && !OTHER_PARTS.some((p) => results[p]);
  if (onlyRecursive && previous && OTHER_PARTS.some((p) => previous[p])) {
    const { recursive, ...run } = results;
    return { ...previous, recursive: { ...recursive, run } };
  }
  if (!results.recursive && previous && previous.recursive) return { ...results, recursive: previous.recursive };
  return results;
}

module.exports = { runRecursive, reportRecursive, mergeResultsMd, mergeResultsJson };
