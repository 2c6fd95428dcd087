// SPDX-License-Identifier: GPL-2.0
/*
 * nlb_sink: the bench's netlink receiver, the ceiling every bridge is
 * compared with. Opens SOCKETS sockets on one group, drains them with
 * recvmmsg, and counts bench messages (nlb_common.h).
 *
 *   nlb_sink -g GROUP -n EXPECT [-k SOCKETS] [-t SECONDS] [-i IDLE_MS]
 *            [-b RCVBUF] [-p PROTO] [-L]
 *
 * Prints {"ready":...} once every socket is bound (start the sender then),
 * and one result object when every socket has EXPECT messages, or IDLE_MS
 * passed without data after the first message, or SECONDS passed.
 * -L records each message's send→receive latency (receive time is taken
 * once per recvmmsg batch, when the batch returns).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nlb_common.h"

#ifndef SO_MEMINFO
#define SO_MEMINFO 55
#endif
#define SK_MEMINFO_DROPS 8
#define SK_MEMINFO_VARS 9

#define BATCH 64
#define DGRAM_MAX 4096

struct sink {
	int fd;
	uint32_t port;
	uint64_t received;
	int done;
};

static void usage(void)
{
	fprintf(stderr,
		"usage: nlb_sink -g GROUP -n EXPECT [-k SOCKETS] [-t SECONDS] [-i IDLE_MS] [-b RCVBUF] [-p PROTO] [-L]\n");
	exit(2);
}

static unsigned long parse_ulong(const char *s, const char *what)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || *end || end == s) {
		fprintf(stderr, "nlb_sink: bad %s '%s'\n", what, s);
		exit(2);
	}
	return v;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t pct(const uint64_t *v, size_t n, double p)
{
	size_t idx;

	if (!n)
		return 0;
	idx = (size_t)(p * (double)(n - 1) + 0.5);
	return v[idx];
}

int main(int argc, char **argv)
{
	unsigned long group = 0, expect = 0, nsock = 1, idle_ms = 500;
	unsigned long rcvbuf = 4u << 20, proto = NETLINK_USERSOCK;
	double max_seconds = 20.0;
	int record_latency = 0;
	static char bufs[BATCH][DGRAM_MAX];
	struct mmsghdr msgs[BATCH];
	struct iovec iovs[BATCH];
	struct epoll_event evs[64];
	struct sink *sinks;
	uint64_t *lat = NULL;
	size_t lat_n = 0, lat_cap = 0;
	uint64_t start, first_ns = 0, last_ns = 0, now, total = 0;
	uint64_t drops = 0, enobufs = 0, foreign = 0, min_rx, max_rx;
	unsigned long done_sockets = 0;
	struct rlimit rl;
	int ep, opt;
	unsigned long s;

	while ((opt = getopt(argc, argv, "g:n:k:t:i:b:p:L")) != -1) {
		switch (opt) {
		case 'g': group = parse_ulong(optarg, "group"); break;
		case 'n': expect = parse_ulong(optarg, "expect"); break;
		case 'k': nsock = parse_ulong(optarg, "sockets"); break;
		case 't': max_seconds = strtod(optarg, NULL); break;
		case 'i': idle_ms = parse_ulong(optarg, "idle"); break;
		case 'b': rcvbuf = parse_ulong(optarg, "rcvbuf"); break;
		case 'p': proto = parse_ulong(optarg, "protocol"); break;
		case 'L': record_latency = 1; break;
		default: usage();
		}
	}
	if (group < 1 || group > 32 || expect == 0 || nsock == 0 || nsock > 100000)
		usage();

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < nsock + 64) {
		rl.rlim_cur = rl.rlim_max < nsock + 64 ? rl.rlim_max : nsock + 64;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (record_latency) {
		lat_cap = expect * nsock;
		if (lat_cap > 4000000)
			lat_cap = 4000000;
		lat = malloc(lat_cap * sizeof(*lat));
		if (!lat)
			return 1;
	}

	sinks = calloc(nsock, sizeof(*sinks));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (!sinks || ep < 0)
		return 1;
	for (s = 0; s < nsock; s++) {
		struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
		socklen_t salen = sizeof(sa);
		struct epoll_event ev = { .events = EPOLLIN };
		int fd, val = (int)rcvbuf, grp = (int)group;

		fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, (int)proto);
		if (fd < 0) {
			perror("nlb_sink: socket");
			return 1;
		}
		/* The same size every receiver in the bench asks for. */
		if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &val, sizeof(val)) < 0)
			perror("nlb_sink: SO_RCVBUF");
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			perror("nlb_sink: bind");
			return 1;
		}
		if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &grp, sizeof(grp)) < 0) {
			perror("nlb_sink: NETLINK_ADD_MEMBERSHIP");
			return 1;
		}
		getsockname(fd, (struct sockaddr *)&sa, &salen);
		sinks[s].fd = fd;
		sinks[s].port = sa.nl_pid;
		ev.data.u64 = s;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			perror("nlb_sink: epoll_ctl");
			return 1;
		}
	}
	for (s = 0; s < BATCH; s++) {
		iovs[s].iov_base = bufs[s];
		iovs[s].iov_len = DGRAM_MAX;
	}
	printf("{\"ready\":true,\"sockets\":%lu,\"first_port\":%u}\n", nsock, sinks[0].port);
	fflush(stdout);

	start = nlb_now_ns();
	for (;;) {
		int n, e;

		n = epoll_wait(ep, evs, 64, 20);
		now = nlb_now_ns();
		if (n < 0 && errno != EINTR) {
			perror("nlb_sink: epoll_wait");
			break;
		}
		for (e = 0; e < n; e++) {
			struct sink *sk = &sinks[evs[e].data.u64];

			for (;;) {
				int got, m;

				memset(msgs, 0, sizeof(msgs));
				for (m = 0; m < BATCH; m++) {
					msgs[m].msg_hdr.msg_iov = &iovs[m];
					msgs[m].msg_hdr.msg_iovlen = 1;
				}
				got = recvmmsg(sk->fd, msgs, BATCH, MSG_DONTWAIT, NULL);
				if (got < 0) {
					/* The overrun is reported once, then data flows again. */
					if (errno == ENOBUFS) {
						enobufs++;
						continue;
					}
					break;
				}
				now = nlb_now_ns();
				for (m = 0; m < got; m++) {
					struct nlmsghdr *nlh = (struct nlmsghdr *)bufs[m];
					int rem = (int)msgs[m].msg_len;

					for (; NLMSG_OK(nlh, rem); nlh = NLMSG_NEXT(nlh, rem)) {
						uint64_t index, send_ns;

						if (nlh->nlmsg_type != NLB_MSG_TYPE ||
						    nlb_get_payload(NLMSG_DATA(nlh), nlh->nlmsg_len - NLMSG_HDRLEN,
								    &index, &send_ns)) {
							foreign++;
							continue;
						}
						sk->received++;
						total++;
						if (record_latency && lat_n < lat_cap && now > send_ns)
							lat[lat_n++] = now - send_ns;
					}
				}
				if (!first_ns)
					first_ns = now;
				last_ns = now;
				if (got < BATCH)
					break;
			}
			if (!sk->done && sk->received >= expect) {
				sk->done = 1;
				done_sockets++;
			}
		}
		if (done_sockets >= nsock)
			break;
		if (first_ns && now - last_ns > idle_ms * 1000000ull)
			break;
		if (now - start > (uint64_t)(max_seconds * 1e9))
			break;
	}

	min_rx = UINT64_MAX;
	max_rx = 0;
	for (s = 0; s < nsock; s++) {
		uint32_t mem[SK_MEMINFO_VARS] = { 0 };
		socklen_t l = sizeof(mem);

		if (getsockopt(sinks[s].fd, SOL_SOCKET, SO_MEMINFO, mem, &l) == 0)
			drops += mem[SK_MEMINFO_DROPS];
		if (sinks[s].received < min_rx)
			min_rx = sinks[s].received;
		if (sinks[s].received > max_rx)
			max_rx = sinks[s].received;
	}
	{
		double secs = last_ns > first_ns ? (last_ns - first_ns) / 1e9 : 0;
		struct rusage ru;
		double cpu_ns = 0;

		if (getrusage(RUSAGE_SELF, &ru) == 0)
			cpu_ns = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e9 +
				 (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e3;

		printf("{\"sockets\":%lu,\"received\":%" PRIu64 ",\"min_per_socket\":%" PRIu64
		       ",\"max_per_socket\":%" PRIu64 ",\"seconds\":%.6f,\"rate\":%.1f,"
		       "\"drops\":%" PRIu64 ",\"enobufs\":%" PRIu64 ",\"foreign\":%" PRIu64
		       ",\"cpuNsPerMsg\":%.1f",
		       nsock, total, min_rx, max_rx, secs, secs > 0 ? total / secs : 0.0,
		       drops, enobufs, foreign, total ? cpu_ns / total : 0.0);
	}
	if (record_latency) {
		qsort(lat, lat_n, sizeof(*lat), cmp_u64);
		printf(",\"latency\":{\"n\":%zu,\"p50_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f}",
		       lat_n, pct(lat, lat_n, 0.50) / 1e3, pct(lat, lat_n, 0.99) / 1e3,
		       lat_n ? lat[lat_n - 1] / 1e3 : 0.0);
	}
	printf("}\n");
	return 0;
}
