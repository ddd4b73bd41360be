#!/usr/bin/env bash
# npm run fuzz [-- --seconds N] [-- extra libFuzzer flags]
# Fuzzes the event decoder (native/decoder.cc) with libFuzzer, ASan and UBSan
# for N seconds (default 60). scripts/install-clang.sh installs Debian's clang
# and its libFuzzer runtime with apt-get when they are missing. Builds into
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
bash scripts/install-clang.sh

clang++ -std=c++17 -g -O1 -D_GNU_SOURCE \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  native/fuzz/decoder_fuzz.cc native/decoder.cc -o "$out/decoder_fuzz"

# The first directory collects what libFuzzer finds; the seeds (real event
# buffers, native/fuzz/make_seeds.py) are only read.
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  "$out/decoder_fuzz" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
  -print_final_stats=1 -artifact_prefix="$out/" ${extra[@]+"${extra[@]}"} \
  "$out/corpus" native/fuzz/seeds
