// SPDX-License-Identifier: GPL-2.0
/*
 * raw_nlk: test helper for the QEMU scenario.
 *
 *   raw_nlk [-p UNIT] [-g GROUP] [-n OWN] [-e CODE[,CODE...]] CASE
 *	sends the hand-made datagram CASE to the kernel (or, with -g, to group
 *	GROUP 1..32, which the kernel also sees) with NLM_F_ACK, prints
 *	one line per ack (and the kernel's extended-ack text), one per
 *	RELAYED message that reaches it, and exits 0 when the acks' codes are
 *	exactly the expected list (OK, EINVAL, EOPNOTSUPP, ...) and the case's
 *	own check holds, 1 otherwise. -n: the "gap" case's own messages.
 *   raw_nlk [-p UNIT] -F COUNT
 *	sends COUNT pseudo-random datagrams (seeded by the pid, printed) to the
 *	kernel and to groups 1..4: headers with random lengths, types near the
 *	protocol's, random flags, RELAY/BCAST bodies with random fields.
 *	Drains the acks as it goes; exits 0 when every send was accepted.
 *   raw_nlk -U UID -- PROG [ARGS...]
 *	drops to UID/GID UID with no supplementary groups (and so no
 *	capabilities), then runs PROG.
 */
#define _GNU_SOURCE	/* struct ucred, SCM_CREDENTIALS */
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
		"       raw_nlk [-p UNIT] -F COUNT\n"
		"       raw_nlk -U UID -- PROG [ARGS...]\n"
		"cases: short overlong underlen unknown reserved relay-short relay-dead\n"
		"       bcast-range bcast-zero bcast-count toolarge stats-payload dup\n"
		"       stats-twice same-seq-types multi trailing noreq relay-self\n"
		"       bcast-ok stats gap relay-retry\n");
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

static int raw_unit = DNL_UNIT_DEFAULT;
static uint32_t raw_groups;	/* nl_groups of every send */
static unsigned int raw_gap_own = 70;	/* -n: the "gap" case */
#define RAW_GAP_OTHER	70
#define RAW_RETRY_PORT	(RAW_DEAD_PORT - 1)
/* relay-retry: the late target's socket, and the seq it must receive */
static int raw_retry_fd = -1;
static uint32_t raw_retry_seq;

static void raw_send(int fd, const struct raw_frame *f)
{
	struct sockaddr_nl to = {
		.nl_family = AF_NETLINK, .nl_groups = raw_groups,
	};

	if (sendto(fd, f->buf, f->len, 0, (struct sockaddr *)&to,
		   sizeof(to)) < 0)
		nlk_die("sendto: %s", strerror(errno));
}

static void raw_send_to(int fd, const struct raw_frame *f, uint32_t groups)
{
	struct sockaddr_nl to = {
		.nl_family = AF_NETLINK, .nl_groups = groups,
	};

	if (sendto(fd, f->buf, f->len, 0, (struct sockaddr *)&to,
		   sizeof(to)) < 0)
		nlk_die("sendto: %s", strerror(errno));
}

/*
 * gap: message X to group 1, then RAW_GAP_OTHER DATA from another socket
 * and raw_gap_own of its own (no NLM_F_ACK: acked only on error), then X's
 * copy to group 2. The kernel must see X once while fewer than
 * DNL_ONCE_KEYS of the sender's own requests come in between.
 */
