#!/bin/sh
# Reliability case 9, inside the QEMU guest (run.sh MODE=abuse installs it as
# /scenario.sh): bursts of random frames from concurrent senders, with
# readers, one load of the module per burst and load/unload cycles between
# bursts; then once-only under load (4 senders x 10,000 messages to three
# r_grps groups; 3 x 300 to two); then dmesg must be clean. /abuse.conf sets BURSTS, SENDERS and
# FRAMES (per sender and burst). Prints PASS/FAIL lines, the figures
# ("FIGURE: ...") and "RESULT: N passed, N failed".

KO=/dummy_netlink.ko
. /abuse.conf
pass=0
fail=0
ok() { echo "PASS: $1"; pass=$((pass + 1)); }
ko() { echo "FAIL: $1${2:+ ($2)}"; fail=$((fail + 1)); }
sunreclaim() { sed -n 's/^SUnreclaim: *\([0-9]*\) kB/\1/p' /proc/meminfo; }
# Sockets of the unit other than the kernel's own (port 0).
user_socks() { awk '$2 == 25 && $3 != 0' /proc/net/netlink | wc -l; }

# Active objects of a slab cache.
slab_objs() { awk -v c="$1" '$1 == c { print $2 }' /proc/slabinfo; }

dmesg -n 1 # keep the console for the scenario's lines
dmesg_lines0=$(dmesg | wc -l)
slab0=$(sunreclaim)
skb0=$(slab_objs skbuff_head_cache)
t0=$(cut -d. -f1 /proc/uptime)
b=1
sent=0
cycles=0
while [ $b -le "$BURSTS" ]; do
	# A different group count per load: BCAST range checks follow it.
	case $((b % 4)) in
	1) ng=64 ;;
	2) ng=1024 ;;
	3) ng=32 ;;
	*) ng=200 ;;
	esac
	if ! insmod $KO r_grps=3 b_grp=5 period_ms=10 ngroups=$ng; then
		ko "burst${b}_insmod"
		b=$((b + 1))
		continue
	fi
	if abuse_nlk -r 3 -N $ng -S "$SENDERS" -n "$FRAMES" -s "$b" -B "$b" >/tmp/burst.out 2>&1; then
		ok "burst${b}_counters_consistent"
	else
		ko "burst${b}_counters_consistent"
	fi
	cat /tmp/burst.out
	n=$(sed -n 's/^burst [0-9]*: seed [0-9]*, [0-9]* senders, \([0-9]*\) frames.*/\1/p' /tmp/burst.out)
	sent=$((sent + ${n:-0}))
	[ "$(user_socks)" = 0 ] && ok "burst${b}_no_socket_left" || ko "burst${b}_no_socket_left" "$(cat /proc/net/netlink)"
	if rmmod dummy_netlink; then ok "burst${b}_rmmod"; else ko "burst${b}_rmmod"; fi
	# Load/unload cycles between bursts, the tick running at 10 ms.
	i=0
	while [ $i -lt 10 ]; do
		insmod $KO b_grp=7 period_ms=10 && usleep 30000 && rmmod dummy_netlink && cycles=$((cycles + 1))
		i=$((i + 1))
	done
	b=$((b + 1))
done
secs=$(($(cut -d. -f1 /proc/uptime) - t0))

# Once-only under load (issue 14): concurrent senders, every message to
# three groups of r_grps, all senders using the same seqs 1..N. Each
# message must be accepted once and its other two copies ignored.
stat() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" /tmp/stats.out; }
centis() { awk '{ printf "%d\n", $1 * 100 }' /proc/uptime; }
# once_load NAME SENDERS COUNT MASK COPIES: checks accepted and ignored.
once_load() {
	ww_nlk -s >/tmp/stats.out
	a0=$(stat accepted); i0=$(stat ignored); e0=$(stat errors)
	c0=$(centis)
	k=1
	while [ $k -le "$2" ]; do
		ww_nlk -g "$4" -c "$3" -m "$1-$k" >/tmp/once$k.out 2>&1 &
		k=$((k + 1))
	done
	wait
	c1=$(centis)
	ww_nlk -s >/tmp/stats.out
	acc=$(($(stat accepted) - a0)); ign=$(($(stat ignored) - i0)); err=$(($(stat errors) - e0))
	echo "ONCE: name=$1 senders=$2 messages=$(($2 * $3)) copies=$(($2 * $3 * $5)) accepted=$acc ignored=$ign errors=$err centiseconds=$((c1 - c0))"
	if [ "$acc $ign $err" = "$(($2 * $3)) $(($2 * $3 * ($5 - 1))) 0" ]; then
		ok "$1_exact"
	else
		ko "$1_exact" "accepted $acc ignored $ign errors $err: $(cat /tmp/once1.out)"
	fi
}
if insmod $KO r_grps=7 period_ms=0; then
	ok once_insmod
	once_load once_4x10000 4 10000 7 3
	once_load once_3x300 3 300 3 2
	if rmmod dummy_netlink; then ok once_rmmod; else ko once_rmmod; fi
else
	ko once_insmod
fi
[ $cycles = $((BURSTS * 10)) ] && ok load_unload_cycles || ko load_unload_cycles "$cycles/$((BURSTS * 10))"
! grep -q dummy_netlink /proc/modules && ok module_gone || ko module_gone

# Give RCU-freed sockets and skbs time to go back to the slabs.
sync
echo 3 >/proc/sys/vm/drop_caches
sleep 2
slab1=$(sunreclaim)
skb1=$(slab_objs skbuff_head_cache)
growth=$((slab1 - slab0))
skb_growth=$((skb1 - skb0))
# Every frame leaking even one small skb would be hundreds of MB.
[ $growth -lt 8192 ] && ok slab_not_grown || ko slab_not_grown "SUnreclaim $slab0 -> $slab1 kB"
[ $skb_growth -lt 1000 ] && ok skbs_freed || ko skbs_freed "skbuff_head_cache $skb0 -> $skb1 objects"

# What the kernel said since the scenario began. The module logs accepted
# DATA payloads (rate-limited, random bytes): leave those lines out.
dmesg | tail -n +$((dmesg_lines0 + 1)) | grep -v 'dummy_netlink: DATA from port' >/tmp/dmesg.txt
bad=$(grep -E 'Oops|BUG|WARNING|Call Trace|general protection|[Ll]eak|KASAN|UBSAN|refcount_t|corrupt|double free|use-after-free|Redzone|Poison|stack-protector' /tmp/dmesg.txt | head -n 5)
if [ -n "$bad" ]; then ko dmesg_clean "$bad"; else ok dmesg_clean; fi
grep -q 'slub_debug' /proc/cmdline && ok slub_debug_on || ko slub_debug_on "$(cat /proc/cmdline)"
echo "FIGURE: frames=$sent bursts=$BURSTS senders=$SENDERS cycles=$cycles seconds=$secs slab_growth_kb=$growth skb_growth=$skb_growth dmesg_lines=$(wc -l </tmp/dmesg.txt)"
echo "RESULT: $pass passed, $fail failed"
