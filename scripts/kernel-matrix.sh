#!/usr/bin/env bash
# The kernel matrix: runs the kernel-facing tests on Debian's cloud kernels
# (5.10, 6.1, 6.12), each booted in qemu (TCG) from a small initramfs, and on
# this machine's own kernel; and on an emulated arm64 machine (6.12-arm64:
# Debian's arm64 cloud kernel in qemu-system-aarch64, Node's official arm64
# binary, the arm64 glibc prebuild).
#
#   scripts/kernel-matrix.sh            all: 5.10 6.1 6.12 host
#   scripts/kernel-matrix.sh 6.12-arm64 the arm64 machine (not in "all": it needs
#                                       npm run prebuilds -- linux-arm64-glibc)
#   scripts/kernel-matrix.sh 5.10 6.1   just those
#   scripts/kernel-matrix.sh --fetch    install tools and download kernels only
#
# Installs what it needs with apt-get (qemu-system-x86, busybox-static, cpio;
# qemu-system-arm for 6.12-arm64);
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
declare -A SUITE=([5.10]=bullseye [6.1]=bookworm [6.12]=trixie [6.12-arm64]=trixie)
all_kernels=(5.10 6.1 6.12 host)
# The arm64 machine: its kernel, userland and Node come from arm64 packages.
arm64_node_major=${FANOTIFY_ARM64_NODE:-24}
series_arch() { case $1 in *-arm64) echo arm64 ;; *) echo amd64 ;; esac; }

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
  [ -n "${want_arm64:-}" ] && ! command -v qemu-system-aarch64 >/dev/null && missing+=(qemu-system-arm)
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
  -o APT::Architectures=amd64,arm64 -o Acquire::Languages=none -o Debug::NoLocking=true -o APT::Sandbox::User=root)

apt_private_update() {
  [ -n "${apt_updated:-}" ] && return 0
  mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial"
  cat >"$APT_DIR/sources.list" <<'EOF'
# Written by scripts/kernel-matrix.sh: the suites its kernels come from.
deb [arch=amd64] http://deb.debian.org/debian bullseye main
deb [arch=amd64] http://deb.debian.org/debian-security bullseye-security main
deb [arch=amd64] http://deb.debian.org/debian bookworm main
deb [arch=amd64,arm64] http://deb.debian.org/debian trixie main
EOF
  apt-get "${apt_opts[@]}" update -qq >/dev/null || { log "apt-get update (kernel suites) failed"; return 1; }
  apt_updated=1
}

# The concrete image package the newest linux-image-cloud-<arch> of a series
# depends on, e.g. 5.10 -> linux-image-5.10.0-XX-cloud-amd64.
image_package() {
  local series=${1%-arm64} arch
  arch=$(series_arch "$1")
  apt-cache "${apt_opts[@]}" show "linux-image-cloud-$arch:$arch" | awk -v s="$series." '
    /^Version:/ { v = $2 }
    /^Depends:/ && index(v, s) == 1 { split($0, d, /[ ,]+/); print v, d[2] }' |
    sort -V | tail -1 | cut -d' ' -f2 | sed "s/\$/:$arch/"
}

