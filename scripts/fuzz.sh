#!/usr/bin/env bash
# npm run fuzz [-- --seconds N] [-- extra libFuzzer flags]
# Fuzzes the event decoder (native/decoder.cc) with libFuzzer, ASan and UBSan
# for N seconds (default 60). Installs Debian's clang and its libFuzzer
# runtime with apt-get when they are missing (root only). Builds into
# build-fuzz/; new interesting inputs go to build-fuzz/corpus/, a crashing
# input to build-fuzz/crash-*. Exits non-zero on any finding.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --seconds=*) seconds="${1#*=}"; shift ;;
    *) extra+=("$1"); shift ;;
  esac
done

out=build-fuzz
mkdir -p "$out/corpus"
probe="$out/probe.cc"
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' > "$probe"

can_fuzz() {
  command -v clang++ >/dev/null 2>&1 && clang++ -fsanitize=fuzzer,address,undefined "$probe" -o "$out/probe" >/dev/null 2>&1
}

if ! can_fuzz; then
  echo "fuzz: installing clang and its libFuzzer runtime (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends clang >/dev/null
  # Debian ships libFuzzer and the sanitizer runtimes in libclang-rt-<major>-dev.
  major=$(clang++ -dumpversion | cut -d. -f1)
  apt-get install -y -q --no-install-recommends "libclang-rt-$major-dev" >/dev/null || true
  can_fuzz || { echo "fuzz: clang++ -fsanitize=fuzzer does not link here" >&2; exit 1; }
fi

clang++ -std=c++17 -g -O1 -D_GNU_SOURCE \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  native/fuzz/decoder_fuzz.cc native/decoder.cc -o "$out/decoder_fuzz"

# The first directory collects what libFuzzer finds; the seeds (real event
# buffers, native/fuzz/make_seeds.py) are only read.
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  "$out/decoder_fuzz" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
  -print_final_stats=1 -artifact_prefix="$out/" ${extra[@]+"${extra[@]}"} \
  "$out/corpus" native/fuzz/seeds
