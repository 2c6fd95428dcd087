#!/bin/sh
# Runs inside the QEMU guest (busybox sh), as PID 1's child, from /init.
# Prints "PASS: name" / "FAIL: name (why)" per case and a final
# "RESULT: N passed, N failed". The seed's session comes first, line by line.

KO=/dummy_netlink.ko
T=/tmp/t
mkdir -p $T
pass=0
fail=0

ok() { echo "PASS: $1"; pass=$((pass + 1)); }
ko() { echo "FAIL: $1${2:+ ($2)}"; fail=$((fail + 1)); }
# check NAME COMMAND...: passes when COMMAND succeeds.
check() {
	name=$1
	shift
	if "$@" >$T/check.out 2>&1; then ok "$name"; else ko "$name" "$(tail -n 3 $T/check.out | tr '\n' ' ')"; fi
}
# expect_fail NAME PATTERN COMMAND...: passes when COMMAND fails and says PATTERN.
expect_fail() {
	name=$1
	pattern=$2
	shift 2
	if "$@" >$T/ef.out 2>&1; then
		ko "$name" "succeeded: $(tr '\n' ' ' <$T/ef.out)"
	elif grep -q -- "$pattern" $T/ef.out; then
		ok "$name"
	else
		ko "$name" "no '$pattern' in: $(tr '\n' ' ' <$T/ef.out)"
	fi
}

stats() { ww_nlk -s >$T/stats.out 2>&1 || echo "stats failed: $(cat $T/stats.out)" >&2; }
# stat FIELD: the counter from the last stats call.
stat() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" $T/stats.out; }

# start_rr NAME ARGS...: rr_nlk in the background, output in $T/NAME.out,
# its pid in $T/NAME.pid; waits until it has bound.
start_rr() {
	n=$1
	shift
	"$@" >$T/$n.out 2>$T/$n.err &
	echo $! >$T/$n.pid
	i=0
	while ! grep -q listening $T/$n.err 2>/dev/null; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! kill -0 "$(cat $T/$n.pid)" 2>/dev/null; then
			echo "rr $n did not start: $(cat $T/$n.err)" >&2
			return 1
		fi
		usleep 20000
	done
}
stop_rr() { kill "$(cat $T/$1.pid)" 2>/dev/null; wait "$(cat $T/$1.pid)" 2>/dev/null; }
count() { grep -c -- "$2" $T/$1.out; }
# wait_for NAME PATTERN: until rr NAME has printed PATTERN (3 s at most).
wait_for() {
	i=0
	while ! grep -q -- "$2" $T/$1.out; do
		i=$((i + 1))
		[ $i -gt 150 ] && return 1
		usleep 20000
	done
}
param() { cat /sys/module/dummy_netlink/parameters/$1; }

# --- without the module: the tools say what is missing ----------------------
expect_fail tools_without_module "is dummy_netlink loaded" ww_nlk -a

# --- no autoload: a user's socket() on unit 25 does not load the module -----
# The module installed as modprobe would find it, and the kernel's
# request_module() pointed at busybox's modprobe: with an alias
# net-pf-16-proto-25 the socket() below would load it.
mkdir -p "/lib/modules/$(uname -r)"
cp $KO "/lib/modules/$(uname -r)/"
depmod
echo /bin/modprobe >/proc/sys/kernel/modprobe
expect_fail no_autoload_socket_fails "is dummy_netlink loaded" raw_nlk -U 65534 -- ww_nlk -a
grep -q '^dummy_netlink ' /proc/modules && ko no_autoload_module_absent "$(grep dummy_netlink /proc/modules)" || ok no_autoload_module_absent
check no_autoload_modprobe_by_name sh -c 'modprobe dummy_netlink && grep -q "^dummy_netlink " /proc/modules && rmmod dummy_netlink'

