#!/bin/sh
# One message's path through nlbridge or websocketd, read by the C reader: syscall and scheduler tracepoints on CLOCK_MONOTONIC.
# usage: bench/trace/trace.sh nlbridge|websocketd OUT   (root; inside unshare -n; after npm run bench has built .cache/bench)
# then: python3 bench/trace/path.py OUT.txt node node OUT.pids   |   python3 bench/trace/path.py OUT.txt rr_nlk websocketd OUT.pids
set -e
cd "$(dirname "$0")/../.."
SYS=$1; OUT=$2; G=26; MASK=$((1 << (G-1))); C=.cache/bench
PORT=$(( 40000 + $$ % 10000 ))
if [ "$SYS" = nlbridge ]; then
  node dist/daemon/main.js --port $PORT --host 127.0.0.1 --protocol usersock --auth none --log-level warn --rcvbuf 4194304 >/dev/null 2>&1 &
  BR=$!; URL=ws://127.0.0.1:$PORT/groups/$MASK
else
  websocketd --port=$PORT --address=127.0.0.1 --loglevel=error module/tools/rr_nlk -p 2 -j -g $MASK >/dev/null 2>&1 &
  BR=$!; URL=ws://127.0.0.1:$PORT/
fi
sleep 3
mkfifo $OUT.in
$C/nlb_ws_reader -u $URL -n 3000 -L -t 60 -i 3000 < $OUT.in > $OUT.reader &
RD=$!
exec 3>$OUT.in
sleep 1
for i in 1 2 3 4 5 6 7 8 9 10; do $C/nlb_flood -g $G -n 5 -r 200 -p 2 -P >/dev/null; grep -q probed $OUT.reader && break; done
$C/nlb_flood -g $G -n 20000 -r 20000 -p 2 -P -t 30 >/dev/null
echo "$BR $(cat /proc/$BR/task/*/children 2>/dev/null | tr '\n' ' ') $RD" > $OUT.pids
sleep 0.5
perf record -q -a -k CLOCK_MONOTONIC -e raw_syscalls:sys_enter,raw_syscalls:sys_exit,sched:sched_wakeup,sched:sched_switch -o $OUT.data -- $C/nlb_flood -g $G -n 3000 -r 1000 -p 2 -t 10 > $OUT.flood 2>/dev/null
sleep 1
exec 3>&-
wait $RD || true
KIDS=$(cat /proc/$BR/task/*/children 2>/dev/null || true)
kill $BR; sleep 0.5
for k in $KIDS; do kill $k 2>/dev/null || true; done
rm -f $OUT.in
cat $OUT.reader | tail -1
perf script -i $OUT.data -F comm,pid,tid,time,event,trace --ns 2>/dev/null > $OUT.txt
wc -l $OUT.txt
