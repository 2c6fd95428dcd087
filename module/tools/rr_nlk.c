// SPDX-License-Identifier: GPL-2.0
/*
 * rr_nlk: join netlink groups and print every message received, one line
 * each. A message that arrives on several of the joined groups (a sender
 * sends one copy per group, all with the same sequence number) is printed
 * once.
 */
#include "nlk_common.h"

#include <getopt.h>

#define RR_BUF_SIZE	(256 * 1024)
#define RR_RCVBUF	(1024 * 1024)
#define RR_RECENT	256
#define RR_WINDOW_S	1.0	/* copies arrive microseconds apart */
#define RR_GROUPS_MAX	DNL_NGROUPS_MAX

struct rr_key {
	uint32_t port, pid, seq;
	uint16_t type;
	double when;
};

static struct rr_key rr_recent[RR_RECENT];
static unsigned int rr_recent_n, rr_recent_next;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rr_nlk [-g MASK] [-G GROUP[,GROUP...]] [-p UNIT] [-P PORT] [-j] [-n COUNT]\n"
		"  -g MASK   join the groups whose bits are set (bit 0 = group 1), e.g. 10 = groups 2 and 4\n"
		"  -G LIST   join single groups by number, also above 32 (e.g. 33,40)\n"
		"  -p UNIT   netlink protocol (default %d, dummy_netlink; 2 = NETLINK_USERSOCK)\n"
		"  -P PORT   port id to bind (default: this process id; 0 = kernel-assigned)\n"
		"  -j        one JSON object per line instead of key=value text\n"
		"  -n COUNT  exit after printing COUNT messages\n"
		"Prints: sender port id, arrival group (0 = unicast), seq, type, nlmsg_pid, payload.\n",
		DNL_UNIT_DEFAULT);
}

/* True when this message was already printed from another group. */
static int rr_repeat(const struct nlmsghdr *nlh, uint32_t port)
{
	double now = nlk_now();
	unsigned int i;

	for (i = 0; i < rr_recent_n; i++) {
		const struct rr_key *k = &rr_recent[i];

		if (k->port == port && k->pid == nlh->nlmsg_pid &&
		    k->seq == nlh->nlmsg_seq && k->type == nlh->nlmsg_type &&
		    now - k->when < RR_WINDOW_S)
			return 1;
	}
	rr_recent[rr_recent_next] = (struct rr_key){
		.port = port, .pid = nlh->nlmsg_pid, .seq = nlh->nlmsg_seq,
		.type = nlh->nlmsg_type, .when = now,
	};
	rr_recent_next = (rr_recent_next + 1) % RR_RECENT;
	if (rr_recent_n < RR_RECENT)
		rr_recent_n++;
	return 0;
}

static void rr_print_payload(const struct nlmsghdr *nlh, uint32_t port,
			     int json)
{
	const unsigned char *p = NLMSG_DATA(nlh);
	size_t len = nlh->nlmsg_len - NLMSG_HDRLEN;

	/*
	 * Only the module writes RELAYED from port 0; from any other port
	 * the header is whatever a user wrote, and is shown as data.
	 */
	if (nlh->nlmsg_type == DNL_MSG_RELAYED && port == 0 &&
	    len >= sizeof(struct dnl_relayed)) {
		struct dnl_relayed r;

		memcpy(&r, p, sizeof(r));
		printf(json ? ",\"relayedFrom\":{\"portId\":%u,\"uid\":%u}"
			    : " relayed_from=%u relayed_uid=%u",
		       r.portid, r.uid);
		p += sizeof(r);
		len -= sizeof(r);
	}

	if (nlh->nlmsg_type == DNL_MSG_TICK && len >= sizeof(struct dnl_tick)) {
		struct dnl_tick t;

		memcpy(&t, p, sizeof(t));
		printf(json ? ",\"counter\":%llu,\"time_ns\":%llu,\"tick_group\":%u,\"period_ms\":%u"
			    : " counter=%llu time_ns=%llu tick_group=%u period_ms=%u",
		       (unsigned long long)t.counter,
		       (unsigned long long)t.time_ns, t.group, t.period_ms);
		return;
	}
	if (nlh->nlmsg_type == DNL_MSG_STATS && len >= NLK_STATS_V1_SIZE) {
		struct dnl_stats s;

		nlk_stats_copy(&s, nlh);
		printf(json ? ",\"received\":%llu,\"accepted\":%llu,\"ignored\":%llu,\"relayed\":%llu,\"broadcast\":%llu,\"ticks\":%llu,\"errors\":%llu,\"once_full\":%llu,\"once_senders\":%llu"
			    : " received=%llu accepted=%llu ignored=%llu relayed=%llu broadcast=%llu ticks=%llu errors=%llu once_full=%llu once_senders=%llu",
		       (unsigned long long)s.received,
		       (unsigned long long)s.accepted,
		       (unsigned long long)s.ignored,
		       (unsigned long long)s.relayed,
		       (unsigned long long)s.broadcast,
		       (unsigned long long)s.ticks,
		       (unsigned long long)s.errors,
		       (unsigned long long)s.once_full,
		       (unsigned long long)s.once_senders);
		return;
	}
	if (nlh->nlmsg_type == NLMSG_ERROR && len >= sizeof(struct nlmsgerr)) {
		const struct nlmsgerr *e = (const void *)p;

		printf(json ? ",\"error\":%d,\"code\":\"%s\"" : " error=%d (%s)",
		       -e->error, nlk_errno_name(-e->error));
		return;
	}
	if (json) {
		fputs(",\"data\":\"", stdout);
		nlk_json_bytes(stdout, p, len);
		fputc('"', stdout);
	} else {
		fputs(" data=\"", stdout);
		nlk_text_bytes(stdout, p, len);
		fputc('"', stdout);
	}
}