# --- the seed's session -----------------------------------------------------
# bash> insmod ./dummy_netlink r_grps=3 b_grp=2 (plus a faster tick and
# 64 groups for the BCAST-to-40 case below)
# (log_data=1: the seed's "the kernel prints what it receives")
check seed_insmod insmod $KO r_grps=3 b_grp=2 period_ms=200 ngroups=64 log_data=1
check params_visible sh -c '[ "$(cat /sys/module/dummy_netlink/parameters/r_grps)" = 3 ] &&
	[ "$(cat /sys/module/dummy_netlink/parameters/b_grp)" = 2 ] &&
	[ "$(cat /sys/module/dummy_netlink/parameters/unit)" = 25 ] &&
	[ "$(cat /sys/module/dummy_netlink/parameters/ngroups)" = 64 ] &&
	[ "$(cat /sys/module/dummy_netlink/parameters/allow_unpriv)" = N ]'

# bash> ./rr_nlk -g 10   -> receives the kernel's messages periodically
start_rr rr rr_nlk -g 10 || ko seed_rr_start
rr_pid=$(cat $T/rr.pid)
sleep 1
# one snapshot: rr_nlk keeps writing ticks while we count
cp $T/rr.out $T/rrsnap.out
ticks=$(count rrsnap 'type=TICK')
distinct=$(grep 'type=TICK' $T/rrsnap.out | sed 's/.* counter=\([0-9]*\).*/\1/' | sort -u | wc -l)
if [ "$ticks" -ge 3 ] && [ "$ticks" = "$distinct" ] && grep -q 'port=0 group=2 .*type=TICK.*tick_group=2 period_ms=200' $T/rrsnap.out; then
	ok seed_rr_gets_ticks
else
	ko seed_rr_gets_ticks "ticks=$ticks distinct=$distinct: $(tail -n 2 $T/rr.out)"
fi

# bash> ./ww_nlk -g 1   -> the kernel receives and prints; rr_nlk does not
stats
acc0=$(stat accepted)
check seed_g1_acked ww_nlk -g 1 -a -m seed-g1
stats
[ "$(stat accepted)" = $((acc0 + 1)) ] && ok seed_g1_kernel_accepts || ko seed_g1_kernel_accepts "accepted $acc0 -> $(stat accepted)"
[ "$(dmesg | grep -c 'group 1 seq 1 len 7: seed-g1')" = 1 ] && ok seed_g1_kernel_prints || ko seed_g1_kernel_prints "$(dmesg | tail -n 3)"

# bash> ./ww_nlk -g 9   -> the kernel and rr_nlk each receive exactly once
acc0=$(stat accepted)
ign0=$(stat ignored)
ww_nlk -g 9 -a -m seed-g9 >$T/g9.out 2>&1
[ "$(grep -c 'error=0 (OK)' $T/g9.out)" = 2 ] && ok seed_g9_two_copies_acked || ko seed_g9_two_copies_acked "$(cat $T/g9.out)"
stats
[ "$(stat accepted)" = $((acc0 + 1)) ] && [ "$(stat ignored)" = $((ign0 + 1)) ] &&
	ok seed_g9_kernel_once || ko seed_g9_kernel_once "accepted $acc0 -> $(stat accepted), ignored $ign0 -> $(stat ignored)"
[ "$(dmesg | grep -c 'seed-g9')" = 1 ] && ok seed_g9_kernel_prints_once || ko seed_g9_kernel_prints_once "$(dmesg | grep seed-g9)"
# rr_nlk reads in order: once seed-g9 is there, seed-g1 would be too.
wait_for rr seed-g9
usleep 100000
[ "$(count rr seed-g1)" = 0 ] && ok seed_g1_rr_does_not || ko seed_g1_rr_does_not "$(grep seed-g1 $T/rr.out)"
[ "$(count rr 'seed-g9')" = 1 ] && grep -q 'group=4 seq=1 type=DATA.*data="seed-g9"' $T/rr.out &&
	ok seed_g9_rr_once || ko seed_g9_rr_once "$(grep seed-g9 $T/rr.out)"

