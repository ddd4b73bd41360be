#!/usr/bin/env bash
# Makes sure clang++ can build with -fsanitize=fuzzer,address,undefined:
# installs Debian's clang and its compiler-rt (libFuzzer, the ASan/UBSan
# runtime) with apt-get when that does not link yet. Needs root for apt-get.
# Used by scripts/fuzz.sh and scripts/sanitize.js.
set -euo pipefail

probe_dir=$(mktemp -d /tmp/fanotify-clang-probe-XXXXXX)
trap 'rm -rf "$probe_dir"' EXIT
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' > "$probe_dir/probe.cc"

works() {
  command -v clang++ >/dev/null 2>&1 &&
    clang++ -fsanitize=fuzzer,address,undefined "$probe_dir/probe.cc" -o "$probe_dir/probe" >/dev/null 2>&1
}

works && exit 0
echo "install-clang: installing clang and its sanitizer/libFuzzer runtime with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends clang >/dev/null
# Debian ships libFuzzer and the sanitizer runtimes in libclang-rt-<major>-dev
# (older releases had them in libclang-common-<major>-dev, which clang pulls in).
major=$(clang++ -dumpversion | cut -d. -f1)
apt-get install -y -q --no-install-recommends "libclang-rt-$major-dev" >/dev/null 2>&1 || true
works || { echo "install-clang: clang++ -fsanitize=fuzzer,address,undefined still does not link" >&2; exit 1; }