static int raw_gap(int fd, uint32_t seq0)
{
	struct raw_frame x = { .seq = seq0 }, f;
	struct nlmsghdr *nlh;
	int other = nlk_open(raw_unit, 0, 0);
	unsigned int i;

	raw_put(&x, DNL_MSG_DATA, "gap-x", 5);
	raw_send_to(fd, &x, 1u << 0);
	for (i = 0; i < RAW_GAP_OTHER; i++) {
		f = (struct raw_frame){ .seq = seq0 + i };
		nlh = raw_put(&f, DNL_MSG_DATA, "gap-other", 9);
		nlh->nlmsg_flags = NLM_F_REQUEST;
		raw_send_to(other, &f, 0);
	}
	close(other);
	for (i = 0; i < raw_gap_own; i++) {
		f = (struct raw_frame){ .seq = seq0 + 1 + i };
		nlh = raw_put(&f, DNL_MSG_DATA, "gap-own", 7);
		nlh->nlmsg_flags = NLM_F_REQUEST;
		raw_send_to(fd, &f, 0);
	}
	raw_send_to(fd, &x, 1u << 1);
	return 2;
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
	} else if (!strcmp(name, "stats-twice")) {
		raw_put(&f, DNL_MSG_STATS, NULL, 0);
		raw_send(fd, &f);
		raw_send(fd, &f);
		return 4;
	} else if (!strcmp(name, "same-seq-types")) {
		struct dnl_relay r = { .portid = RAW_DEAD_PORT };

		raw_put(&f, DNL_MSG_DATA, "first", 5);
		raw_send(fd, &f);
		f.len = 0;
		f.seq--;
		raw_put(&f, DNL_MSG_RELAY, &r, sizeof(r));
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
	} else if (!strcmp(name, "relay-self")) {
		struct {
			struct dnl_relay r;
			char data[4];
		} req = { .r = { .portid = nlk_port_of(fd) }, .data = "self" };

		raw_put(&f, DNL_MSG_RELAY, &req, sizeof(req));
	} else if (!strcmp(name, "bcast-ok")) {
		uint32_t b[3] = { 1, 0, 3 };

		raw_put(&f, DNL_MSG_BCAST, b, sizeof(b));
	} else if (!strcmp(name, "stats")) {
		raw_put(&f, DNL_MSG_STATS, NULL, 0);
	} else if (!strcmp(name, "gap")) {
		return raw_gap(fd, seq0);
	} else if (!strcmp(name, "relay-retry")) {
		struct {
			struct dnl_relay r;
			char data[5];
		} req = { .r = { .portid = RAW_RETRY_PORT }, .data = "retry" };
		int acks = 0;

		raw_put(&f, DNL_MSG_RELAY, &req, sizeof(req));
		raw_send(fd, &f);
		/* the first try is refused before the port exists; then it does */
		raw_retry_fd = nlk_open(raw_unit, RAW_RETRY_PORT, 0);
		raw_retry_seq = f.seq;
		raw_send(fd, &f);
		acks = 2;
		return acks;
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

static uint64_t raw_rng;

static uint32_t raw_rand(void)
{
	/* xorshift64*: reproducible from the printed seed */
	raw_rng ^= raw_rng >> 12;
	raw_rng ^= raw_rng << 25;
	raw_rng ^= raw_rng >> 27;
	return (uint32_t)((raw_rng * 0x2545f4914f6cdd1dull) >> 32);
}

/* One random message at @p (room for @room bytes); returns its size. */
static size_t raw_fuzz_msg(unsigned char *p, size_t room, int self_port)
{
	struct nlmsghdr *nlh = (struct nlmsghdr *)p;
	size_t plen = raw_rand() % 96, i;
	uint32_t *w;

	if (raw_rand() % 16 == 0)
		plen = raw_rand() % (DNL_PAYLOAD_MAX + 64);
	if (NLMSG_SPACE(plen) > room)
		plen = room - NLMSG_HDRLEN;
	for (i = 0; i < plen; i++)
		p[NLMSG_HDRLEN + i] = (unsigned char)raw_rand();
	nlh->nlmsg_len = (uint32_t)NLMSG_LENGTH(plen);
	nlh->nlmsg_type = (uint16_t)(0x0e + raw_rand() % 10);
	nlh->nlmsg_flags = (uint16_t)(NLM_F_REQUEST | (raw_rand() & 0x1f));
	nlh->nlmsg_seq = raw_rand();
	nlh->nlmsg_pid = raw_rand();
	w = (uint32_t *)NLMSG_DATA(nlh);
	if (plen >= 8 && raw_rand() % 2) {
		/* plausible RELAY/BCAST heads, so the deep paths run too */
		w[0] = nlh->nlmsg_type == DNL_MSG_RELAY && raw_rand() % 2 ?
			(uint32_t)self_port : raw_rand() % 70;
		w[1] = raw_rand() % 8 ? 0 : raw_rand();
		for (i = 2; i < plen / 4 && i < 70; i++)
			w[i] = raw_rand() % 80;
	}
	switch (raw_rand() % 12) {
	case 0:
		nlh->nlmsg_len = raw_rand();
		break;
	case 1:
		nlh->nlmsg_len = raw_rand() % NLMSG_HDRLEN;
		break;
	case 2:
		nlh->nlmsg_len += raw_rand() % 8;
		break;
	}
	return NLMSG_SPACE(plen);
}

static int raw_fuzz(int unit, unsigned long long count)
{
	static unsigned char buf[RAW_BUF];
	unsigned long long i, acks = 0, refused = 0;
	int fd = nlk_open(unit, 0, 0);
	int self = (int)nlk_port_of(fd);

	raw_rng = ((uint64_t)getpid() << 32) | 0x9e3779b9u;
	printf("fuzz: seed %#llx, %llu datagrams\n",
	       (unsigned long long)raw_rng, count);
	nlk_set_int(fd, SOL_NETLINK, 11 /* NETLINK_EXT_ACK */, 1);
	for (i = 0; i < count; i++) {
		struct sockaddr_nl to = { .nl_family = AF_NETLINK };
		size_t len = 0;
		int n = 1 + (int)(raw_rand() % 3);

		while (n-- && len + NLMSG_HDRLEN < sizeof(buf))
			len += raw_fuzz_msg(buf + len, sizeof(buf) - len, self);
		/* cut short; not to 0: netlink refuses that (ENODATA) */
		if (raw_rand() % 8 == 0)
			len = 1 + raw_rand() % len;
		if (raw_rand() % 3 == 0)
			to.nl_groups = 1u << (raw_rand() % 4);
		if (sendto(fd, buf, len, 0, (struct sockaddr *)&to,
			   sizeof(to)) < 0) {
			if (errno != ECONNREFUSED)
				nlk_die("fuzz: sendto: %s", strerror(errno));
			refused++;
		}
		while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0 ||
		       errno == ENOBUFS)
			acks++;
	}
	printf("fuzz: %llu datagrams, %llu replies read, %llu refused\n",
	       count, acks, refused);
	close(fd);
	return refused ? 1 : 0;
}

