#!/usr/bin/env node
// npm run test:sanitize [-- jest args]: the jest suite against the addon
// built with AddressSanitizer (with LeakSanitizer) and UndefinedBehaviorSanitizer.
//
// 1. Builds the addon with clang -fsanitize=address,undefined into
//    build-sanitize/ (a copy of binding.gyp next to a link to native/), so the
//    normal build/ stays as it is: tests that pack the package copy it.
//    scripts/install-clang.sh installs clang with apt-get when it is missing.
//    Why clang, not gcc: gcc's UBSan runtime, combined with ASan, ignores
//    log_path and writes to stderr, where a child's report is lost; clang's
//    ASan runtime carries UBSan and logs both to the same files.
// 2. Runs scripts/run-tests.js with that runtime preloaded (node itself is
//    not instrumented) and FANOTIFY_ADDON pointing at the sanitized binary.
//    Both variables are inherited, so every node child and worker the tests
//    start loads the sanitized addon too.
// 3. Every process writes its reports to its own file in a fresh directory
//    (log_path); UBSan reports and continues, ASan aborts the process. Any
//    error there afterwards fails the run, whatever jest said (see classify).
//
// Option: --no-build reuses build-sanitize/; every other argument goes to jest.
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const buildRoot = path.join(root, 'build-sanitize');
const addon = path.join(buildRoot, 'build', 'Release', 'fanotify.node');
const suppressions = path.join(__dirname, 'lsan-suppressions.txt');

let args = process.argv.slice(2);
const noBuild = args.includes('--no-build');
args = args.filter((a) => a !== '--no-build');

const SAN_FLAGS = '-fsanitize=address,undefined -fno-omit-frame-pointer -g -O1';

