# bench/trace/path.py: see trace.sh. Steps: sender sendto returns, the bridge wakes, its netlink receive returns,
# its first write toward the client begins, the reader wakes, its read returns (medians over matched messages).
# Median time of each step of one message's path, from trace.sh's perf script text.
import re, sys, statistics
ev = []  # (t, comm, tid, kind, detail)
rx = re.compile(r'^\s*(\S.*?)\s+(\d+)/(\d+)\s+(\d+\.\d+):\s+(\S+):\s*(.*)$')
for line in open(sys.argv[1]):
    m = rx.match(line)
    if not m: continue
    comm, pid, tid, t, event, rest = m.groups()
    ev.append((float(t), comm.strip(), int(pid), int(tid), event, rest))
bridge = sys.argv[2]  # process name of the bridge's reading thread: node / rr_nlk
writer = sys.argv[3] if len(sys.argv) > 3 else bridge  # and of the one writing to the client: node / websocketd
# syscall numbers (x86_64)
NR = {'sendto': 44, 'epoll_wait': 232, 'epoll_pwait': 281, 'recvmmsg': 299, 'recvmsg': 47, 'write': 1, 'writev': 20, 'read': 0, 'recvfrom': 45, 'epoll_pwait2': 441}
def nr(rest):
    m = re.search(r'NR (\d+)', rest); return int(m.group(1)) if m else -1
sends = [e[0] for e in ev if e[1] == 'nlb_flood' and e[4] == 'raw_syscalls:sys_exit' and nr(e[5]) == 44]
def after(t, pred, limit=0.0005):
    for e in ev_sorted_after(t):
        if e[0] - t > limit: return None
        if pred(e): return e
    return None
import bisect
times = [e[0] for e in ev]
def ev_sorted_after(t):
    i = bisect.bisect_right(times, t)
    return ev[i:i+20000]
steps = {}
def add(k, v): steps.setdefault(k, []).append(v * 1e6)
pids = set(int(x) for x in open(sys.argv[4]).read().split()) if len(sys.argv) > 4 else None
mine = lambda e: pids is None or e[2] in pids
is_b = lambda e: e[1].startswith(bridge) and mine(e)
is_r = lambda e: e[1] == 'nlb_ws_reader' and mine(e)
for s in sends:
    e1 = after(s, lambda e: is_b(e) and e[4] == 'raw_syscalls:sys_exit' and nr(e[5]) in (232, 281, 441, 7, 299, 47, 45))
    if not e1: continue
    # A blocking reader (rr_nlk) has no poll step: its receive is both.
    e2 = e1 if nr(e1[5]) in (299, 47, 45) else after(e1[0], lambda e: e[3] == e1[3] and e[4] == 'raw_syscalls:sys_exit' and nr(e[5]) in (299, 47, 45))
    if not e2: continue
    e3 = after(e2[0], lambda e: e[4] == 'raw_syscalls:sys_enter' and nr(e[5]) in (1, 20) and e[1].startswith(writer) and mine(e), 0.002)
    if not e3: continue
    e5 = after(e3[0], lambda e: is_r(e) and e[4] == 'raw_syscalls:sys_exit' and nr(e[5]) in (232, 281, 441), 0.002)
    if not e5: continue
    e6 = after(e5[0], lambda e: is_r(e) and e[4] == 'raw_syscalls:sys_exit' and nr(e[5]) == 0)
    if not e6: continue
    add('1 sendto returns -> bridge epoll_wait returns', e1[0] - s)
    add('2 -> its netlink receive returns', e2[0] - e1[0])
    add('3 -> first write/writev toward the client begins', e3[0] - e2[0])
    add('4 -> reader epoll_wait returns', e5[0] - e3[0])
    add('5 -> reader read returns', e6[0] - e5[0])
    add('total sendto -> reader read', e6[0] - s)
print(f'{len(sends)} sends, {len(steps.get("total sendto -> reader read", []))} paths matched')
for k in sorted(steps):
    v = steps[k]; print(f'{k}: p50 {statistics.median(v):.1f} us')
