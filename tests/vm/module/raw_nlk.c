// SPDX-License-Identifier: GPL-2.0
/*
 * raw_nlk: test helper for the QEMU scenario.
 *
 *   raw_nlk [-p UNIT] [-g GROUP] [-e CODE[,CODE...]] CASE
 *	sends the hand-made datagram CASE to the kernel (or, with -g, to group
 *	GROUP 1..32, which the kernel also sees) with NLM_F_ACK, prints
 *	one line per ack and exits 0 when the acks' codes are exactly the
 *	expected list (OK, EINVAL, EOPNOTSUPP, ...), 1 otherwise.
 *   raw_nlk -U UID -- PROG [ARGS...]
 *	drops to UID/GID UID with no supplementary groups (and so no
 *	capabilities), then runs PROG.
 */
#include "nlk_common.h"

#include <grp.h>
#include <poll.h>

#define RAW_BUF		8192
#define RAW_DEAD_PORT	0x7ffffff0u

struct raw_frame {
	unsigned char buf[RAW_BUF];
	size_t len;
	uint32_t seq;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: raw_nlk [-p UNIT] [-g GROUP] [-e CODE[,CODE...]] CASE\n"
		"       raw_nlk -U UID -- PROG [ARGS...]\n"
		"cases: short overlong underlen unknown reserved relay-short relay-dead\n"
		"       bcast-range bcast-zero bcast-count toolarge stats-payload dup\n"
		"       multi trailing noreq\n");
}

/* Appends one message; returns its header for tweaks. */
static struct nlmsghdr *raw_put(struct raw_frame *f, uint16_t type,
				const void *payload, size_t len)
{
	struct nlmsghdr *nlh = (struct nlmsghdr *)(f->buf + f->len);

	memset(nlh, 0, NLMSG_SPACE(len));
	nlh->nlmsg_len = (uint32_t)NLMSG_LENGTH(len);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = ++f->seq;
	if (len)
		memcpy(NLMSG_DATA(nlh), payload, len);
	f->len += NLMSG_SPACE(len);
	return nlh;
}

static uint32_t raw_groups;	/* nl_groups of every send */

static void raw_send(int fd, const struct raw_frame *f)
{
	struct sockaddr_nl to = {
		.nl_family = AF_NETLINK, .nl_groups = raw_groups,
	};

	if (sendto(fd, f->buf, f->len, 0, (struct sockaddr *)&to,
		   sizeof(to)) < 0)
		nlk_die("sendto: %s", strerror(errno));
}

/* Builds CASE into one or two datagrams; returns how many acks to expect. */
static int raw_case(int fd, const char *name, uint32_t seq0)
{
	struct raw_frame f = { .seq = seq0 };
	unsigned char big[DNL_PAYLOAD_MAX + 1];
	struct nlmsghdr *nlh;

	memset(big, 'x', sizeof(big));
	if (!strcmp(name, "short")) {
		memcpy(f.buf, "abc", 3);
		f.len = 3;
	} else if (!strcmp(name, "overlong")) {
		nlh = raw_put(&f, DNL_MSG_DATA, "hello", 5);
		nlh->nlmsg_len = 0xffff;
	} else if (!strcmp(name, "underlen")) {
		nlh = raw_put(&f, DNL_MSG_DATA, "hello", 5);
		nlh->nlmsg_len = 8;
	} else if (!strcmp(name, "unknown")) {
		raw_put(&f, 0x42, "hello", 5);
	} else if (!strcmp(name, "reserved")) {
		struct dnl_relay r = { .portid = 1, .reserved = 1 };

		raw_put(&f, DNL_MSG_RELAY, &r, sizeof(r));
	} else if (!strcmp(name, "relay-short")) {
		raw_put(&f, DNL_MSG_RELAY, "abcd", 4);
	} else if (!strcmp(name, "relay-dead")) {
		struct dnl_relay r = { .portid = RAW_DEAD_PORT };

		raw_put(&f, DNL_MSG_RELAY, &r, sizeof(r));
	} else if (!strcmp(name, "bcast-range")) {
		uint32_t b[3] = { 1, 0, DNL_NGROUPS_MAX + 1 };

		raw_put(&f, DNL_MSG_BCAST, b, sizeof(b));
	} else if (!strcmp(name, "bcast-zero")) {
		uint32_t b[2] = { 0, 0 };

		raw_put(&f, DNL_MSG_BCAST, b, sizeof(b));
	} else if (!strcmp(name, "bcast-count")) {
		uint32_t b[3] = { 1000, 0, 2 };

		raw_put(&f, DNL_MSG_BCAST, b, sizeof(b));
	} else if (!strcmp(name, "toolarge")) {
		raw_put(&f, DNL_MSG_DATA, big, sizeof(big));
	} else if (!strcmp(name, "stats-payload")) {
		raw_put(&f, DNL_MSG_STATS, "x", 1);
	} else if (!strcmp(name, "dup")) {
		raw_put(&f, DNL_MSG_DATA, "dup", 3);
		raw_send(fd, &f);
		raw_send(fd, &f);
		return 2;
	} else if (!strcmp(name, "multi")) {
		raw_put(&f, DNL_MSG_DATA, "multi", 5);
		raw_put(&f, 0x42, "multi", 5);
		raw_send(fd, &f);
		return 2;
	} else if (!strcmp(name, "trailing")) {
		raw_put(&f, DNL_MSG_DATA, "trail", 5);
		memcpy(f.buf + f.len, "junk!", 5);
		f.len += 5;
		raw_send(fd, &f);
		return 2;
	} else if (!strcmp(name, "noreq")) {
		/* Not a request: netlink_rcv_skb acks it 0 and skips it. */
		nlh = raw_put(&f, 0x42, "noreq", 5);
		nlh->nlmsg_flags = NLM_F_ACK;
	} else {
		nlk_die("unknown case '%s'", name);
	}
	raw_send(fd, &f);
	return 1;
}

