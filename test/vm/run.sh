#!/bin/sh
# Runs inside the kernel-matrix VM, on the test root (busybox, node, the
# package at /pkg): the kernel tests in band, then one result line on the
# serial console for scripts/kernel-matrix.sh to read, then power off.
export PATH=/bin:/usr/bin:/sbin:/usr/sbin HOME=/root TMPDIR=/tmp CI=true NO_COLOR=1 FORCE_COLOR=0 FANOTIFY_REQUIRE_PRIVILEGED=1 FANOTIFY_TEST_NAMESPACE=1
mount -t tmpfs -o mode=1777 tmp /tmp
mount -t devpts devpts /dev/pts 2>/dev/null
[ -e /dev/loop-control ] || echo "kernel-matrix: no /dev/loop-control"
cd /pkg
# test/vm/files: the test files, written there by scripts/kernel-matrix.sh.
files=$(cat /pkg/test/vm/files)
start=$(date +%s)
node node_modules/jest/bin/jest.js --runInBand --ci --json --outputFile=/tmp/jest.json $files 2>&1 | tee /tmp/jest.out
node -e '
  const fs = require("fs");
  let r = {};
  try { r = JSON.parse(fs.readFileSync("/tmp/jest.json", "utf8")); } catch {}
  // No JSON report (jest cannot always serialise one with failures in it):
  // the counts from its summary line, "Tests: 8 failed, 56 passed, 64 total".
  const summary = r.numTotalTests === undefined && /^Tests:(.*) total/m.exec(fs.readFileSync("/tmp/jest.out", "utf8"));
  if (summary) {
    const n = (what) => Number(new RegExp(`(\\d+) ${what}`).exec(summary[1])?.[1] ?? 0);
    r = { numTotalTests: n("total"), numPassedTests: n("passed"), numFailedTests: n("failed"), numPendingTests: n("skipped"), numTodoTests: n("todo") };
  }
  const failed = (r.numFailedTests ?? 0) + (r.numRuntimeErrorTestSuites ?? 0) + (r.numTotalTests === undefined ? 1 : 0);
  const caps = (() => { try { return JSON.stringify(require("/pkg/dist").capabilities()); } catch (e) { return JSON.stringify(String(e)); } })();
  console.log(`kernel-matrix: CAPS ${caps}`);
  // The addon node-gyp-build loads here (the arm64 run must load the prebuild).
  const addon = (() => { try { return require("/pkg/node_modules/node-gyp-build").resolve("/pkg"); } catch (e) { return String(e); } })();
  console.log(`kernel-matrix: ADDON ${addon}`);
  console.log(`kernel-matrix: RESULT passed=${r.numPassedTests ?? 0} failed=${failed} skipped=${(r.numPendingTests ?? 0) + (r.numTodoTests ?? 0)} seconds=${process.argv[1]}`);
' $(( $(date +%s) - start ))
sync
poweroff -f
