// SPDX-License-Identifier: GPL-2.0
/*
 * ww_nlk: send dummy_netlink messages: DATA to groups (one copy per group,
 * all with the same sequence number), to a port or to the kernel; RELAY and
 * BCAST requests; a STATS request. With -a, print the kernel's ack for each
 * copy and exit non-zero if one is an error.
 */
#include "nlk_common.h"

#include <getopt.h>
#include <poll.h>

#define WW_TIMEOUT_MS	2000
#define WW_DATA_MAX	65536
#define WW_RECV_SIZE	(64 * 1024)

enum ww_mode { WW_KERNEL, WW_GROUPS, WW_RELAY, WW_DIRECT, WW_BCAST, WW_STATS };

struct ww {
	int fd, unit, json, ack;
	enum ww_mode mode;
	uint32_t mask, target, seq;
	uint32_t bgroups[DNL_NGROUPS_MAX];
	unsigned int nbgroups;
	const unsigned char *data;
	size_t len;
	unsigned char *msg;
	size_t msglen;
	int failed;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ww_nlk [-g MASK | -i PID | -d PID | -b GROUPS | -s] [-a] [-p UNIT] [-m TEXT | -l LEN] [-c COUNT] [-P PORT] [-S SEQ] [-j]\n"
		"  (none)     DATA to the kernel directly\n"
		"  -g MASK    DATA to every group in MASK (bit 0 = group 1): one copy per group, same seq\n"
		"  -i PID     RELAY: ask the kernel to deliver the payload to port id PID\n"
		"  -d PID     DATA straight to port id PID (no kernel involved)\n"
		"  -b GROUPS  BCAST: ask the kernel to broadcast to groups, e.g. 2,40 (up to ngroups)\n"
		"  -s         STATS: ask the kernel for its counters and print them\n"
		"  -a         request an ack per copy, print the kernel's verdict, exit 1 on an error ack\n"
		"  -p UNIT    netlink protocol (default %d, dummy_netlink; 2 = NETLINK_USERSOCK)\n"
		"  -m TEXT    payload (default \"hello\"); -l LEN: LEN bytes of 'x' instead\n"
		"  -c COUNT   send COUNT messages (seq increments)\n"
		"  -P PORT    port id to bind (default 0: kernel-assigned)\n"
		"  -S SEQ     first sequence number (default 1)\n"
		"  -j         print acks and stats as JSON lines\n",
		DNL_UNIT_DEFAULT);
}

/* Builds the message of @w->mode with sequence number @seq into @w->msg. */
static void ww_build(struct ww *w, uint32_t seq)
{
	struct nlmsghdr *nlh = (struct nlmsghdr *)w->msg;
	unsigned char *p = NLMSG_DATA(nlh);
	size_t plen = 0;

	memset(nlh, 0, NLMSG_HDRLEN);
	switch (w->mode) {
	case WW_RELAY: {
		struct dnl_relay r = { .portid = w->target };

		memcpy(p, &r, sizeof(r));
		plen = sizeof(r);
		nlh->nlmsg_type = DNL_MSG_RELAY;
		break;
	}
	case WW_BCAST: {
		struct dnl_bcast b = { .n_groups = w->nbgroups };

		memcpy(p, &b, sizeof(b));
		memcpy(p + sizeof(b), w->bgroups, 4 * w->nbgroups);
		plen = sizeof(b) + 4 * w->nbgroups;
		nlh->nlmsg_type = DNL_MSG_BCAST;
		break;
	}
	case WW_STATS:
		nlh->nlmsg_type = DNL_MSG_STATS;
		break;
	default:
		nlh->nlmsg_type = DNL_MSG_DATA;
		break;
	}
	if (w->mode != WW_STATS) {
		memcpy(p + plen, w->data, w->len);
		plen += w->len;
	}
	nlh->nlmsg_len = (uint32_t)NLMSG_LENGTH(plen);
	nlh->nlmsg_flags = NLM_F_REQUEST | (w->ack ? NLM_F_ACK : 0);
	nlh->nlmsg_seq = seq;
	nlh->nlmsg_pid = nlk_port_of(w->fd);
	w->msglen = nlh->nlmsg_len;
}

static void ww_print_ack(struct ww *w, const struct nlmsghdr *nlh,
			 uint32_t group)
{
	const struct nlmsgerr *e = NLMSG_DATA(nlh);
	const char *ext = nlk_ext_msg(nlh);
	int err = -e->error;

	if (err)
		w->failed = 1;
	if (w->json) {
		printf("{\"ack\":true,\"seq\":%u,\"group\":%u,\"error\":%d,\"code\":\"%s\"",
		       nlh->nlmsg_seq, group, err, nlk_errno_name(err));
		if (ext) {
			fputs(",\"message\":\"", stdout);
			nlk_json_bytes(stdout, (const unsigned char *)ext,
				       strlen(ext));
			fputc('"', stdout);
		}
		fputs("}\n", stdout);
	} else {
		printf("ack seq=%u group=%u error=%d (%s)%s%s\n",
		       nlh->nlmsg_seq, group, err, nlk_errno_name(err),
		       err ? ": " : "", err ? strerror(err) : "");
		if (ext)
			printf("    kernel says: %s\n", ext);
	}
	fflush(stdout);
}