# Unpacks the kernel of a series into $cache/<series>/ (once): vmlinuz, modules.
fetch_kernel() {
  local series=$1 dir=$cache/$1
  [ -f "$dir/ok" ] && return 0
  apt_private_update || return 1
  local pkg
  pkg=$(image_package "$series")
  [ -n "$pkg" ] || { log "no linux-image-cloud-$(series_arch "$series") for $series in ${SUITE[$series]}"; return 1; }
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

# The arm64 userland (once), unpacked into $cache/arm64-sysroot: busybox,
# glibc and the C++ runtime Node links, coreutils' true, setpriv and mke2fs
# with their libraries (the tests run copies of /bin/true, children as
# nobody, and make ext4 images for what tmpfs cannot do).
ARM64_SYSROOT=$cache/arm64-sysroot
arm64_debs=(busybox-static libc6 libstdc++6 libgcc-s1 coreutils util-linux libcap-ng0 libacl1 libattr1 libselinux1 libpcre2-8-0 libgmp10 libssl3t64 libzstd1 liblzma5 libsystemd0 libcap2 e2fsprogs libext2fs2t64 libcom-err2 libss2 libblkid1 libuuid1)
fetch_arm64_userland() {
  [ "$(cat "$ARM64_SYSROOT/ok" 2>/dev/null)" = "${arm64_debs[*]}" ] && return 0
  apt_private_update || return 1
  rm -rf "$ARM64_SYSROOT" && mkdir -p "$ARM64_SYSROOT/deb"
  log "downloading arm64 ${arm64_debs[*]}"
  (cd "$ARM64_SYSROOT/deb" && apt-get "${apt_opts[@]}" download -qq "${arm64_debs[@]/%/:arm64}" >/dev/null) || { log "apt-get download (arm64 userland) failed"; return 1; }
  local deb
  for deb in "$ARM64_SYSROOT"/deb/*.deb; do dpkg-deb -x "$deb" "$ARM64_SYSROOT" || return 1; done
  rm -rf "$ARM64_SYSROOT/deb"
  echo "${arm64_debs[*]}" >"$ARM64_SYSROOT/ok"
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
# The same for an arm64 ELF file (ldd cannot run it): the libraries its
# NEEDED entries name, recursively, from the arm64 sysroot into the stage's
# /usr/lib/aarch64-linux-gnu (a directory the arm64 loader searches).
copy_arm64_libs() {
  local stage=$1 file=$2 lib src
  for lib in $(readelf -d "$file" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    [ -e "$stage/usr/lib/aarch64-linux-gnu/$lib" ] && continue
    src=$(ls "$ARM64_SYSROOT"/usr/lib/aarch64-linux-gnu/"$lib" "$ARM64_SYSROOT"/lib/aarch64-linux-gnu/"$lib" 2>/dev/null | head -1)
    [ -n "$src" ] || { log "arm64: $lib (needed by ${file##*/}) is not in the sysroot"; return 1; }
    install -D -m 755 "$(readlink -f "$src")" "$stage/usr/lib/aarch64-linux-gnu/$lib"
    copy_arm64_libs "$stage" "$stage/usr/lib/aarch64-linux-gnu/$lib" || return 1
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
  copy_with_libs "$stage" "$(command -v debugfs)"  # fs-error.test.ts corrupts ext4 images as LTP's fanotify22 does
  # The tests copy /bin/true and run the copy: a busybox link would not run.
  rm -f "$stage/bin/true" && cp /bin/true "$stage/bin/true" && copy_libs "$stage" /bin/true
  ln -sf mke2fs "$stage$(dirname "$(command -v mke2fs)")/mkfs.ext4"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n' >"$stage/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$stage/etc/group"
  chmod 1777 "$stage/tmp"
  stage_package "$stage" || return 1
  # The addon as node-gyp-build finds it: a local build, or the prebuilds.
  if [ -f "$root/build/Release/fanotify.node" ]; then
    mkdir -p "$stage/pkg/build/Release" && cp -a "$root/build/Release/fanotify.node" "$stage/pkg/build/Release/"
  fi
  # The libraries native addons (ours, swc's) need beyond node's.
  local addon
  while IFS= read -r addon; do copy_libs "$stage" "$addon"; done < <(find "$stage/pkg" -name '*.node' -type f)
  printf '%s\n' "${test_files[@]}" >"$stage/pkg/test/vm/files"
  make_image "$stage" "$image"
}

# The package at $1/pkg: package.json, dist/, lib/, test/, node_modules (jest
# runs there as here), the prebuilds, scripts/.
stage_package() {
  local stage=$1
  (cd "$root" && cp -a package.json jest.config.js tsconfig*.json dist lib test node_modules "$stage/pkg/") || return 1
  [ -d "$root/prebuilds" ] && cp -a "$root/prebuilds" "$stage/pkg/"
  [ -d "$root/scripts" ] && cp -a "$root/scripts" "$stage/pkg/"
  return 0
}

make_image() {
  local stage=$1 image=$2
  local mb=$(( $(du -sm "$stage" | cut -f1) * 3 / 2 + 256 ))
  mkfs.ext4 -q -F -L fanotify-vm -d "$stage" "$image" "${mb}M" || return 1
  rm -rf "$stage"
}

