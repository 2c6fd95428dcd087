#!/usr/bin/env bash
# Boots Debian's kernel under QEMU with a busybox initramfs holding
# dummy_netlink.ko, rr_nlk, ww_nlk and raw_nlk, and runs scenario.sh there.
# Prints the guest's PASS/FAIL lines and its final "RESULT: N passed, N
# failed"; exits 0 only when that line is there and N failed is 0.
#
#   tests/vm/module/run.sh            build everything, boot, run
#   KVER=6.1.0-56-amd64 tests/vm/module/run.sh
#   QEMU_TIMEOUT=300 ...              seconds before the guest is killed
#   MODE=abuse BURSTS=5 SENDERS=4 FRAMES=50000 tests/vm/module/run.sh
#                                     reliability case 9 (abuse.sh, abuse_nlk)
#                                     instead of scenario.sh
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
MODE=${MODE:-scenario}
case $MODE in
scenario) WORK=${WORK:-$ROOT/.cache/vm-module} ;;
abuse) WORK=${WORK:-$ROOT/.cache/vm-module-abuse} ;;
*)
	echo "run.sh: MODE=$MODE is neither scenario nor abuse" >&2
	exit 2
	;;
esac
QEMU_TIMEOUT=${QEMU_TIMEOUT:-240}

log() { echo "run.sh: $*" >&2; }
t0=$(date +%s)

# Installs nothing: the packages are tests/support/prerequisites.ts's
# (`sudo npm run prerequisites`), and the tests that call this skip without them.
for tool in qemu-system-x86_64 cc make cpio gzip; do
	command -v "$tool" >/dev/null || {
		log "'$tool' is missing: sudo npm run prerequisites"
		exit 1
	}
done
[[ -x /bin/busybox ]] || {
	log "/bin/busybox is missing (busybox-static): sudo npm run prerequisites"
	exit 1
}

# The newest kernel that has both an image to boot and headers to build for.
if [[ -z ${KVER:-} ]]; then
	for img in /boot/vmlinuz-*; do
		v=${img#/boot/vmlinuz-}
		[[ -d /usr/src/linux-headers-$v ]] && echo "$v"
	done | sort -V | tail -n 1 >"${TMPDIR:-/tmp}/nlb-kver.$$"
	KVER=$(cat "${TMPDIR:-/tmp}/nlb-kver.$$")
	rm -f "${TMPDIR:-/tmp}/nlb-kver.$$"
fi
[[ -n $KVER && -r /boot/vmlinuz-$KVER && -d /usr/src/linux-headers-$KVER ]] || {
	log "no kernel with both /boot/vmlinuz-VER and /usr/src/linux-headers-VER (KVER='$KVER'): sudo npm run prerequisites"
	exit 1
}
log "kernel $KVER"

# Build in a private copy: other tests may build module/ at the same time.
rm -rf "$WORK"
mkdir -p "$WORK/src" "$WORK/root/bin"
cp -r "$ROOT/module/Kbuild" "$ROOT/module/dummy_netlink.c" "$ROOT/module/include" "$WORK/src/"
make -s -C "/usr/src/linux-headers-$KVER" M="$WORK/src" W=1 KCFLAGS=-Werror modules >&2
CFLAGS=(-O2 -Wall -Wextra -Werror -std=gnu11 -static -I"$ROOT/module/include/uapi" -I"$ROOT/module/tools")
cc "${CFLAGS[@]}" -o "$WORK/root/bin/rr_nlk" "$ROOT/module/tools/rr_nlk.c"
cc "${CFLAGS[@]}" -o "$WORK/root/bin/ww_nlk" "$ROOT/module/tools/ww_nlk.c"
cc "${CFLAGS[@]}" -o "$WORK/root/bin/raw_nlk" "$HERE/raw_nlk.c"
# abuse: SLUB's consistency checks, red zones and poisoning, so a
# use-after-free or overflow in the module shows as "BUG kmalloc-..." in dmesg.
KERNEL_DEBUG=
if [[ $MODE == abuse ]]; then
	KERNEL_DEBUG=" slub_debug=FZP"
	cc "${CFLAGS[@]}" -o "$WORK/root/bin/abuse_nlk" "$HERE/abuse_nlk.c"
	printf 'BURSTS=%d\nSENDERS=%d\nFRAMES=%d\n' "${BURSTS:-5}" "${SENDERS:-4}" "${FRAMES:-50000}" >"$WORK/root/abuse.conf"
fi

cp /bin/busybox "$WORK/root/bin/busybox"
cp "$WORK/src/dummy_netlink.ko" "$WORK/root/"
install -m 0755 "$HERE/init.sh" "$WORK/root/init"
install -m 0644 "$HERE/$([[ $MODE == abuse ]] && echo abuse.sh || echo scenario.sh)" "$WORK/root/scenario.sh"
# Owned by root and readable by all inside the VM whatever umask and user
# built them (a checkout made with umask 077 gave 0700 tools, and the VM's
# unprivileged cases could not exec them).
chmod -R go+rX "$WORK/root"
(cd "$WORK/root" && find . | cpio -o -H newc -R 0:0 --quiet | gzip -1) >"$WORK/initramfs.cpio.gz"
log "built in $(($(date +%s) - t0)) s; booting (tcg, timeout ${QEMU_TIMEOUT}s)"

# -no-reboot turns the guest's power-off (or a panic, with panic=-1) into
# QEMU's exit.
set +e
timeout --foreground -k 5 "$QEMU_TIMEOUT" qemu-system-x86_64 \
	-accel tcg -m 512 -smp 2 -nographic -no-reboot -nodefaults -serial stdio \
	-kernel "/boot/vmlinuz-$KVER" -initrd "$WORK/initramfs.cpio.gz" \
	-append "console=ttyS0 panic=-1 quiet$KERNEL_DEBUG" </dev/null | tr -d '\r' | tee "$WORK/console.log"
qemu_rc=${PIPESTATUS[0]}
set -e
log "qemu exited with $qemu_rc after $(($(date +%s) - t0)) s in all"

result=$(grep -E '^RESULT: [0-9]+ passed, [0-9]+ failed$' "$WORK/console.log" | tail -n 1 || true)
if [[ -z $result ]]; then
	log "no RESULT line from the guest (see $WORK/console.log)"
	exit 1
fi
echo "${result#RESULT: }"
[[ $result =~ ,\ 0\ failed$ ]]