static void ww_print_stats(struct ww *w, const struct dnl_stats *s)
{
	printf(w->json ? "{\"stats\":true,\"version\":%u,\"unit\":%u,\"received\":%llu,\"accepted\":%llu,\"ignored\":%llu,\"relayed\":%llu,\"broadcast\":%llu,\"ticks\":%llu,\"errors\":%llu,\"once_full\":%llu,\"once_senders\":%llu}\n"
		       : "stats version=%u unit=%u received=%llu accepted=%llu ignored=%llu relayed=%llu broadcast=%llu ticks=%llu errors=%llu once_full=%llu once_senders=%llu\n",
	       s->version, s->unit, (unsigned long long)s->received,
	       (unsigned long long)s->accepted,
	       (unsigned long long)s->ignored,
	       (unsigned long long)s->relayed,
	       (unsigned long long)s->broadcast,
	       (unsigned long long)s->ticks, (unsigned long long)s->errors,
	       (unsigned long long)s->once_full,
	       (unsigned long long)s->once_senders);
	fflush(stdout);
}

/*
 * Reads what the kernel answered to @seq. The kernel's input runs inside
 * our sendto(), so its replies are queued before sendto() returns; the
 * timeout only guards against a peer that is not dummy_netlink.
 * @want_ack: wait for the NLMSG_ERROR; @want_stats: wait for the reply.
 * Without either, reads what is queued and reports error acks.
 */
static void ww_collect(struct ww *w, uint32_t seq, uint32_t group,
		       int want_ack, int want_stats)
{
	static unsigned char buf[WW_RECV_SIZE];
	double deadline = nlk_now() + WW_TIMEOUT_MS / 1000.0;

	for (;;) {
		int waiting = want_ack || want_stats;
		struct pollfd pfd = { .fd = w->fd, .events = POLLIN };
		struct nlmsghdr *nlh;
		ssize_t n;
		int left_ms;

		left_ms = (int)((deadline - nlk_now()) * 1000);
		if (waiting && left_ms <= 0)
			nlk_die("no %s from the kernel for seq %u within %d ms",
				want_stats ? "STATS reply" : "ack", seq,
				WW_TIMEOUT_MS);
		if (poll(&pfd, 1, waiting ? left_ms : 0) < 0) {
			if (errno == EINTR)
				continue;
			nlk_die("poll: %s", strerror(errno));
		}
		if (!(pfd.revents & POLLIN)) {
			if (!waiting)
				return;
			continue;
		}
		n = recv(w->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			if (errno == ENOBUFS) {
				fprintf(stderr, "ww_nlk: overrun while waiting for the kernel's answer\n");
				continue;
			}
			nlk_die("recv: %s", strerror(errno));
		}
		for (nlh = (struct nlmsghdr *)buf; NLMSG_OK(nlh, (size_t)n);
		     nlh = NLMSG_NEXT(nlh, n)) {
			if (nlh->nlmsg_seq != seq)
				continue;
			if (nlh->nlmsg_type == NLMSG_ERROR &&
			    nlh->nlmsg_len >= NLMSG_LENGTH(sizeof(struct nlmsgerr))) {
				const struct nlmsgerr *e = NLMSG_DATA(nlh);

				if (want_ack || e->error)
					ww_print_ack(w, nlh, group);
				want_ack = 0;
				/* An error ends the exchange: no reply follows. */
				if (e->error)
					want_stats = 0;
			} else if (nlh->nlmsg_type == DNL_MSG_STATS &&
				   nlh->nlmsg_len >= NLMSG_LENGTH(NLK_STATS_V1_SIZE)) {
				struct dnl_stats s;

				nlk_stats_copy(&s, nlh);
				ww_print_stats(w, &s);
				want_stats = 0;
			}
		}
	}
}

/*
 * Sends the message built in @w->msg to port @port / groups @groups.
 * Returns 1 when a kernel endpoint took it (an answer will follow), 0 when
 * the group copy went out but the protocol has no kernel socket (as on
 * NETLINK_USERSOCK) or the destination is a user port.
 */
static int ww_send(struct ww *w, uint32_t port, uint32_t groups)
{
	struct sockaddr_nl to = {
		.nl_family = AF_NETLINK, .nl_pid = port, .nl_groups = groups,
	};

	if (sendto(w->fd, w->msg, w->msglen, MSG_DONTWAIT,
		   (struct sockaddr *)&to, sizeof(to)) >= 0)
		return port == 0;

	switch (errno) {
	case ECONNREFUSED:
		/*
		 * netlink_sendmsg() broadcasts first, then unicasts to nl_pid:
		 * a group copy has been delivered even when that unicast finds
		 * no kernel socket.
		 */
		if (groups)
			return 0;
		if (port)
			nlk_die("no socket has port id %u on protocol %d (ECONNREFUSED)",
				port, w->unit);
		nlk_die("protocol %d has no kernel socket (ECONNREFUSED): is dummy_netlink loaded on it?",
			w->unit);
	case EPERM:
		nlk_die("sending to %s on protocol %d: permission denied (needs CAP_NET_ADMIN unless the module has allow_unpriv=1)",
			groups ? "groups" : "a port", w->unit);
	case EAGAIN:
		nlk_die("port id %u has a full receive queue (EAGAIN)", port);
	case EMSGSIZE:
		nlk_die("message of %zu bytes is too large for the socket (EMSGSIZE)",
			w->msglen);
	default:
		nlk_die("sendto(port %u, groups %#x): %s", port, groups,
			strerror(errno));
	}
}