# bash> ./ww_nlk -i ${rr_nlk_pid}   -> the kernel unicasts to rr_nlk
rel0=$(stat relayed)
check seed_relay_acked ww_nlk -i "$rr_pid" -a -m seed-relay
wait_for rr seed-relay
# from port 0, but typed RELAYED and naming the requester: pid (nlmsg_pid)
# and relayed_from are both the requester's port id, uid root's
rl=$(grep 'seed-relay' $T/rr.out)
[ "$(count rr 'seed-relay')" = 1 ] && echo "$rl" | grep -q '^port=0 group=0 seq=1 type=RELAYED .*relayed_uid=0 data="seed-relay"' &&
	[ -n "$(echo "$rl" | sed -n 's/.* pid=\([0-9]*\) .*relayed_from=\1 .*/x/p')" ] &&
	ok seed_relay_rr_gets_it_from_kernel || ko seed_relay_rr_gets_it_from_kernel "$rl"
stats
[ "$(stat relayed)" = $((rel0 + 1)) ] && ok seed_relay_counted || ko seed_relay_counted "relayed $rel0 -> $(stat relayed)"

# --- BCAST, including groups above 32 ---------------------------------------
start_rr rr40 rr_nlk -G 40 -P 0 || ko bcast40_rr_start
bc0=$(stat broadcast)
check bcast40_acked ww_nlk -b 40 -a -m to-40
wait_for rr40 to-40
grep -q '^port=0 group=40 seq=1 type=DATA .*data="to-40"' $T/rr40.out && ok bcast40_reaches_G40 || ko bcast40_reaches_G40 "$(cat $T/rr40.out)"
[ "$(count rr 'to-40')" = 0 ] && ok bcast40_not_elsewhere || ko bcast40_not_elsewhere
start_rr rrm rr_nlk -G 33,40 -P 0 || ko bcast_multi_rr_start
check bcast_multi_acked ww_nlk -b 33,40,2,4 -a -m to-many
wait_for rrm to-many; wait_for rr to-many; wait_for rr40 to-many
usleep 100000 # time for a duplicate to show
[ "$(count rrm 'to-many')" = 1 ] && [ "$(count rr 'to-many')" = 1 ] && [ "$(count rr40 'to-many')" = 1 ] &&
	ok bcast_multi_group_reader_prints_once || ko bcast_multi_group_reader_prints_once "rrm=$(count rrm to-many) rr=$(count rr to-many) rr40=$(count rr40 to-many)"
stats
[ "$(stat broadcast)" = $((bc0 + 5)) ] && ok bcast_counted_per_group || ko bcast_counted_per_group "broadcast $bc0 -> $(stat broadcast)"
stop_rr rr40
stop_rr rrm

# --- STATS match what was sent ----------------------------------------------
stats
r0=$(stat received); a0=$(stat accepted); i0=$(stat ignored); e0=$(stat errors)
ww_nlk -c 5 -m direct >/dev/null 2>&1       # 5 DATA to the kernel: accepted
ww_nlk -g 12 -c 2 -m outside >/dev/null 2>&1 # 2 x 2 copies to groups 3, 4: ignored
ww_nlk -l 4097 >/dev/null 2>&1                # 1 DATA too large: error
ww_nlk -g 3 -c 3 -m both >/dev/null 2>&1     # 3 x 2 copies to groups 1, 2: 3 accepted, 3 repeats
stats
# received also counts this STATS request itself
exp="$((r0 + 5 + 4 + 1 + 6 + 1)) $((a0 + 5 + 3)) $((i0 + 4 + 3)) $((e0 + 1))"
got="$(stat received) $(stat accepted) $(stat ignored) $(stat errors)"
[ "$exp" = "$got" ] && ok stats_match_sent || ko stats_match_sent "expected $exp got $got"
grep -q "version=2 unit=25" $T/stats.out && ok stats_version_unit || ko stats_version_unit "$(cat $T/stats.out)"