# The arm64 test root: the same layout with arm64 binaries (busybox, Node's
# official arm64 binary, true, setpriv, their libraries from the sysroot) and
# the package with NO build/: node-gyp-build must pick
# prebuilds/linux-arm64/node.napi.glibc.node. jest's transformer (swc) gets
# its arm64 binding.
build_rootfs_arm64() {
  local stage=$cache/rootfs-arm64 image=$cache/rootfs-arm64.ext4 node a binding version dir
  rm -rf "$stage" "$image"
  [ -f "$root/prebuilds/linux-arm64/node.napi.glibc.node" ] || { log "no arm64 glibc prebuild: npm run prebuilds -- linux-arm64-glibc"; return 1; }
  node=$(cd "$root" && node -e 'console.log(require("./scripts/tools").nodeBinary(process.argv[1], "arm64"))' "$arm64_node_major" | tail -1) || return 1
  mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,usr/lib/aarch64-linux-gnu,lib,etc,proc,sys,dev,tmp,root,pkg}
  cp "$(ls "$ARM64_SYSROOT"/usr/bin/busybox "$ARM64_SYSROOT"/bin/busybox 2>/dev/null | head -1)" "$stage/bin/busybox"
  for a in $(/bin/busybox --list); do [ -e "$stage/bin/$a" ] || ln -s busybox "$stage/bin/$a"; done
  install -m 755 "$(readlink -f "$ARM64_SYSROOT/usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1")" "$stage/usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1"
  ln -s ../usr/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1 "$stage/lib/ld-linux-aarch64.so.1"
  install -m 755 "$node" "$stage/usr/bin/node" && rm -f "$stage/bin/node" || return 1
  rm -f "$stage/bin/true" && install -m 755 "$ARM64_SYSROOT/usr/bin/true" "$stage/bin/true"
  rm -f "$stage/bin/setpriv" "$stage/usr/bin/setpriv" && install -m 755 "$ARM64_SYSROOT/usr/bin/setpriv" "$stage/usr/bin/setpriv"
  install -m 755 "$ARM64_SYSROOT/usr/sbin/mke2fs" "$stage/usr/sbin/mke2fs" && ln -s mke2fs "$stage/usr/sbin/mkfs.ext4" || return 1
  rm -f "$stage/bin/debugfs" && install -m 755 "$ARM64_SYSROOT/usr/sbin/debugfs" "$stage/usr/sbin/debugfs" || return 1  # fs-error.test.ts
  for a in usr/bin/node bin/true usr/bin/setpriv usr/sbin/mke2fs usr/sbin/debugfs; do copy_arm64_libs "$stage" "$stage/$a" || return 1; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n' >"$stage/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$stage/etc/group"
  chmod 1777 "$stage/tmp"
  stage_package "$stage" || return 1
  rm -rf "$stage/pkg/build"
  # jest's native parts (swc's transformer, unrs' resolver) for arm64, at
  # the versions of the x64 ones npm installed here.
  for binding in @swc/core-linux-arm64-gnu @unrs/resolver-binding-linux-arm64-gnu; do
    version=$(node -p 'require(process.argv[1]).version' "$root/node_modules/${binding/arm64/x64}/package.json") || return 1
    dir=$(cd "$root" && node -e 'const [b, v] = process.argv.slice(1); console.log(require("./scripts/tools").ensurePackage(b, v, b.replace("/", "+") + "-" + v, ["--force"]))' "$binding" "$version" | tail -1) || return 1
    rm -rf "$stage/pkg/node_modules/$binding" && cp -a "$dir" "$stage/pkg/node_modules/$binding" || return 1
  done
  local addon
  while IFS= read -r addon; do
    # musl builds need musl's libc.so, which this glibc test root has no use for.
    case $addon in *.musl.node) continue ;; esac
    readelf -h "$addon" 2>/dev/null | grep -q AArch64 && { copy_arm64_libs "$stage" "$addon" || return 1; }
  done < <(find "$stage/pkg" -name '*.node' -type f)
  printf '%s\n' "${arm64_test_files[@]}" >"$stage/pkg/test/vm/files"
  make_image "$stage" "$image"
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
  local modules=(virtio_pci virtio_blk loop)
  if [ "$(series_arch "$series")" = arm64 ]; then
    cp "$(ls "$ARM64_SYSROOT"/usr/bin/busybox "$ARM64_SYSROOT"/bin/busybox 2>/dev/null | head -1)" "$stage/bin/busybox"
    modules=(virtio_mmio virtio_pci virtio_blk ext4 loop)
  else
    cp /bin/busybox "$stage/bin/busybox"
  fi
  cp "$root/test/vm/init" "$stage/init" && chmod 755 "$stage/init"
  : >"$stage/modules/order"
  for m in "${modules[@]}"; do add_module "$moddir" "$stage" "$m"; done
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
  local machine=(qemu-system-x86_64) console=ttyS0 image=$cache/rootfs.ext4
  if [ "$(series_arch "$series")" = arm64 ]; then
    # pauth-impdef: QEMU's cheap pointer-authentication hash (the
    # architected one is most of TCG's time on arm64 code).
    machine=(qemu-system-aarch64 -M virt -cpu max,pauth-impdef=on) console=ttyAMA0 image=$cache/rootfs-arm64.ext4
  fi
  timeout -k 10 "$vm_timeout" "${machine[@]}" -accel tcg -m 2048 -smp 2 -nographic -no-reboot \
    -kernel "$dir/vmlinuz" -initrd "$dir/initramfs.gz" \
    -append "console=$console panic=-1 quiet loglevel=3" \
    -drive "file=$image,format=raw,if=virtio" -snapshot \
    -nic none -serial stdio -monitor none </dev/null >"$out" 2>&1
  local rc=$? line caps addon
  line=$(grep -a 'kernel-matrix: RESULT' "$out" | tail -1 | tr -d '\r')
  caps=$(grep -a 'kernel-matrix: CAPS' "$out" | tail -1 | tr -d '\r')
  [ -n "$caps" ] && echo "kernel-matrix: $series capabilities() ${caps#*CAPS }"
  addon=$(grep -a 'kernel-matrix: ADDON' "$out" | tail -1 | tr -d '\r')
  addon=${addon#*ADDON }
  [ -n "$addon" ] && echo "kernel-matrix: $series addon ${addon}"
  # The arm64 machine is there to prove the arm64 glibc prebuild: anything
  # else loaded there is a failure.
  local wrong=0
  if [ "$(series_arch "$series")" = arm64 ] && [ "$addon" != /pkg/prebuilds/linux-arm64/node.napi.glibc.node ]; then
    log "$series: the addon loaded was not prebuilds/linux-arm64/node.napi.glibc.node"
    wrong=1
  fi
  if [[ $line =~ passed=([0-9]+)\ failed=([0-9]+)\ skipped=([0-9]+) ]]; then
    record "$series ($(cat "$dir/release"))" "${BASH_REMATCH[1]}" $((BASH_REMATCH[2] + wrong)) "${BASH_REMATCH[3]}" $((SECONDS - start))
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
read -r -a test_files <<<"${FANOTIFY_KERNEL_TESTS:-test/capabilities.test.ts test/events.test.ts test/permission.test.ts test/marks.test.ts test/mark-options.test.ts test/ignore.test.ts test/recursive.test.ts test/unprivileged.test.ts test/cache.test.ts test/pre-content.test.ts test/fs-error.test.ts test/mount-events.test.ts test/audit-rule.test.ts}"
# The arm64 machine runs the same files (about 2 minutes under TCG) unless
# FANOTIFY_ARM64_TESTS names others.
read -r -a arm64_test_files <<<"${FANOTIFY_ARM64_TESTS:-${test_files[*]}}"

main() {
  local fetch_only= kernels=()
  for a in "$@"; do
    case $a in
      --fetch) fetch_only=1 ;;
      5.10 | 6.1 | 6.12 | 6.12-arm64 | host) kernels+=("$a") ;;
      *) log "unknown argument '$a' (kernels: ${all_kernels[*]})"; exit 2 ;;
    esac
  done
  [ ${#kernels[@]} -gt 0 ] || kernels=("${all_kernels[@]}")
  local vms=0 k
  for k in "${kernels[@]}"; do
    case $k in host) ;; *-arm64) want_arm64=1 ;; *) vms=1 ;; esac
  done
  ensure_tools || { echo "0 passed, 1 failed"; exit 1; }
  for k in "${kernels[@]}"; do
    [ "$k" = host ] || fetch_kernel "$k" || { echo "0 passed, 1 failed"; exit 1; }
  done
  [ -n "${want_arm64:-}" ] && { fetch_arm64_userland || { echo "0 passed, 1 failed"; exit 1; }; }
  [ -n "$fetch_only" ] && exit 0
  if [ -n "${want_arm64:-}" ]; then
    [ -f "$root/dist/index.js" ] || { log "build first: npm run build"; echo "0 passed, 1 failed"; exit 1; }
    build_rootfs_arm64 || { log "could not build the arm64 test root"; echo "0 passed, 1 failed"; exit 1; }
  fi
  if [ $vms = 1 ]; then
    { [ -f "$root/build/Release/fanotify.node" ] || [ -d "$root/prebuilds" ]; } && [ -f "$root/dist/index.js" ] || { log "build first: npm run build"; echo "0 passed, 1 failed"; exit 1; }
    build_rootfs || { log "could not build the test root"; echo "0 passed, 1 failed"; exit 1; }
  fi
  for k in "${kernels[@]}"; do
    if [ "$k" = host ]; then run_host; else run_vm "$k"; fi
  done
  rm -f "$cache/rootfs.ext4" "$cache/rootfs-arm64.ext4"  # rebuilt from the current tree every run
  echo "${total_passed} passed, ${total_failed} failed, ${total_skipped} skipped"
  [ "$total_failed" = 0 ]
}

main "$@"