/*
 * Prints a relay's delivery: who asked, as the module wrote it, and the
 * credentials that came with it (SO_PASSCRED; uid 4294967295: none).
 */
static void raw_print_relayed(const struct nlmsghdr *nlh, uint32_t from,
			      const struct ucred *creds)
{
	struct dnl_relayed r = { 0 };
	size_t len = nlh->nlmsg_len - NLMSG_HDRLEN;

	if (len >= sizeof(r))
		memcpy(&r, NLMSG_DATA(nlh), sizeof(r));
	printf("relayed seq=%u port=%u relayed_from=%u relayed_uid=%u creds_uid=%u len=%zu\n",
	       nlh->nlmsg_seq, from, r.portid, r.uid, (unsigned int)creds->uid,
	       len);
}

/*
 * relay-retry: the target bound after the first try must get the retry.
 * Any message with the request's seq counts (whatever its type), so the
 * check says only "delivered or not".
 */
static int raw_retry_delivered(void)
{
	static unsigned char buf[RAW_BUF];
	struct pollfd pfd = { .fd = raw_retry_fd, .events = POLLIN };
	struct nlmsghdr *nlh;
	ssize_t n;

	if (poll(&pfd, 1, 1000) <= 0) {
		printf("relay-retry: the retry was not delivered\n");
		return 0;
	}
	n = recv(raw_retry_fd, buf, sizeof(buf), 0);
	nlh = (struct nlmsghdr *)buf;
	if (n < (ssize_t)NLMSG_HDRLEN || nlh->nlmsg_seq != raw_retry_seq) {
		printf("relay-retry: got %zd bytes, not seq %u\n", n,
		       raw_retry_seq);
		return 0;
	}
	printf("relay-retry: delivered seq=%u type=%s\n", nlh->nlmsg_seq,
	       nlk_type_name(nlh->nlmsg_type) ?: "?");
	return 1;
}

/*
 * Reads one datagram from @fd (waiting up to @wait_ms) and notes its acks
 * and STATS replies in @got; returns how many, or -1 when nothing came.
 */