# --- malformed and refused requests get the right ack ----------------------
stats
e0=$(stat errors)
check bad_short raw_nlk -e EINVAL short
check bad_overlong raw_nlk -e EINVAL overlong
check bad_underlen raw_nlk -e EINVAL underlen
check bad_unknown_type raw_nlk -e EOPNOTSUPP unknown
check bad_reserved raw_nlk -e EINVAL reserved
check bad_relay_short raw_nlk -e EINVAL relay-short
check bad_relay_dead_port raw_nlk -e ECONNREFUSED relay-dead
check bad_bcast_range raw_nlk -e ERANGE bcast-range
check bad_bcast_zero raw_nlk -e EINVAL bcast-zero
check bad_bcast_count raw_nlk -e EINVAL bcast-count
check bad_too_large raw_nlk -e EMSGSIZE toolarge
check bad_stats_payload raw_nlk -e EINVAL stats-payload
check multi_in_one_datagram raw_nlk -e OK,EOPNOTSUPP multi
check trailing_junk raw_nlk -e OK,EINVAL trailing
check not_a_request_skipped raw_nlk -e OK noreq
check unknown_type_on_r_grps_group raw_nlk -g 1 -e EPROTOTYPE unknown
check unknown_type_on_other_group_ignored raw_nlk -g 3 -e OK unknown
stats
[ "$(stat errors)" = $((e0 + 15)) ] && ok errors_counted || ko errors_counted "errors $e0 -> $(stat errors)"

# --- group copies carry DATA only: requests go to the kernel directly ----------
stats
e0=$(stat errors); rl0=$(stat relayed); bc0=$(stat broadcast)
raw_nlk -g 1 -e EPROTOTYPE relay-self >$T/grelay.out 2>&1 && ! grep -q '^relayed' $T/grelay.out &&
	grep -q 'kernel says: .*group copies carry DATA only' $T/grelay.out &&
	ok group_relay_refused || ko group_relay_refused "$(cat $T/grelay.out)"
check group_bcast_refused raw_nlk -g 2 -e EPROTOTYPE bcast-ok
check group_stats_refused raw_nlk -g 1 -e EPROTOTYPE stats
raw_nlk -g 3 -e OK relay-self >$T/g3relay.out 2>&1 && ! grep -q '^relayed' $T/g3relay.out &&
	ok group_outside_r_grps_relay_ignored || ko group_outside_r_grps_relay_ignored "$(cat $T/g3relay.out)"
stats
[ "$(stat errors)" = $((e0 + 3)) ] && [ "$(stat relayed)" = "$rl0" ] && [ "$(stat broadcast)" = "$bc0" ] &&
	ok group_requests_counted_not_done || ko group_requests_counted_not_done "$(cat $T/stats.out)"
raw_nlk -e OK relay-self >$T/drelay.out 2>&1 && grep -q '^relayed seq=.* port=0 relayed_from=[1-9]' $T/drelay.out &&
	ok direct_relay_still_done || ko direct_relay_still_done "$(cat $T/drelay.out)"
check direct_bcast_still_done raw_nlk -e OK bcast-ok
check direct_stats_still_done raw_nlk -e STATS,OK stats

# --- once-only: per sending socket, under load, across port reuse -------------
# X to group 1, 70 DATA from another socket and 70 of X's sender, X to
# group 2: X once (the old shared 64-key table handled it twice).
stats
a0=$(stat accepted); i0=$(stat ignored)
check once_gap_acked raw_nlk -n 70 -e OK,OK gap
stats
[ "$(stat accepted) $(stat ignored)" = "$((a0 + 141)) $((i0 + 1))" ] && ok once_gap_70_between ||
	ko once_gap_70_between "accepted $a0 -> $(stat accepted), ignored $i0 -> $(stat ignored)"
