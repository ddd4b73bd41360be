#!/usr/bin/env bash
# The kernel matrix: runs the kernel-facing tests on Debian's cloud kernels
# (5.10, 6.1, 6.12), each booted in qemu (TCG) from a small initramfs, and on
# this machine's own kernel.
#
#   scripts/kernel-matrix.sh            all: 5.10 6.1 6.12 host
#   scripts/kernel-matrix.sh 5.10 6.1   just those
#   scripts/kernel-matrix.sh --fetch    install tools and download kernels only
#
# Installs what it needs with apt-get (qemu-system-x86, busybox-static, cpio);
# the kernels come from Debian's archive through a private apt configuration
# this script writes under its cache dir (the machine's own apt sources are
# not touched) and are unpacked there with dpkg-deb. Cache dir:
# $FANOTIFY_KERNEL_CACHE, default .cache/kernel-matrix (git ignores .cache/).
#
# Each kernel prints one line "kernel-matrix: <version> N passed, N failed,
# N skipped (<seconds> s)" and the script ends with the totals as
# "N passed, N failed"; exit status 0 only when nothing failed.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${FANOTIFY_KERNEL_CACHE:-$root/.cache/kernel-matrix}
# Per-kernel wall-clock limit for qemu (boot + tests); TCG is slow.
vm_timeout=${FANOTIFY_VM_TIMEOUT:-600}
mkdir -p "$cache"

# Which Debian suite and metapackage version each kernel comes from.
declare -A SUITE=([5.10]=bullseye [6.1]=bookworm [6.12]=trixie)
all_kernels=(5.10 6.1 6.12 host)

log() { echo "kernel-matrix: $*" >&2; }

# --- tools ---------------------------------------------------------------
ensure_tools() {
  local missing=()
  command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
  dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
  command -v cpio >/dev/null || missing+=(cpio)
  command -v mkfs.ext4 >/dev/null || missing+=(e2fsprogs)
  command -v xz >/dev/null || missing+=(xz-utils)
  command -v zstd >/dev/null || missing+=(zstd)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Another apt may hold the lock for a while (e.g. on a shared machine).
    apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null || true
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || {
      log "apt-get install ${missing[*]} failed"
      return 1
    }
  fi
}

# --- kernels -------------------------------------------------------------
# A private apt: its own sources list, lists and archive cache.
APT_DIR=$cache/apt
apt_opts=(-o "Dir::Etc::SourceList=$APT_DIR/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$APT_DIR/lists" -o "Dir::Cache=$APT_DIR/cache" -o Dir::State::status=/dev/null
  -o APT::Architectures=amd64 -o Acquire::Languages=none -o Debug::NoLocking=true -o APT::Sandbox::User=root)

apt_private_update() {
  [ -n "${apt_updated:-}" ] && return 0
  mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial"
  cat >"$APT_DIR/sources.list" <<'EOF'
# Written by scripts/kernel-matrix.sh: the suites its kernels come from.
deb http://deb.debian.org/debian bullseye main
deb http://deb.debian.org/debian-security bullseye-security main
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian trixie main
EOF
  apt-get "${apt_opts[@]}" update -qq >/dev/null || { log "apt-get update (kernel suites) failed"; return 1; }
  apt_updated=1
}

# The concrete image package the newest linux-image-cloud-amd64 of a series
# depends on, e.g. 5.10 -> linux-image-5.10.0-XX-cloud-amd64.
image_package() {
  local series=$1
  apt-cache "${apt_opts[@]}" show linux-image-cloud-amd64 | awk -v s="$series." '
    /^Version:/ { v = $2 }
    /^Depends:/ && index(v, s) == 1 { split($0, d, /[ ,]+/); print v, d[2] }' |
    sort -V | tail -1 | cut -d' ' -f2
}