static int raw_run(int unit, const char *name, const char *expect)
{
	static unsigned char buf[RAW_BUF];
	char got[256] = "";
	int fd = nlk_open(unit, 0, 0);
	int want = raw_case(fd, name, (uint32_t)getpid() << 8);
	int acks = 0;

	while (acks < want) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		struct nlmsghdr *nlh;
		ssize_t n;

		if (poll(&pfd, 1, 2000) <= 0)
			break;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0)
			nlk_die("recv: %s", strerror(errno));
		for (nlh = (struct nlmsghdr *)buf; NLMSG_OK(nlh, (size_t)n);
		     nlh = NLMSG_NEXT(nlh, n)) {
			const struct nlmsgerr *e = NLMSG_DATA(nlh);

			if (nlh->nlmsg_type != NLMSG_ERROR)
				continue;
			printf("ack seq=%u error=%d (%s)\n", nlh->nlmsg_seq,
			       -e->error, nlk_errno_name(-e->error));
			snprintf(got + strlen(got), sizeof(got) - strlen(got),
				 "%s%s", acks ? "," : "",
				 nlk_errno_name(-e->error));
			acks++;
		}
	}
	printf("%s: acks %s (expected %s)\n", name, acks ? got : "none",
	       expect ? expect : "-");
	close(fd);
	return expect && strcmp(got, expect) ? 1 : 0;
}

int main(int argc, char **argv)
{
	const char *expect = NULL;
	int unit = DNL_UNIT_DEFAULT, opt;
	long uid = -1;

	nlk_prog = "raw_nlk";
	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt(argc, argv, "+p:g:e:U:h")) != -1) {
		switch (opt) {
		case 'g':
			raw_groups = 1u << (nlk_number(optarg, "-g GROUP", 1, 32) - 1);
			break;
		case 'p':
			unit = (int)nlk_number(optarg, "-p UNIT", 0, 31);
			break;
		case 'e':
			expect = optarg;
			break;
		case 'U':
			uid = (long)nlk_number(optarg, "-U UID", 1, 65535);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (uid > 0) {
		if (optind >= argc) {
			usage(stderr);
			return 2;
		}
		if (setgroups(0, NULL) || setgid((gid_t)uid) ||
		    setuid((uid_t)uid))
			nlk_die("dropping to uid %ld: %s", uid, strerror(errno));
		execvp(argv[optind], argv + optind);
		nlk_die("exec %s: %s", argv[optind], strerror(errno));
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	return raw_run(unit, argv[optind], expect);
}