# The documented bound: 130 of the sender's own requests in between are more
# than the 120 keys a sender keeps, and X's second copy counts again.
a0=$(stat accepted); i0=$(stat ignored)
raw_nlk -n 130 -e OK,OK gap >/dev/null 2>&1
stats
[ "$(stat accepted) $(stat ignored)" = "$((a0 + 202)) $i0" ] && ok once_gap_window_is_120_own ||
	ko once_gap_window_is_120_own "accepted $a0 -> $(stat accepted), ignored $i0 -> $(stat ignored)"
# Three concurrent senders, each message to groups 1 and 2 (both in r_grps).
a0=$(stat accepted); i0=$(stat ignored); e0=$(stat errors)
ww_nlk -g 3 -c 300 -m c1 >/dev/null 2>&1 &
p1=$!
ww_nlk -g 3 -c 300 -m c2 >/dev/null 2>&1 &
p2=$!
ww_nlk -g 3 -c 300 -m c3 >/dev/null 2>&1 &
p3=$!
wait $p1 $p2 $p3
stats
[ "$(stat accepted) $(stat ignored) $(stat errors)" = "$((a0 + 900)) $((i0 + 900)) $e0" ] && ok once_3_senders_x_300 ||
	ko once_3_senders_x_300 "accepted $a0 -> $(stat accepted), ignored $i0 -> $(stat ignored), errors $e0 -> $(stat errors)"
# A socket that binds the port id another just closed is a new sender.
a0=$(stat accepted); i0=$(stat ignored)
ww_nlk -P 4242 -g 3 -c 3 -m reuse-a >/dev/null 2>&1
ww_nlk -P 4242 -g 3 -c 3 -m reuse-b >/dev/null 2>&1
stats
[ "$(stat accepted) $(stat ignored)" = "$((a0 + 6)) $((i0 + 6))" ] && ok once_port_reuse_new_sender ||
	ko once_port_reuse_new_sender "accepted $a0 -> $(stat accepted), ignored $i0 -> $(stat ignored)"
# A RELAY refused (no such port yet) is not remembered: its retry with the
# same seq, once the port exists, is delivered.
rl0=$(stat relayed)
check once_failed_relay_retried raw_nlk -e ECONNREFUSED,OK relay-retry
stats
[ "$(stat relayed)" = $((rl0 + 1)) ] && ok once_retry_counted || ko once_retry_counted "relayed $rl0 -> $(stat relayed)"
i0=$(stat ignored)
check dup_seq_acked raw_nlk -e OK,OK dup
stats
[ "$(stat ignored)" = $((i0 + 1)) ] && ok dup_seq_ignored || ko dup_seq_ignored "ignored $i0 -> $(stat ignored)"
check same_seq_stats_both_answered raw_nlk -e STATS,OK,STATS,OK stats-twice
check same_seq_other_type_not_a_repeat raw_nlk -e OK,ECONNREFUSED same-seq-types
expect_fail ww_relay_dead_port "ECONNREFUSED" ww_nlk -i 2147483632 -a
expect_fail ww_relay_dead_port_extack "RELAY target" ww_nlk -i 2147483632 -a
expect_fail ww_direct_unknown_port "no socket has port id" ww_nlk -d 2147483632
expect_fail ww_bad_flag "usage" ww_nlk -z
expect_fail rr_port_taken "is taken" rr_nlk -g 2 -P "$rr_pid"
expect_fail rr_group_out_of_range "out of range" rr_nlk -G 65 -P 0