static int raw_read(int fd, int wait_ms, char *got, size_t size)
{
	static unsigned char buf[RAW_BUF];
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char cbuf[CMSG_SPACE(sizeof(struct ucred))];
	struct sockaddr_nl from = { 0 };
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr msg = {
		.msg_name = &from, .msg_namelen = sizeof(from),
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct ucred creds = { .pid = -1, .uid = (uid_t)-1 };
	struct cmsghdr *c;
	struct nlmsghdr *nlh;
	int replies = 0;
	ssize_t n;

	if (poll(&pfd, 1, wait_ms) <= 0)
		return -1;
	n = recvmsg(fd, &msg, 0);
	if (n < 0)
		nlk_die("recv: %s", strerror(errno));
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS)
			memcpy(&creds, CMSG_DATA(c), sizeof(creds));
	for (nlh = (struct nlmsghdr *)buf; NLMSG_OK(nlh, (size_t)n);
	     nlh = NLMSG_NEXT(nlh, n)) {
		const struct nlmsgerr *e = NLMSG_DATA(nlh);
		const char *ext;

		if (nlh->nlmsg_type == DNL_MSG_RELAYED ||
		    nlh->nlmsg_type == DNL_MSG_DATA) {
			raw_print_relayed(nlh, from.nl_pid, &creds);
			continue;
		}
		if (nlh->nlmsg_type == DNL_MSG_STATS) {
			printf("reply seq=%u STATS\n", nlh->nlmsg_seq);
			snprintf(got + strlen(got), size - strlen(got), "%sSTATS",
				 *got ? "," : "");
			replies++;
			continue;
		}
		if (nlh->nlmsg_type != NLMSG_ERROR)
			continue;
		printf("ack seq=%u error=%d (%s)\n", nlh->nlmsg_seq, -e->error,
		       nlk_errno_name(-e->error));
		ext = nlk_ext_msg(nlh);
		if (ext)
			printf("    kernel says: %s\n", ext);
		snprintf(got + strlen(got), size - strlen(got), "%s%s",
			 *got ? "," : "", nlk_errno_name(-e->error));
		replies++;
	}
	return replies;
}

static int raw_run(int unit, const char *name, const char *expect)
{
	char got[256] = "";
	int fd = nlk_open(unit, 0, 0);
	int want, replies = 0, n, ok = 1;

	nlk_set_int(fd, SOL_NETLINK, NETLINK_EXT_ACK, 1);
	nlk_set_int(fd, SOL_SOCKET, SO_PASSCRED, 1);
	want = raw_case(fd, name, (uint32_t)getpid() << 8);
	while (replies < want) {
		n = raw_read(fd, 2000, got, sizeof(got));
		if (n < 0)
			break;
		replies += n;
	}
	/*
	 * The kernel's input runs inside sendto(): whatever else it answered
	 * (the ack after a STATS reply, a RELAYED to itself) is queued now.
	 */
	while (raw_read(fd, 0, got, sizeof(got)) >= 0)
		;
	if (raw_retry_fd >= 0)
		ok = raw_retry_delivered();
	printf("%s: acks %s (expected %s)\n", name, *got ? got : "none",
	       expect ? expect : "-");
	close(fd);
	return (expect && strcmp(got, expect)) || !ok ? 1 : 0;
}

int main(int argc, char **argv)
{
	unsigned long long fuzz = 0;
	const char *expect = NULL;
	int unit = DNL_UNIT_DEFAULT, opt;
	long uid = -1;

	nlk_prog = "raw_nlk";
	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt(argc, argv, "+p:g:n:e:F:U:h")) != -1) {
		switch (opt) {
		case 'g':
			raw_groups = 1u << (nlk_number(optarg, "-g GROUP", 1, 32) - 1);
			break;
		case 'p':
			unit = (int)nlk_number(optarg, "-p UNIT", 0, 31);
			raw_unit = unit;
			break;
		case 'n':
			raw_gap_own = (unsigned int)nlk_number(optarg, "-n OWN", 0, 100000);
			break;
		case 'e':
			expect = optarg;
			break;
		case 'F':
			fuzz = nlk_number(optarg, "-F COUNT", 1, 100000000);
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
	if (fuzz)
		return raw_fuzz(unit, fuzz);
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	return raw_run(unit, argv[optind], expect);
}