# Unpacks the kernel of a series into $cache/<series>/ (once): vmlinuz, modules.
fetch_kernel() {
  local series=$1 dir=$cache/$1
  [ -f "$dir/ok" ] && return 0
  apt_private_update || return 1
  local pkg
  pkg=$(image_package "$series")
  [ -n "$pkg" ] || { log "no linux-image-cloud-amd64 for $series in ${SUITE[$series]}"; return 1; }
  log "downloading $pkg"
  rm -rf "$dir" && mkdir -p "$dir/deb" "$dir/root"
  (cd "$dir/deb" && apt-get "${apt_opts[@]}" download -qq "$pkg" >/dev/null) || { log "apt-get download $pkg failed"; return 1; }
  dpkg-deb -x "$dir"/deb/*.deb "$dir/root" || return 1
  local vmlinuz
  vmlinuz=$(ls "$dir"/root/boot/vmlinuz-* | head -1)
  [ -f "$vmlinuz" ] || { log "$pkg has no vmlinuz"; return 1; }
  ln -sf "${vmlinuz#"$dir/"}" "$dir/vmlinuz"
  basename "$vmlinuz" | sed 's/^vmlinuz-//' >"$dir/release"
  rm -rf "$dir/deb"
  touch "$dir/ok"
}

# --- the test root (one ext4 image, shared by every kernel) ----------------
# busybox, node and the libraries ldd names, mke2fs for ext4 scratch images,
# and the package at /pkg: package.json, the built addon, dist/, lib/, test/,
# node_modules (jest runs there as here).
copy_with_libs() {
  install -D -m 755 "$2" "$1$2"
  # The real tool wins over busybox's applet of the same name.
  [ -L "$1/bin/$(basename "$2")" ] && [ "$(dirname "$2")" != /bin ] && rm "$1/bin/$(basename "$2")"
  copy_libs "$1" "$2"
}
copy_libs() {
  local stage=$1 bin=$2 lib
  for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
    [ -e "$stage$lib" ] || install -D -m 755 "$(readlink -f "$lib")" "$stage$lib"
  done
}

build_rootfs() {
  local stage=$cache/rootfs image=$cache/rootfs.ext4
  rm -rf "$stage" "$image"
  mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root,pkg}
  cp /bin/busybox "$stage/bin/busybox"
  for a in $(/bin/busybox --list); do [ -e "$stage/bin/$a" ] || ln -s busybox "$stage/bin/$a"; done
  copy_with_libs "$stage" "$(readlink -f "$(command -v node)")"
  copy_with_libs "$stage" "$(command -v mke2fs)"
  copy_with_libs "$stage" "$(command -v setpriv)"  # the unprivileged tests run children as nobody
  # The tests copy /bin/true and run the copy: a busybox link would not run.
  rm -f "$stage/bin/true" && cp /bin/true "$stage/bin/true" && copy_libs "$stage" /bin/true
  ln -sf mke2fs "$stage$(dirname "$(command -v mke2fs)")/mkfs.ext4"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n' >"$stage/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$stage/etc/group"
  chmod 1777 "$stage/tmp"
  (cd "$root" && cp -a package.json jest.config.js tsconfig*.json dist lib test node_modules "$stage/pkg/") || return 1
  # The addon as node-gyp-build finds it: a local build, or the prebuilds.
  if [ -f "$root/build/Release/fanotify.node" ]; then
    mkdir -p "$stage/pkg/build/Release" && cp -a "$root/build/Release/fanotify.node" "$stage/pkg/build/Release/"
  fi
  [ -d "$root/prebuilds" ] && cp -a "$root/prebuilds" "$stage/pkg/"
  [ -d "$root/scripts" ] && cp -a "$root/scripts" "$stage/pkg/"
  # The libraries native addons (ours, swc's) need beyond node's.
  local addon
  while IFS= read -r addon; do copy_libs "$stage" "$addon"; done < <(find "$stage/pkg" -name '*.node' -type f)
  printf '%s\n' "${test_files[@]}" >"$stage/pkg/test/vm/files"
  local mb=$(( $(du -sm "$stage" | cut -f1) * 3 / 2 + 256 ))
  mkfs.ext4 -q -F -L fanotify-vm -d "$stage" "$image" "${mb}M" || return 1
  rm -rf "$stage"
}

# --- the initramfs (per kernel): busybox, test/vm/init, the modules ---------
# Modules (with the dependencies their .modinfo names, decompressed):
# virtio_blk for the test root, loop for ext4 scratch images. Whatever the
# kernel has built in is simply not found, and not needed. (The packages ship
# no modules.dep: depmod runs at install time.)
module_file() { find "$1" -name "$2.ko" -o -name "$2.ko.xz" -o -name "$2.ko.zst" | head -1; }
module_cat() {
  case $1 in
    *.xz) xz -dc "$1" ;;
    *.zst) zstd -qdc "$1" ;;
    *) cat "$1" ;;
  esac
}
# Appends a module and then (first) its dependencies to $stage/modules.
add_module() {
  local moddir=$1 stage=$2 name=$3 file dep
  grep -qx "$name.ko" "$stage/modules/order" && return 0
  file=$(module_file "$moddir" "$name")
  [ -n "$file" ] || return 0
  module_cat "$file" >"$stage/modules/$name.ko"
  for dep in $(tr '\0' '\n' <"$stage/modules/$name.ko" | sed -n 's/^depends=//p' | tr ',' ' '); do
    add_module "$moddir" "$stage" "$dep"
  done
  echo "$name.ko" >>"$stage/modules/order"
}

build_initramfs() {
  local series=$1 dir=$cache/$1 stage=$cache/$1/initramfs
  local release moddir m
  release=$(cat "$dir/release")
  moddir=$(ls -d "$dir"/root/lib/modules/"$release" "$dir"/root/usr/lib/modules/"$release" 2>/dev/null | head -1)
  rm -rf "$stage" && mkdir -p "$stage"/{bin,proc,sys,dev,modules,newroot}
  cp /bin/busybox "$stage/bin/busybox"
  cp "$root/test/vm/init" "$stage/init" && chmod 755 "$stage/init"
  : >"$stage/modules/order"
  for m in virtio_pci virtio_blk loop; do add_module "$moddir" "$stage" "$m"; done
  (cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1) >"$dir/initramfs.gz"
  rm -rf "$stage"
}

# --- one kernel in qemu ------------------------------------------------------
total_passed=0 total_failed=0 total_skipped=0
record() {
  local name=$1 passed=$2 failed=$3 skipped=$4 seconds=$5
  echo "kernel-matrix: $name $passed passed, $failed failed, $skipped skipped ($seconds s)"
  total_passed=$((total_passed + passed)) total_failed=$((total_failed + failed)) total_skipped=$((total_skipped + skipped))
}

run_vm() {
  local series=$1 dir=$cache/$1 out=$cache/$1/console.log start=$SECONDS
  build_initramfs "$series" || { record "$series" 0 1 0 0; return; }
  log "booting $(cat "$dir/release") (TCG, timeout ${vm_timeout}s; console: $out)"
  timeout -k 10 "$vm_timeout" qemu-system-x86_64 -accel tcg -m 2048 -smp 2 -nographic -no-reboot \
    -kernel "$dir/vmlinuz" -initrd "$dir/initramfs.gz" \
    -append "console=ttyS0 panic=-1 quiet loglevel=3" \
    -drive "file=$cache/rootfs.ext4,format=raw,if=virtio" -snapshot \
    -nic none -serial stdio -monitor none </dev/null >"$out" 2>&1
  local rc=$? line caps
  line=$(grep -a 'kernel-matrix: RESULT' "$out" | tail -1 | tr -d '\r')
  caps=$(grep -a 'kernel-matrix: CAPS' "$out" | tail -1 | tr -d '\r')
  [ -n "$caps" ] && echo "kernel-matrix: $series capabilities() ${caps#*CAPS }"
  if [[ $line =~ passed=([0-9]+)\ failed=([0-9]+)\ skipped=([0-9]+) ]]; then
    record "$series ($(cat "$dir/release"))" "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "${BASH_REMATCH[3]}" $((SECONDS - start))
  else
    log "$series: no result line (qemu exit $rc); last console lines:"
    tail -20 "$out" >&2
    record "$series" 0 1 0 $((SECONDS - start))
  fi
  # Failures, for the log: jest's own summary lines.
  grep -a -E '^\s+●|^(PASS|FAIL) ' "$out" | grep -v '●.*›.*›' | head -60 >&2
}

run_host() {
  local start=$SECONDS report
  report=$(mktemp /tmp/fanotify-kernel-matrix-XXXXXX.json)
  log "host kernel $(uname -r): the same tests, here"
  (cd "$root" && FANOTIFY_REQUIRE_PRIVILEGED=1 node scripts/run-tests.js --ci --json --outputFile="$report" "${test_files[@]}" >"$cache/host.log" 2>&1)
  local counts
  counts=$(node -e '
    let r = {}; try { r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); } catch {}
    const failed = (r.numFailedTests ?? 0) + (r.numRuntimeErrorTestSuites ?? 0) + (r.numTotalTests === undefined ? 1 : 0);
    console.log(r.numPassedTests ?? 0, failed, (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0));' "$report")
  rm -f "$report"
  echo "kernel-matrix: host capabilities() $(cd "$root" && node -e 'console.log(JSON.stringify(require("./dist").capabilities()))')"
  # shellcheck disable=SC2086
  record "host ($(uname -r))" $counts $((SECONDS - start))
  grep -a -E '^\s+●|^(PASS|FAIL) ' "$cache/host.log" | grep -v '●.*›.*›' | head -60 >&2
}

# The kernel-facing test files the matrix runs (override: FANOTIFY_KERNEL_TESTS).
read -r -a test_files <<<"${FANOTIFY_KERNEL_TESTS:-test/capabilities.test.ts test/events.test.ts test/permission.test.ts test/marks.test.ts test/mark-options.test.ts test/ignore.test.ts test/recursive.test.ts test/unprivileged.test.ts}"

main() {
  local fetch_only= kernels=()
  for a in "$@"; do
    case $a in
      --fetch) fetch_only=1 ;;
      5.10 | 6.1 | 6.12 | host) kernels+=("$a") ;;
      *) log "unknown argument '$a' (kernels: ${all_kernels[*]})"; exit 2 ;;
    esac
  done
  [ ${#kernels[@]} -gt 0 ] || kernels=("${all_kernels[@]}")
  ensure_tools || { echo "0 passed, 1 failed"; exit 1; }
  for k in "${kernels[@]}"; do
    [ "$k" = host ] || fetch_kernel "$k" || { echo "0 passed, 1 failed"; exit 1; }
  done
  [ -n "$fetch_only" ] && exit 0
  local vms=0
  for k in "${kernels[@]}"; do [ "$k" = host ] || vms=1; done
  if [ $vms = 1 ]; then
    { [ -f "$root/build/Release/fanotify.node" ] || [ -d "$root/prebuilds" ]; } && [ -f "$root/dist/index.js" ] || { log "build first: npm run build"; echo "0 passed, 1 failed"; exit 1; }
    build_rootfs || { log "could not build the test root"; echo "0 passed, 1 failed"; exit 1; }
  fi
  for k in "${kernels[@]}"; do
    if [ "$k" = host ]; then run_host; else run_vm "$k"; fi
  done
  rm -f "$cache/rootfs.ext4"  # rebuilt from the current tree every run
  echo "${total_passed} passed, ${total_failed} failed, ${total_skipped} skipped"
  [ "$total_failed" = 0 ]
}

main "$@"