# --- fuzz: random frames from two senders at once, a reader on the groups ---
stats
r0=$(stat received); a0=$(stat accepted); i0=$(stat ignored); e0=$(stat errors); rl0=$(stat relayed); bc0=$(stat broadcast)
raw_nlk -F 50000 >$T/fz1.out 2>&1 &
f1=$!
raw_nlk -F 50000 >$T/fz2.out 2>&1 &
f2=$!
wait $f1
s1=$?
wait $f2
s2=$?
[ $s1 = 0 ] && [ $s2 = 0 ] && ok fuzz_senders_finish || ko fuzz_senders_finish "$(cat $T/fz1.out $T/fz2.out | tr '\n' ' ')"
cat $T/fz1.out $T/fz2.out
stats
[ "$(stat received)" -gt $((r0 + 50000)) ] && ok fuzz_kernel_still_answers || ko fuzz_kernel_still_answers "received $r0 -> $(stat received)"
cat $T/stats.out
[ "$(stat accepted)" -gt "$a0" ] && [ "$(stat ignored)" -gt "$i0" ] && [ "$(stat errors)" -gt "$e0" ] &&
	[ "$(stat relayed)" -gt "$rl0" ] && [ "$(stat broadcast)" -gt "$bc0" ] &&
	ok fuzz_reached_every_path || ko fuzz_reached_every_path "$(cat $T/stats.out)"
kill -0 "$rr_pid" && ok fuzz_reader_alive || ko fuzz_reader_alive

# --- unload is refused while a socket is open -------------------------------
expect_fail rmmod_refused_while_open "" rmmod dummy_netlink
stop_rr rr
check rmmod_after_close rmmod dummy_netlink

# --- ticks to several groups: a reader on both prints each tick once -------
check ticks_multi_insmod insmod $KO b_grp=10 period_ms=100
start_rr rrt rr_nlk -g 10 -P 0 || ko ticks_multi_rr_start
sleep 1
stop_rr rrt
ticks=$(count rrt 'type=TICK')
distinct=$(grep 'type=TICK' $T/rrt.out | sed 's/.* counter=\([0-9]*\).*/\1/' | sort -u | wc -l)
[ "$ticks" -ge 3 ] && [ "$ticks" = "$distinct" ] && ok ticks_multi_group_printed_once || ko ticks_multi_group_printed_once "ticks=$ticks distinct=$distinct"
check ticks_multi_rmmod rmmod dummy_netlink

# --- privileges ---------------------------------------------------------------
check unpriv_insmod insmod $KO period_ms=0
expect_fail unpriv_send_refused "EPERM" raw_nlk -U 65534 -- ww_nlk -a
expect_fail unpriv_group_send_refused "permission denied" raw_nlk -U 65534 -- ww_nlk -g 1
expect_fail unpriv_join_refused "permission denied" raw_nlk -U 65534 -- rr_nlk -g 2 -P 0
check unpriv_rmmod rmmod dummy_netlink
check allow_unpriv_insmod insmod $KO allow_unpriv=1 period_ms=0
check allow_unpriv_send raw_nlk -U 65534 -- ww_nlk -a -m from-nobody
# A RELAY from nobody to root's socket: from port 0, but typed RELAYED and
# naming nobody, in the JSON too.
start_rr rrroot rr_nlk -P 0 -j || ko relayed_origin_rr_start
rport=$(sed -n 's/.* port \([0-9]*\) groups.*/\1/p' $T/rrroot.err)
raw_nlk -U 65534 -- ww_nlk -i "$rport" -a -m nobody-relay >$T/nrelay.out 2>&1
wait_for rrroot nobody-relay
grep -q '^{"port":0,"group":0,.*"type":"RELAYED",.*"relayedFrom":{"portId":[1-9][0-9]*,"uid":65534},"data":"nobody-relay"}$' $T/rrroot.out &&
	ok relayed_origin_unforgeable || ko relayed_origin_unforgeable "$(cat $T/rrroot.out $T/nrelay.out)"
stop_rr rrroot
# nobody's relay to itself: the header and the credentials both say 65534
raw_nlk -U 65534 -- raw_nlk -e OK relay-self >$T/nself.out 2>&1 &&
	grep -q '^relayed seq=.* port=0 relayed_from=[1-9][0-9]* relayed_uid=65534 creds_uid=65534 ' $T/nself.out &&
	ok relayed_creds_are_requesters || ko relayed_creds_are_requesters "$(cat $T/nself.out)"
