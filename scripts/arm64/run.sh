#!/usr/bin/env bash
# `make test-arm64`: this checkout on arm64, under emulation. Builds an arm64 Python from Debian's
# packages (run by qemu-user with -L SYSROOT, no binfmt needed), installs the package with PyPI's
# aarch64 wheels by pip running inside the emulation, then runs scripts/arm64/check.py there.
# Downloads, the sysroot and the venv are kept in .arm64/ (ARM64_CACHE); a rerun reuses them.
# Needs a Debian 12 (bookworm) host (the package names below are bookworm's); it adds arm64 to
# dpkg's architectures, so apt also fetches arm64 package lists from then on.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=$(mkdir -p "${ARM64_CACHE:-$ROOT/.arm64}" && cd "${ARM64_CACHE:-$ROOT/.arm64}" && pwd)
SYSROOT=$CACHE/sysroot
BARE=$CACHE/sysroot-bare # the sysroot without the ARM /proc/cpuinfo below
VENV=$CACHE/venv
# torch 2.10.0 is the newest release whose aarch64 wheel on PyPI is the CPU build: from 2.11.0
# on it is a CUDA build that pulls several GB of CUDA packages on any Linux.
TORCH_SPEC=${ARM64_TORCH_SPEC:-torch==2.10.0}
ORT_SPEC=${ARM64_ORT_SPEC:-onnxruntime}
# The emulated CPU: a Cortex-A76 (Raspberry Pi 5; also RK3588's big cores) has NEON and dot
# product but no SVE, SME or i8mm, so the libraries pick the kernels such a box runs. qemu's
# other models: cortex-a72 (Pi 4), cortex-a53, neoverse-n1, max (every feature qemu has).
CPU=${ARM64_CPU:-cortex-a76}
# Debian's python3.11 and what it links to (libstdc++6 and libgcc-s1 for torch and onnxruntime);
# pip comes from Debian's pip wheel.
DEBS=(libc6 libgcc-s1 gcc-12-base libstdc++6 libcrypt1 libbz2-1.0 libdb5.3 libexpat1 libffi8
	libssl3 liblzma5 libncursesw6 libtinfo6 libreadline8 libsqlite3-0 libuuid1 libnsl2 libtirpc3
	libgssapi-krb5-2 libk5crypto3 libkeyutils1 libkrb5-3 libkrb5support0 libcom-err2 zlib1g
	libpython3.11-minimal libpython3.11-stdlib python3.11-minimal python3.11)
SECONDS=0

say() { printf '== [%d:%02d] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

host_tools() {
	command -v qemu-aarch64 >/dev/null && command -v dpkg-deb >/dev/null && return
	say "installing qemu-user"
	as_root apt-get update -qq
	DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends qemu-user >/dev/null
}

arm64_archive() {
	if ! dpkg --print-foreign-architectures | grep -qx arm64; then
		say "adding Debian's arm64 architecture"
		as_root dpkg --add-architecture arm64
	fi
	if ! apt-cache show libc6:arm64 >/dev/null 2>&1; then
		as_root apt-get update -qq
	fi
}

# One Cortex-A76 (Raspberry Pi 5) record per host CPU, as an arm64 kernel prints them. qemu-user
# 7.2 shows the guest the x86 host's /proc/cpuinfo, on which onnxruntime >= 1.28 crashes at import
# (README, ARM64); with -L, the guest's open("/proc/cpuinfo") finds this file first.
arm_cpuinfo() {
	local cpu
	for ((cpu = 0; cpu < $(nproc); cpu++)); do
		printf 'processor\t: %d\nBogoMIPS\t: 108.00\n' "$cpu"
		printf 'Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid'
		printf ' asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\nCPU architecture: 8\n'
		printf 'CPU variant\t: 0x4\nCPU part\t: 0xd0b\nCPU revision\t: 1\n\n'
	done
}

sysroot() {
	[ -f "$SYSROOT/.complete" ] && return
	say "arm64 sysroot from Debian packages"
	rm -rf "$SYSROOT" "$BARE" "$CACHE/debs"
	mkdir -p "$CACHE/debs" "$SYSROOT/proc" "$BARE"
	# (as root, apt warns that it downloads without its _apt sandbox user: expected here)
	(cd "$CACHE/debs" && apt-get download -qq "${DEBS[@]/%/:arm64}" python3-pip-whl \
		2> >(grep -v "unsandboxed as root" >&2))
	for deb in "$CACHE"/debs/*.deb; do dpkg-deb -x "$deb" "$SYSROOT"; done
	arm_cpuinfo >"$SYSROOT/proc/cpuinfo"
	for top in "$SYSROOT"/*; do
		[ "$(basename "$top")" = proc ] || ln -s "$top" "$BARE/"
	done
	touch "$SYSROOT/.complete"
}

# A venv whose python is a host script running the arm64 interpreter under qemu-aarch64, with -0
# giving it its own path as argv[0]: Python then finds the venv, and the worker processes joblib
# starts from sys.executable (and console scripts, by their #! line) run under qemu too.
venv() {
	if [ ! -f "$VENV/.complete" ]; then
		say "arm64 venv"
		rm -rf "$VENV"
		qemu-aarch64 -L "$SYSROOT" "$SYSROOT/usr/bin/python3.11" -m venv --without-pip "$VENV"
		rm "$VENV"/bin/python*
		ln -s python "$VENV/bin/python3"
	fi
	cat >"$VENV/bin/python" <<-EOF
		#!/bin/sh
		exec qemu-aarch64 -cpu "$CPU" -L "$SYSROOT" -0 "\$0" "$SYSROOT/usr/bin/python3.11" "\$@"
	EOF
	chmod +x "$VENV/bin/python"
	[ -f "$VENV/.complete" ] && return
	local wheel
	wheel=$(echo "$SYSROOT"/usr/share/python-wheels/pip-*.whl)
	"$VENV/bin/python" "$wheel/pip" install -q --disable-pip-version-check "$wheel"
	touch "$VENV/.complete"
}

install() {
	say "installing $TORCH_SPEC, $ORT_SPEC and this checkout (pip under emulation)"
	# pip reinstalls a project given as a folder every time, so a rerun tests this checkout's code
	"$VENV/bin/python" -m pip install -q --disable-pip-version-check \
		--cache-dir "$CACHE/pip-cache" "$TORCH_SPEC" "$ORT_SPEC" "$ROOT" 2>&1 |
		{ grep -v "is ignored: it is neither a file nor a directory" || true; }
}

host_tools
arm64_archive
sysroot
venv
install
say "checks under emulation (qemu-aarch64 -cpu $CPU)"
status=0
ARM64_BARE_ROOT=$BARE ARM64_CPU=$CPU "$VENV/bin/python" "$ROOT/scripts/arm64/check.py" || status=$?
say "test-arm64 took $((SECONDS / 60)) min $((SECONDS % 60)) s"
exit "$status"
