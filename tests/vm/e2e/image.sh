#!/usr/bin/env bash
# Builds the disk image for a systemd VM: a Debian bookworm root with
# systemd (mmdebstrap; the tarball is cached under .cache/vm/ keyed by a hash
# of the package list and this script), the kernel's modules, and the test's
# guest side (agent, port proxy, network). Without an argument, the image of
# reliability case 8: the project installed with systemd/install.sh --root,
# /usr/bin/node. Prints the image's path.
# The image itself is cached too, keyed by everything that goes into it.
#
#   tests/vm/e2e/image.sh                   # kernel: newest with image + headers
#   KVER=6.1.0-56-amd64 tests/vm/e2e/image.sh
#   tests/vm/e2e/image.sh --for-deb         # the e2e test's image (below)
#
# --for-deb: the image tests/vm/e2e.test.ts installs the .deb into, with
# apt. Nothing of the project is installed and there is no
# /usr/bin/node (the test's nodejs package brings it); the root has dkms and
# the headers of the kernel it boots (linux-headers-KVER, from the mirror), so
# the package's postinst builds the module as on a user's machine; the guest
# agent runs on its own copy of node. Its tarball and image are cached apart
# from the other flavour's (bookworm-deb-KEY.tar, .cache/vm/deb/).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
CACHE=${NLB_VM_CACHE:-$ROOT/.cache/vm}
WORK=${NLB_VM_WORK:-$CACHE/e2e}
MIRROR=${NLB_VM_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${NLB_VM_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
# The guest's packages. curl and iproute2 are used by the test in the guest.
# libnss-systemd resolves DynamicUser= names (ps shows "nlbridge").
PACKAGES=(systemd systemd-sysv libnss-systemd udev kmod curl iproute2 procps libstdc++6 e2fsprogs)
FLAVOUR=e2e
if [[ ${1:-} == --for-deb ]]; then
	FLAVOUR=deb
	WORK=${NLB_VM_WORK:-$CACHE/deb}
elif [[ -n ${1:-} ]]; then
	echo "image.sh: error: unknown argument '$1'" >&2
	exit 1
fi

log() { echo "image.sh: $*" >&2; }
die() {
	echo "image.sh: error: $*" >&2
	exit 1
}
t0=$(date +%s)
((EUID == 0)) || die "needs root (mmdebstrap, file ownership in the image)"
for tool in mmdebstrap mkfs.ext4 depmod; do
	command -v "$tool" >/dev/null || die "'$tool' is missing: sudo npm run prerequisites"
done

if [[ -z ${KVER:-} ]]; then
	KVER=$(for img in /boot/vmlinuz-*; do
		v=${img#/boot/vmlinuz-}
		[[ -d /usr/src/linux-headers-$v && -d /lib/modules/$v/kernel ]] && echo "$v"
	done | sort -V | tail -n 1)
fi
[[ -n $KVER && -r /boot/vmlinuz-$KVER && -r /boot/initrd.img-$KVER && -d /lib/modules/$KVER/kernel ]] ||
	die "no kernel with /boot/vmlinuz-VER, /boot/initrd.img-VER and /lib/modules/VER (KVER='${KVER:-}'): sudo npm run prerequisites"

# The package's Depends that bookworm satisfies (dkms), and the headers DKMS
# builds against: they name the kernel, so KVER is part of the key below.
[[ $FLAVOUR == deb ]] && PACKAGES+=(dkms "linux-headers-$KVER")

# --- the root file system, cached ------------------------------------------
mkdir -p "$CACHE"
KEY=$( (
	printf '%s\n' "${PACKAGES[@]}" "$MIRROR" "$SECURITY_MIRROR"
	sed -n '/^# --- the root file system/,/^# --- end of the cached part/p' "$0"
) | sha256sum | cut -c1-16)
PREFIX=bookworm
[[ $FLAVOUR == deb ]] && PREFIX=bookworm-deb
TARBALL=$CACHE/$PREFIX-$KEY.tar
if [[ ! -s $TARBALL ]]; then
	log "building the bookworm root file system ($TARBALL)"
	tb=$(date +%s)
	# Only the Debian mirrors: no other network access is needed or allowed.
	mmdebstrap --variant=apt --mode=root --format=tar --quiet \
		--include="$(
			IFS=,
			echo "${PACKAGES[*]}"
		)" \
		--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
		--dpkgopt='path-exclude=/usr/share/locale/*' \
		bookworm "$TARBALL.tmp" \
		"deb $MIRROR bookworm main" \
		"deb $MIRROR bookworm-updates main" \
		"deb $SECURITY_MIRROR bookworm-security main" >&2 ||
		die "mmdebstrap failed"
	mv "$TARBALL.tmp" "$TARBALL"
	log "root file system built in $(($(date +%s) - tb)) s"
	# Older tarballs of this flavour are stale (the other flavour's are not).
	if [[ $FLAVOUR == deb ]]; then
		find "$CACHE" -maxdepth 1 -name 'bookworm-deb-*.tar' ! -name "$PREFIX-$KEY.tar" -delete
	else
		find "$CACHE" -maxdepth 1 -name 'bookworm-*.tar' ! -name 'bookworm-deb-*.tar' ! -name "$PREFIX-$KEY.tar" -delete
	fi
fi
# --- end of the cached part ---------------------------------------------------

# --- the disk image, cached by everything that goes into it -----------------
# The VM boots it with -snapshot (tests/vm/e2e/vm.ts), so it stays as built
# and each QEMU started on it (a test file's) starts from the image as built;
# a reboot inside one QEMU keeps what its guest wrote (Vm.reboot).
IMG=$WORK/disk.img
mkdir -p "$WORK"
# The deb flavour holds none of the project (the test installs its .deb), only
# the guest side, so a change to the daemon does not rebuild it.
if [[ $FLAVOUR == deb ]]; then
	INPUTS=(tests/vm/e2e/guest dist/tests/vm/e2e/guest)
else
	INPUTS=(module systemd cli/completion.bash tests/vm/e2e/guest dist/addon dist/bin dist/cli dist/daemon
		dist/tests/vm/e2e/guest build/Release/nlbridge_netlink.node package.json package-lock.json
		openapi.yaml asyncapi.yaml)
fi
IMG_KEY=$( (
	echo "$FLAVOUR $TARBALL $KVER"
	sha256sum "$0"
	stat -c '%n %s %Y' "$(command -v node)"
	[[ -z ${NLB_VM_UNIT_DROPIN:-} ]] || sha256sum "$NLB_VM_UNIT_DROPIN"
	cd "$ROOT" && find "${INPUTS[@]}" -type f ! -name '*.o' ! -name '*.ko' ! -name '*.mod*' \
		! -name '.*' ! -name 'Module.symvers' ! -name 'modules.order' -print0 2>/dev/null |
		sort -z | xargs -0 sha256sum
) | sha256sum | cut -c1-16)
if [[ -s $IMG && $(cat "$IMG.key" 2>/dev/null) == "$IMG_KEY" ]]; then
	log "image up to date (key $IMG_KEY): $IMG (kernel $KVER)"
	echo "KVER=$KVER"
	echo "IMG=$IMG"
	exit 0
fi

STAGE=$WORK/root
rm -rf "$STAGE"
mkdir -p "$STAGE"
tar -xf "$TARBALL" -C "$STAGE"

# The kernel's modules: everything but the large driver families a VM without
# graphics, sound or wireless never loads (virtio, networking and file
# systems stay).
log "kernel modules for $KVER"
mkdir -p "$STAGE/usr/lib/modules/$KVER"
(cd "/lib/modules/$KVER" && tar -cf - \
	--exclude='kernel/drivers/gpu' --exclude='kernel/drivers/media' --exclude='kernel/sound' \
	--exclude='kernel/drivers/net/wireless' --exclude='kernel/drivers/infiniband' \
	--exclude='kernel/drivers/staging' --exclude='kernel/drivers/scsi' --exclude='kernel/drivers/iio' \
	--exclude='kernel/drivers/bluetooth' --exclude='kernel/net/bluetooth' --exclude='kernel/net/mac80211' \
	--exclude='kernel/net/wireless' --exclude='kernel/drivers/hid' --exclude='kernel/drivers/usb' \
	--exclude='build' --exclude='source' --exclude='updates' --exclude='extra' .) |
	tar -xf - -C "$STAGE/usr/lib/modules/$KVER"

# Node: the host's binary (NodeSource, links only glibc/libstdc++, which
# bookworm has). Checked to run in the guest's root before we go on. The deb
# flavour keeps it out of /usr/bin: there only the nodejs package the test
# installs may satisfy the package's dependency and the unit's /usr/bin/node.
NODE=$(command -v node)
GUEST_NODE=/usr/bin/node
[[ $FLAVOUR == deb ]] && GUEST_NODE=/usr/local/lib/nlbridge-test/node
install -D -m 0755 "$NODE" "$STAGE$GUEST_NODE"
chroot "$STAGE" "$GUEST_NODE" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
	die "$NODE does not run in the bookworm root (or is older than 20)"

if [[ $FLAVOUR == e2e ]]; then
	# The project, exactly as a user installs it.
	log "systemd/install.sh --root $STAGE --kernel $KVER"
	"$ROOT/systemd/install.sh" --root "$STAGE" --kernel "$KVER" >&2
else
	# Offline: apt knows only the local repository the test mounts.
	rm -f "$STAGE/etc/apt/sources.list"
	rm -rf "$STAGE/etc/apt/sources.list.d"
	install -d "$STAGE/etc/apt/sources.list.d" "$STAGE/srv/nlbridge-repo"
	echo 'deb [trusted=yes] file:/srv/nlbridge-repo ./' >"$STAGE/etc/apt/sources.list.d/nlbridge-test.list"
	[[ -L $STAGE/lib/modules/$KVER/build && -e $STAGE/usr/src/linux-headers-$KVER/Makefile ]] ||
		die "linux-headers-$KVER did not give /lib/modules/$KVER/build"
fi

# --- the test's side of the guest ------------------------------------------
G=$HERE/guest
echo nlbridge-e2e >"$STAGE/etc/hostname"
printf '/dev/vda / ext4 rw,noatime 0 1\n' >"$STAGE/etc/fstab"
passwd -R "$STAGE" -d root >/dev/null
install -D -m 0644 "$G/10-eth.network" "$STAGE/etc/systemd/network/10-eth.network"
AGENT=$ROOT/dist/tests/vm/e2e/guest/agent.js # tsc output of guest/agent.ts
[[ -f $AGENT ]] || die "$AGENT is missing: run tsc -p tsconfig.json (npm test does)"
install -D -m 0644 "$AGENT" "$STAGE/usr/local/lib/nlbridge-test/agent.js"
for u in nlbridge-test-agent.service nlbridge-test-proxy.socket nlbridge-test-proxy.service; do
	install -m 0644 "$G/$u" "$STAGE/etc/systemd/system/$u"
done
if [[ $FLAVOUR == deb ]]; then
	install -d "$STAGE/etc/systemd/system/nlbridge-test-agent.service.d"
	printf '[Service]\nExecStart=\nExecStart=%s /usr/local/lib/nlbridge-test/agent.js 7000\n' "$GUEST_NODE" \
		>"$STAGE/etc/systemd/system/nlbridge-test-agent.service.d/node.conf"
fi
# Debugging aid only (never set by the test): a drop-in for nlbridge.service.
if [[ -n ${NLB_VM_UNIT_DROPIN:-} ]]; then
	install -D -m 0644 "$NLB_VM_UNIT_DROPIN" "$STAGE/etc/systemd/system/nlbridge.service.d/90-debug.conf"
	log "debug drop-in $NLB_VM_UNIT_DROPIN installed"
fi
systemctl --root="$STAGE" enable systemd-networkd.service nlbridge-test-agent.service nlbridge-test-proxy.socket >/dev/null 2>&1
# Nothing in this VM needs them, and they cost seconds of emulated boot.
systemctl --root="$STAGE" mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
	systemd-networkd-wait-online.service fstrim.timer dpkg-db-backup.timer >/dev/null 2>&1 || true

# Built aside and renamed: a VM still running on the old image keeps its file.
rm -f "$IMG.key" "$IMG.tmp"
truncate -s 3G "$IMG.tmp"
mkfs.ext4 -q -F -L nlbridge-e2e -E lazy_itable_init=1,lazy_journal_init=1 -d "$STAGE" "$IMG.tmp" ||
	die "mkfs.ext4 -d failed"
mv "$IMG.tmp" "$IMG"
echo "$IMG_KEY" >"$IMG.key"
rm -rf "$STAGE"
log "image ready in $(($(date +%s) - t0)) s: $IMG (kernel $KVER)"
echo "KVER=$KVER"
echo "IMG=$IMG"