start_rr rru raw_nlk -U 65534 -- rr_nlk -g 2 -P 0 -n 1 || ko allow_unpriv_join_start
ww_nlk -b 2 -m to-nobody >/dev/null 2>&1
wait_for rru to-nobody
grep -q 'to-nobody' $T/rru.out && ok allow_unpriv_join || ko allow_unpriv_join "$(cat $T/rru.out $T/rru.err)"
stop_rr rru
check allow_unpriv_rmmod rmmod dummy_netlink

# --- bad parameters are refused at load --------------------------------------
expect_fail param_ngroups_small "" insmod $KO ngroups=16
expect_fail param_ngroups_large "" insmod $KO ngroups=4096
expect_fail param_unit_assigned "" insmod $KO unit=2
expect_fail param_period_tiny "" insmod $KO period_ms=5
dmesg | grep -q 'dummy_netlink: ngroups=16 is not in 32..1024' && ok param_errors_logged || ko param_errors_logged
# Beyond 32 bits: the kernel's parser says ERANGE; the module says EINVAL,
# as its README does for every bad value.
expect_fail param_mask_over_32_bits_einval "Invalid argument" insmod $KO b_grp=0x100000000
expect_fail param_unit_over_32_bits_einval "Invalid argument" insmod $KO unit=0x100000000
expect_fail param_once_senders_zero "" insmod $KO once_senders=0

# --- per-message log: off unless log_data=1 (also at run time) ------------------
check log_data_insmod insmod $KO period_ms=0
[ "$(param log_data)" = N ] && ok log_data_default_off || ko log_data_default_off "$(param log_data)"
ww_nlk -a -m quiet-data >/dev/null 2>&1
dmesg | grep -q 'quiet-data' && ko log_data_off_silent "$(dmesg | grep quiet-data)" || ok log_data_off_silent
echo 1 >/sys/module/dummy_netlink/parameters/log_data
ww_nlk -a -m loud-data >/dev/null 2>&1
[ "$(dmesg | grep -c 'DATA from port .* loud-data')" = 1 ] && ok log_data_on_at_run_time || ko log_data_on_at_run_time "$(dmesg | tail -n 2)"
check log_data_rmmod rmmod dummy_netlink

# --- the once-only table's bound: full is refused and counted -------------------
check once_full_insmod insmod $KO period_ms=0 once_senders=2
ww_nlk -m full-a >/dev/null 2>&1
ww_nlk -m full-b >/dev/null 2>&1
ww_nlk -a -m full-c >$T/full.out 2>&1
grep -q 'ENOBUFS' $T/full.out && grep -q 'once-only table full' $T/full.out && ok once_full_refused || ko once_full_refused "$(cat $T/full.out)"
stats
[ "$(stat once_full) $(stat once_senders) $(stat accepted)" = "1 2 2" ] && ok once_full_counted || ko once_full_counted "$(cat $T/stats.out)"
usleep 2300000 # past the 2 s window of full-a and full-b
check once_full_slot_reused_after_2s ww_nlk -a -m full-d
check once_full_rmmod rmmod dummy_netlink

# --- 100 load/unload cycles, with the tick running ---------------------------
i=0
cyc_ok=0
while [ $i -lt 100 ]; do
	if insmod $KO b_grp=1 period_ms=10 && rmmod dummy_netlink; then cyc_ok=$((cyc_ok + 1)); fi
	i=$((i + 1))
done
[ $cyc_ok = 100 ] && ! grep -q dummy_netlink /proc/modules && ok load_unload_100 || ko load_unload_100 "$cyc_ok/100"

# --- no oops, BUG or warning from any of it --------------------------------------
if dmesg | grep -E 'Oops|BUG|WARNING|Call Trace|general protection'; then ko dmesg_clean; else ok dmesg_clean; fi

echo "RESULT: $pass passed, $fail failed"
