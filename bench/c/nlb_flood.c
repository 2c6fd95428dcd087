// SPDX-License-Identifier: GPL-2.0
/*
 * nlb_flood: the bench's netlink sender. Broadcasts COUNT bench messages
 * (nlb_common.h) to one group, as fast as it can or paced at RATE per
 * second, and stops at COUNT or after SECONDS, whichever comes first.
 *
 *   nlb_flood -g GROUP -n COUNT [-t SECONDS] [-r RATE] [-s BYTES] [-p PROTO] [-P]
 *
 * -P sends probes (magic "NLB0", not counted by receivers) instead.
 *
 * Prints one JSON object on stdout when done.
 *
 * sendto() with nl_groups broadcasts to the group and then unicasts to
 * nl_pid 0, the kernel; NETLINK_USERSOCK has no kernel socket, so that leg
 * fails with ECONNREFUSED after the broadcast went out (af_netlink.c,
 * netlink_sendmsg). Every sender on this protocol pays that lookup, the
 * bridge's too, so it is counted as a sent message.
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "nlb_common.h"

static void usage(void)
{
	fprintf(stderr,
		"usage: nlb_flood -g GROUP -n COUNT [-t SECONDS] [-r RATE] [-s BYTES] [-p PROTO] [-P]\n");
	exit(2);
}

static unsigned long parse_ulong(const char *s, const char *what)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || *end || end == s) {
		fprintf(stderr, "nlb_flood: bad %s '%s'\n", what, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	unsigned long group = 0, count = 0, rate = 0, proto = NETLINK_USERSOCK;
	unsigned long payload_bytes = NLB_PAYLOAD_LEN;
	double max_seconds = 10.0;
	struct sockaddr_nl local = { .nl_family = AF_NETLINK };
	struct sockaddr_nl dest = { .nl_family = AF_NETLINK };
	uint64_t start, deadline, now, i, sent = 0, refused = 0, failed = 0;
	const char *magic = NLB_MAGIC;
	int first_errno = 0;
	struct nlmsghdr *nlh;
	char *pl;
	size_t len;
	char *buf;
	int fd, opt;

	while ((opt = getopt(argc, argv, "g:n:t:r:s:p:P")) != -1) {
		switch (opt) {
		case 'g': group = parse_ulong(optarg, "group"); break;
		case 'n': count = parse_ulong(optarg, "count"); break;
		case 't': max_seconds = strtod(optarg, NULL); break;
		case 'r': rate = parse_ulong(optarg, "rate"); break;
		case 's': payload_bytes = parse_ulong(optarg, "size"); break;
		case 'p': proto = parse_ulong(optarg, "protocol"); break;
		case 'P': magic = NLB_PROBE_MAGIC; break;
		default: usage();
		}
	}
	if (group < 1 || group > 32 || count == 0 || max_seconds <= 0)
		usage();
	if (payload_bytes < NLB_PAYLOAD_LEN)
		payload_bytes = NLB_PAYLOAD_LEN;
	if (payload_bytes > 60000)
		usage();

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, (int)proto);
	if (fd < 0) {
		perror("nlb_flood: socket");
		return 1;
	}
	if (bind(fd, (struct sockaddr *)&local, sizeof(local)) < 0) {
		perror("nlb_flood: bind");
		return 1;
	}
	dest.nl_groups = 1u << (group - 1);
	dest.nl_pid = 0;

	len = NLMSG_SPACE(payload_bytes);
	buf = calloc(1, len);
	if (!buf)
		return 1;
	nlh = (struct nlmsghdr *)buf;
	nlh->nlmsg_len = NLMSG_LENGTH(payload_bytes);
	nlh->nlmsg_type = NLB_MSG_TYPE;
	nlh->nlmsg_flags = 0;
	nlh->nlmsg_pid = (uint32_t)getpid();
	pl = NLMSG_DATA(nlh);
	/* Bytes past the bench payload (-s): printable, so text renderings stay text. */
	memset(pl, '.', payload_bytes);

	start = nlb_now_ns();
	deadline = start + (uint64_t)(max_seconds * 1e9);
	for (i = 0; i < count; i++) {
		now = nlb_now_ns();
		if (rate) {
			uint64_t due = start + i * 1000000000ull / rate;

			/*
			 * Sleep only when ahead: past the timer's resolution,
			 * overdue messages go out back to back, so high rates
			 * are met on average in small bursts.
			 */
			if (now < due) {
				struct timespec ts = {
					.tv_sec = (time_t)(due / 1000000000ull),
					.tv_nsec = (long)(due % 1000000000ull),
				};

				clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
				now = nlb_now_ns();
			}
		}
		if (now >= deadline)
			break;
		nlh->nlmsg_seq = (uint32_t)i;
		nlb_put_payload(pl, magic, i, now);
		if (sendto(fd, buf, nlh->nlmsg_len, 0, (struct sockaddr *)&dest,
			   sizeof(dest)) >= 0) {
			sent++;
		} else if (errno == ECONNREFUSED) {
			sent++;
			refused++;
		} else {
			failed++;
			if (!first_errno)
				first_errno = errno;
		}
	}
	now = nlb_now_ns();
	printf("{\"sent\":%" PRIu64 ",\"refused_unicast\":%" PRIu64
	       ",\"failed\":%" PRIu64 ",\"first_errno\":%d,\"seconds\":%.6f,"
	       "\"rate\":%.1f,\"bytes\":%zu}\n",
	       sent, refused, failed, first_errno, (now - start) / 1e9,
	       sent / ((now - start) / 1e9), (size_t)nlh->nlmsg_len);
	free(buf);
	close(fd);
	return 0;
}