static void ww_one(struct ww *w, uint32_t seq)
{
	unsigned int bit;

	ww_build(w, seq);
	switch (w->mode) {
	case WW_GROUPS:
		for (bit = 0; bit < 32; bit++) {
			if (!(w->mask & (1u << bit)))
				continue;
			if (ww_send(w, 0, 1u << bit))
				ww_collect(w, seq, bit + 1, w->ack, 0);
			else if (w->ack)
				printf("delivered seq=%u group=%u (no kernel endpoint on protocol %d: no ack)\n",
				       seq, bit + 1, w->unit);
		}
		break;
	case WW_DIRECT:
		if (ww_send(w, w->target, 0))
			ww_collect(w, seq, 0, w->ack, 0);
		else if (w->ack)
			printf("delivered seq=%u port=%u (user ports do not ack)\n",
			       seq, w->target);
		break;
	default:
		ww_send(w, 0, 0);
		ww_collect(w, seq, 0, w->ack, w->mode == WW_STATS);
		break;
	}
	fflush(stdout);
}

int main(int argc, char **argv)
{
	static struct ww w = {
		.unit = DNL_UNIT_DEFAULT, .mode = WW_KERNEL, .seq = 1,
		.data = (const unsigned char *)"hello", .len = 5,
	};
	unsigned long long count = 1, i;
	uint32_t port = 0;
	int modes = 0, opt;
	unsigned char *fill = NULL;

	nlk_prog = "ww_nlk";
	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt(argc, argv, "g:i:d:b:sap:m:l:c:P:S:jh")) != -1) {
		switch (opt) {
		case 'g':
			w.mode = WW_GROUPS;
			w.mask = (uint32_t)nlk_number(optarg, "-g MASK", 1, UINT32_MAX);
			modes++;
			break;
		case 'i':
			w.mode = WW_RELAY;
			w.target = (uint32_t)nlk_number(optarg, "-i PID", 0, UINT32_MAX);
			modes++;
			break;
		case 'd':
			w.mode = WW_DIRECT;
			w.target = (uint32_t)nlk_number(optarg, "-d PID", 0, UINT32_MAX);
			modes++;
			break;
		case 'b':
			w.mode = WW_BCAST;
			w.nbgroups = nlk_group_list(optarg, w.bgroups, DNL_NGROUPS_MAX);
			modes++;
			break;
		case 's':
			w.mode = WW_STATS;
			modes++;
			break;
		case 'a':
			w.ack = 1;
			break;
		case 'p':
			w.unit = (int)nlk_number(optarg, "-p UNIT", 0, 31);
			break;
		case 'm':
			w.data = (const unsigned char *)optarg;
			w.len = strlen(optarg);
			break;
		case 'l':
			w.len = (size_t)nlk_number(optarg, "-l LEN", 0, WW_DATA_MAX);
			free(fill);
			fill = malloc(w.len + 1);
			if (!fill)
				nlk_die("out of memory");
			memset(fill, 'x', w.len);
			w.data = fill;
			break;
		case 'c':
			count = nlk_number(optarg, "-c COUNT", 1, UINT32_MAX);
			break;
		case 'P':
			port = (uint32_t)nlk_number(optarg, "-P PORT", 0, UINT32_MAX);
			break;
		case 'S':
			w.seq = (uint32_t)nlk_number(optarg, "-S SEQ", 0, UINT32_MAX);
			break;
		case 'j':
			w.json = 1;
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
		fprintf(stderr, "ww_nlk: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (modes > 1) {
		fprintf(stderr, "ww_nlk: -g, -i, -d, -b and -s exclude each other\n");
		usage(stderr);
		return 2;
	}

	w.msg = malloc(NLMSG_SPACE(sizeof(struct dnl_bcast) +
				   4 * DNL_NGROUPS_MAX + WW_DATA_MAX));
	if (!w.msg)
		nlk_die("out of memory");
	w.fd = nlk_open(w.unit, port, 0);
	nlk_set_int(w.fd, SOL_NETLINK, NETLINK_EXT_ACK, 1);
	nlk_set_int(w.fd, SOL_NETLINK, NETLINK_CAP_ACK, 1);

	for (i = 0; i < count; i++)
		ww_one(&w, w.seq + (uint32_t)i);

	close(w.fd);
	free(w.msg);
	free(fill);
	return w.failed ? 1 : 0;
}