static void rr_print(const struct nlmsghdr *nlh, uint32_t port,
		     uint32_t group, int json)
{
	const char *name = nlk_type_name(nlh->nlmsg_type);
	char hex[8];

	if (!name) {
		snprintf(hex, sizeof(hex), "0x%x", nlh->nlmsg_type);
		name = hex;
	}
	printf(json ? "{\"port\":%u,\"group\":%u,\"seq\":%u,\"type\":\"%s\",\"pid\":%u,\"flags\":%u,\"len\":%u"
		    : "port=%u group=%u seq=%u type=%s pid=%u flags=%#x len=%u",
	       port, group, nlh->nlmsg_seq, name, nlh->nlmsg_pid,
	       nlh->nlmsg_flags, nlh->nlmsg_len - (uint32_t)NLMSG_HDRLEN);
	rr_print_payload(nlh, port, json);
	fputs(json ? "}\n" : "\n", stdout);
	fflush(stdout);
}

static void rr_print_malformed(uint32_t port, uint32_t group, size_t off,
			       size_t len, int json)
{
	printf(json ? "{\"port\":%u,\"group\":%u,\"malformed\":true,\"offset\":%zu,\"len\":%zu}\n"
		    : "port=%u group=%u malformed offset=%zu len=%zu\n",
	       port, group, off, len);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	uint32_t groups[RR_GROUPS_MAX];
	unsigned int ngroups = 0, i;
	unsigned long long count = 0, printed = 0;
	uint32_t mask = 0, port;
	int unit = DNL_UNIT_DEFAULT, json = 0, fd, opt;
	static unsigned char buf[RR_BUF_SIZE];

	nlk_prog = "rr_nlk";
	setvbuf(stdout, NULL, _IOLBF, 0);
	port = (uint32_t)getpid();
	while ((opt = getopt(argc, argv, "g:G:p:P:jn:h")) != -1) {
		switch (opt) {
		case 'g':
			mask = (uint32_t)nlk_number(optarg, "-g MASK", 0, UINT32_MAX);
			break;
		case 'G':
			ngroups = nlk_group_list(optarg, groups, RR_GROUPS_MAX);
			break;
		case 'p':
			unit = (int)nlk_number(optarg, "-p UNIT", 0, 31);
			break;
		case 'P':
			port = (uint32_t)nlk_number(optarg, "-P PORT", 0, UINT32_MAX);
			break;
		case 'j':
			json = 1;
			break;
		case 'n':
			count = nlk_number(optarg, "-n COUNT", 1, UINT64_MAX);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "rr_nlk: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	fd = nlk_open(unit, port, mask);
	for (i = 0; i < ngroups; i++)
		nlk_join(fd, groups[i]);
	nlk_set_int(fd, SOL_NETLINK, NETLINK_PKTINFO, 1);
	nlk_set_int(fd, SOL_SOCKET, SO_RCVBUF, RR_RCVBUF);
	fprintf(stderr, "rr_nlk: listening on protocol %d port %u groups %#x",
		unit, nlk_port_of(fd), mask);
	for (i = 0; i < ngroups; i++)
		fprintf(stderr, "%s%u", i ? "," : " and ", groups[i]);
	fputc('\n', stderr);

	for (;;) {
		char cbuf[CMSG_SPACE(sizeof(struct nl_pktinfo))];
		struct sockaddr_nl from;
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr msg = {
			.msg_name = &from, .msg_namelen = sizeof(from),
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
		};
		struct cmsghdr *c;
		struct nlmsghdr *nlh;
		uint32_t group = 0;
		ssize_t n;
		size_t left;

		n = recvmsg(fd, &msg, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS) {
				fprintf(stderr, "rr_nlk: overrun: the receive buffer was full and messages were dropped\n");
				continue;
			}
			nlk_die("recvmsg: %s", strerror(errno));
		}
		if (msg.msg_flags & MSG_TRUNC)
			fprintf(stderr, "rr_nlk: a datagram larger than %zu bytes was cut\n",
				sizeof(buf));
		for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
			if (c->cmsg_level == SOL_NETLINK &&
			    c->cmsg_type == NETLINK_PKTINFO) {
				struct nl_pktinfo pi;

				memcpy(&pi, CMSG_DATA(c), sizeof(pi));
				group = pi.group;
			}
		}

		left = (size_t)n;
		nlh = (struct nlmsghdr *)buf;
		while (left) {
			if (left < NLMSG_HDRLEN || nlh->nlmsg_len < NLMSG_HDRLEN ||
			    nlh->nlmsg_len > left) {
				rr_print_malformed(from.nl_pid, group,
						   (size_t)n - left, left, json);
				break;
			}
			if (!rr_repeat(nlh, from.nl_pid)) {
				rr_print(nlh, from.nl_pid, group, json);
				if (count && ++printed >= count)
					return 0;
			}
			if (NLMSG_ALIGN(nlh->nlmsg_len) >= left)
				break;
			left -= NLMSG_ALIGN(nlh->nlmsg_len);
			nlh = (struct nlmsghdr *)((char *)nlh +
						  NLMSG_ALIGN(nlh->nlmsg_len));
		}
	}
}
