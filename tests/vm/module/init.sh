#!/bin/busybox sh
# /init of the test initramfs: set up a minimal system, run the scenario,
# power off. Everything the scenario prints goes to the serial console.
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev /tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
echo "guest: $(uname -r), $(nproc) cpu(s)"
start=$(cut -d. -f1 /proc/uptime)
sh /scenario.sh 2>&1
echo "guest: scenario took $(($(cut -d. -f1 /proc/uptime) - start)) s"
sync
poweroff -f