function build() {
  execFileSync('bash', [path.join(__dirname, 'install-clang.sh')], { stdio: 'inherit' });
  fs.mkdirSync(buildRoot, { recursive: true });
  fs.copyFileSync(path.join(root, 'binding.gyp'), path.join(buildRoot, 'binding.gyp'));
  const link = path.join(buildRoot, 'native');
  fs.rmSync(link, { force: true, recursive: true });
  fs.symlinkSync(path.join('..', 'native'), link);
  const nodeGyp = require.resolve('node-gyp/bin/node-gyp.js', { paths: [root] });
  // Node's headers come from npm's nodedir setting, as for `npm run build`.
  const env = { ...process.env };
  if (!env.npm_config_nodedir) {
    const nodedir = spawnSync('npm', ['config', 'get', 'nodedir'], { encoding: 'utf8' }).stdout?.trim();
    if (nodedir && nodedir !== 'undefined' && nodedir !== 'null') env.npm_config_nodedir = nodedir;
  }
  const started = Date.now();
  // gyp's make generator appends CFLAGS/CXXFLAGS/LDFLAGS from the environment.
  execFileSync(process.execPath, [nodeGyp, 'rebuild', '--jobs', process.env.JOBS || 'max'], {
    cwd: buildRoot,
    stdio: 'inherit',
    env: { ...env, CC: 'clang', CXX: 'clang++', CFLAGS: SAN_FLAGS, CXXFLAGS: SAN_FLAGS, LDFLAGS: '-fsanitize=address,undefined -shared-libasan' },
  });
  console.log(`sanitize: built ${path.relative(root, addon)} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

function runtime() {
  const name = `libclang_rt.asan-${os.arch() === 'x64' ? 'x86_64' : os.arch() === 'arm64' ? 'aarch64' : os.arch()}.so`;
  const lib = execFileSync('clang', [`-print-file-name=${name}`], { encoding: 'utf8' }).trim();
  if (!path.isAbsolute(lib) || !fs.existsSync(lib)) throw new Error(`sanitize: clang has no ${name}; run scripts/install-clang.sh`);
  return fs.realpathSync(lib);
}

/**
 * The runtime symbolizes a report by starting llvm-symbolizer, which would
 * inherit LD_PRELOAD and hang under the runtime itself (holding the test's
 * stderr pipe open, so jest never exits): it starts this wrapper instead,
 * named llvm-symbolizer so the runtime treats it as one.
 *
 * The runtime starts it in the reporting process's working directory, and
 * LeakSanitizer does so at the exit of every node process (node's own
 * leaks must be symbolized to be suppressed). The wrapper moves to / before
 * its shell starts (env -C): dash calls getcwd() at startup, and in a
 * directory deeper than PATH_MAX glibc answers that by opening "..", "../.."
 * and so on, so a child that exits inside a watched tree would have its
 * symbolizer open directories of that tree, an access the test did not make
 * (test/scope.test.ts's PATH_MAX tests saw it as an extra permission event).
 */
function symbolizer() {
  const real = execFileSync('clang', ['-print-prog-name=llvm-symbolizer'], { encoding: 'utf8' }).trim();
  const dir = path.join(buildRoot, 'bin');
  fs.mkdirSync(dir, { recursive: true });
  const wrapper = path.join(dir, 'llvm-symbolizer');
  fs.writeFileSync(wrapper, `#!/usr/bin/env -S -C / /bin/sh\nunset LD_PRELOAD\nexec '${real}' "$@"\n`, { mode: 0o755 });
  return wrapper;
}

const ADDON_FRAME = /fanotify\.node|native\/[\w/]+\.(?:cc|h):\d/;

/**
 * The reports that fail the run: every ASan or UBSan error in any process,
 * and every leak with a frame in the addon. Leaks with no frame in the addon
 * are node's own (it exits without tearing V8 down) or those of other
 * programs the tests run (script, g++, ...); they are counted and kept in
 * the log directory, not failed.
 */
function classify(dir) {
  const failures = [];
  let foreignLeaks = 0;
  for (const name of fs.readdirSync(dir)) {
    const file = path.join(dir, name);
    const text = fs.readFileSync(file, 'utf8');
    if (/ERROR: AddressSanitizer|ERROR: UndefinedBehaviorSanitizer|runtime error:/.test(text)) {
      failures.push({ file, text });
      continue;
    }
    const leaks = text.split(/^(?=(?:Direct|Indirect) leak of )/m).slice(1);
    const ours = leaks.filter((leak) => ADDON_FRAME.test(leak));
    foreignLeaks += leaks.length - ours.length;
    if (ours.length > 0) failures.push({ file, text: ours.join('') });
    else if (leaks.length === 0 && text.trim() !== '') failures.push({ file, text });
  }
  return { failures, foreignLeaks };
}

function main() {
  if (!noBuild || !fs.existsSync(addon)) build();
  const logs = fs.mkdtempSync(path.join(os.tmpdir(), 'fanotify-sanitize-'));
  const common = `log_path=${path.join(logs, 'report')}:log_exe_name=1`;
  const env = {
    ...process.env,
    FANOTIFY_ADDON: addon,
    LD_PRELOAD: [runtime(), process.env.LD_PRELOAD].filter(Boolean).join(' '),
    // verify_asan_link_order=0: node is not linked against the runtime, it is
    // preloaded. exitcode=0: a leak found at exit does not change a process's
    // exit status (other programs the tests run, such as script(1), leak at
    // exit too); abort_on_error=1 still kills a process at an ASan error.
    ASAN_OPTIONS: `${common}:detect_leaks=1:verify_asan_link_order=0:exitcode=0:abort_on_error=1`,
    ASAN_SYMBOLIZER_PATH: symbolizer(),
    LSAN_OPTIONS: `suppressions=${suppressions}:print_suppressions=0`,
    UBSAN_OPTIONS: 'print_stacktrace=1:report_error_type=1',
  };
  const started = Date.now();
  // test/package.test.ts checks that the packed tarball loads its own
  // prebuild, which FANOTIFY_ADDON would replace, and compiles that prebuild
  // with every compiler process under the preloaded runtime: not run here.
  const jestArgs = [...args, '--testPathIgnorePatterns', '/test/package\\.test\\.ts$'];
  const result = spawnSync(process.execPath, [path.join(__dirname, 'run-tests.js'), ...jestArgs], { stdio: 'inherit', env });
  const seconds = ((Date.now() - started) / 1000).toFixed(0);
  const { failures, foreignLeaks } = classify(logs);
  for (const { file, text } of failures) {
    console.error(`\n===== ${file}`);
    process.stderr.write(text);
  }
  if (failures.length === 0 && foreignLeaks === 0) fs.rmSync(logs, { recursive: true, force: true });
  console.log(
    `sanitize: jest exited ${result.status ?? result.signal} after ${seconds} s; ` +
      `${failures.length} sanitizer report(s) from the addon or an error` +
      (foreignLeaks ? `; ${foreignLeaks} leak(s) without an addon frame (node's or other programs', not failed)` : '') +
      (failures.length || foreignLeaks ? ` in ${logs}` : ''),
  );
  process.exit(failures.length > 0 ? 1 : result.status ?? 1);
}

main();
