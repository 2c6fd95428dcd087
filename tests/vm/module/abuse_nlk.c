// SPDX-License-Identifier: GPL-2.0
/*
 * abuse_nlk: reliability case 9, the module under abuse (run by abuse.sh in
 * the QEMU guest, one burst per load of the module).
 *
 *   abuse_nlk [-p UNIT] [-r R_GRPS] [-N NGROUPS] [-S SENDERS] [-n FRAMES]
 *	     [-s SEED] [-B BURST]
 *
 * One burst: forks three readers (one on groups 1..32 with a large buffer,
 * one on groups 33..NGROUPS with a small one, one that never reads), takes
 * the module's STATS, forks SENDERS senders that send FRAMES random
 * datagrams each, takes STATS again, stops the readers, and compares.
 *
 * Each sender builds datagrams of one to three messages (random types
 * around the protocol's, control types, random types; random flags with
 * and without NLM_F_REQUEST and NLM_F_ACK; DATA, RELAY, BCAST and STATS
 * payloads that are well formed or corrupted; broken nlmsg_len; trailing
 * bytes; datagrams cut short) and sends each to the kernel directly, to a
 * group in r_grps (where only DATA is taken; any other type is refused
 * with EPROTOTYPE), or to another group. It predicts from the protocol
 * (include/uapi/linux/dummy_netlink.h and netlink_rcv_skb()) what the
 * module must do with every message, and after every send reads every ack
 * and reply (the kernel's input runs inside sendmsg(), so they are all
 * queued by then) and checks them one by one: the error of each error ack,
 * an ack for NLM_F_ACK, the STATS reply. The only outcome it cannot predict
 * is a RELAY to a live port: delivered, or EAGAIN when that reader is full;
 * the ack says which. Every seq is new, so no message is a repeat.
 *
 * The burst passes when no ack was unexpected or missing and the module's
 * counters moved by exactly what the senders predict:
 *   received = messages handed to the input (REQUEST, type >= 0x10) +
 *	malformed rests, + 1 for the second STATS request itself
 *   accepted, ignored, errors, relayed, broadcast (copies) as predicted
 *   received = accepted + ignored + errors + relayed + BCAST done + STATS done
 * Prints one "burst ..." line with the figures; exits 0 on pass.
 */
#include "nlk_common.h"

#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define AB_BUF		(64 * 1024)
#define AB_FRAME_MAX	(12 * 1024)
#define AB_SENDERS_MAX	16
#define AB_READERS	3
#define AB_PORT_BASE	0x7ffe0000u	/* readers bind AB_PORT_BASE + 1..3 */
#define AB_DEAD_BASE	0x7fff0000u	/* never bound: RELAY there is refused */
#define AB_MSGS_MAX	3

#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK	10
#endif
#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK	11
#endif

/* What one sender saw, in memory shared with the parent. */
struct ab_tally {
	uint64_t frames;
	uint64_t messages;
	uint64_t handled;	/* module's "received" */
	uint64_t accepted;
	uint64_t ignored;
	uint64_t errors;
	uint64_t relayed;
	uint64_t broadcast;	/* copies */
	uint64_t bcast_done;
	uint64_t stats_done;
	uint64_t acks;
	uint64_t relay_eagain;
	uint64_t relay_rx;	/* relays to itself that came back */
	uint64_t mismatches;
	uint64_t done;
	char first_mismatch[200];
};

struct ab_reader_tally {
	uint64_t messages;
	uint64_t enobufs;
};

/* Expected outcome of one message of a datagram. */
enum ab_kind {
	AB_SKIPPED,	/* not a request, or a control type: ack 0 if NLM_F_ACK */
	AB_IGNORED,	/* group copy outside r_grps */
	AB_ACCEPTED,	/* DATA kept */
	AB_ERROR,	/* error ack with @err */
	AB_RELAY_LIVE,	/* delivered (ack 0 if NLM_F_ACK) or EAGAIN */
	AB_BCAST_OK,
	AB_STATS_OK,	/* reply, then ack 0 if NLM_F_ACK */
	AB_REJECT,	/* malformed rest: EINVAL */
};

struct ab_expect {
	enum ab_kind kind;
	int err;
	uint32_t seq;
	uint32_t copies;
	int ack;
};

struct ab_ctx {
	int fd;
	uint32_t self;
	uint32_t r_grps;
	uint32_t ngroups;
	uint32_t seq;
	uint64_t rng;
	struct ab_tally *t;
};

static uint32_t ab_rand(struct ab_ctx *c)
{
	/* xorshift64*: a burst is reproducible from its printed seed */
	c->rng ^= c->rng >> 12;
	c->rng ^= c->rng << 25;
	c->rng ^= c->rng >> 27;
	return (uint32_t)((c->rng * 0x2545f4914f6cdd1dull) >> 32);
}

static uint32_t ab_below(struct ab_ctx *c, uint32_t n)
{
	return ab_rand(c) % n;
}

static void ab_fill(struct ab_ctx *c, unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (unsigned char)ab_rand(c);
}

/* Data lengths: mostly short, some at and beyond DNL_PAYLOAD_MAX. */
static size_t ab_data_len(struct ab_ctx *c)
{
	switch (ab_below(c, 16)) {
	case 0:
		return DNL_PAYLOAD_MAX + ab_below(c, 2);
	case 1:
		return DNL_PAYLOAD_MAX + 1 + ab_below(c, 200);
	case 2:
		return ab_below(c, DNL_PAYLOAD_MAX);
	default:
		return ab_below(c, 120);
	}
}

static uint32_t ab_relay_port(struct ab_ctx *c)
{
	switch (ab_below(c, 6)) {
	case 0:
		return 0;
	case 1:
	case 2:
		return AB_DEAD_BASE + ab_below(c, 256);
	case 3:
		return c->self;
	default:
		return AB_PORT_BASE + 1 + ab_below(c, AB_READERS);
	}
}

static uint32_t ab_group(struct ab_ctx *c)
{
	switch (ab_below(c, 40)) {
	case 0:
		return 0;
	case 1:
		return c->ngroups + 1 + ab_below(c, 100);
	case 2:
		return ab_rand(c);
	default:
		return 1 + ab_below(c, c->ngroups < 70 ? c->ngroups : 70);
	}
}

/* A payload for @type at @p, at most @room bytes; returns its length. */
static size_t ab_payload(struct ab_ctx *c, uint16_t type, unsigned char *p,
			 size_t room)
{
	uint32_t w[2 + DNL_BCAST_GROUPS_MAX];
	size_t len, head = 0, i;

	switch (type) {
	case DNL_MSG_DATA:
		len = ab_data_len(c);
		break;
	case DNL_MSG_RELAY:
		w[0] = ab_relay_port(c);
		w[1] = ab_below(c, 10) ? 0 : ab_rand(c) | 1;
		head = 8;
		len = ab_below(c, 10) ? head + ab_data_len(c) : ab_below(c, 8);
		break;
	case DNL_MSG_BCAST:
		switch (ab_below(c, 12)) {
		case 0:
			w[0] = 0;
			break;
		case 1:
			w[0] = DNL_BCAST_GROUPS_MAX + 1 + ab_below(c, 100);
			break;
		case 2:
			w[0] = ab_rand(c);
			break;
		default:
			w[0] = 1 + ab_below(c, ab_below(c, 4) ? 8 : DNL_BCAST_GROUPS_MAX);
		}
		w[1] = ab_below(c, 10) ? 0 : ab_rand(c) | 1;
		head = w[0] >= 1 && w[0] <= DNL_BCAST_GROUPS_MAX ? w[0] : ab_below(c, 8);
		for (i = 0; i < head; i++)
			w[2 + i] = ab_group(c);
		head = 8 + 4 * head;
		len = head + ab_data_len(c);
		if (!ab_below(c, 10))
			len = ab_below(c, (uint32_t)len); /* cut anywhere */
		break;
	case DNL_MSG_STATS:
		len = ab_below(c, 4) ? 0 : 1 + ab_below(c, 40);
		break;
	default:
		len = ab_below(c, 64);
	}
	if (len > room)
		len = room;
	ab_fill(c, p, len);
	memcpy(p, w, head < len ? head : len);
	return len;
}

static uint16_t ab_type(struct ab_ctx *c)
{
	switch (ab_below(c, 10)) {
	case 0:
		return (uint16_t)ab_below(c, NLMSG_MIN_TYPE);	/* control */
	case 1:
		return (uint16_t)ab_rand(c);
	case 2:
		return (uint16_t)(DNL_MSG_STATS + 1 + ab_below(c, 4));
	default:
		return (uint16_t)(DNL_MSG_DATA + ab_below(c, 5));	/* TICK too */
	}
}

/*
 * The module's verdict on a request it handles (dnl_dispatch() and the
 * dnl_rcv_*() checks, in their order), from the bytes as the kernel sees
 * them: the payload is what nlmsg_len says.
 */
static void ab_predict(const struct ab_ctx *c, const struct nlmsghdr *nlh,
		       struct ab_expect *e)
{
	long plen = (long)nlh->nlmsg_len - NLMSG_HDRLEN;
	const uint32_t *w = (const uint32_t *)NLMSG_DATA(nlh);
	long len;
	uint32_t i;

	e->kind = AB_ERROR;
	switch (nlh->nlmsg_type) {
	case DNL_MSG_DATA:
		if (plen > DNL_PAYLOAD_MAX)
			e->err = EMSGSIZE;
		else
			e->kind = AB_ACCEPTED;
		return;
	case DNL_MSG_RELAY:
		len = plen - 8;
		if (len < 0 || w[1])
			e->err = EINVAL;
		else if (len > DNL_PAYLOAD_MAX)
			e->err = EMSGSIZE;
		else if (!w[0])
			e->err = EINVAL;
		else if (w[0] >= AB_DEAD_BASE && w[0] < AB_DEAD_BASE + 256)
			e->err = ECONNREFUSED;
		else
			e->kind = AB_RELAY_LIVE;
		return;
	case DNL_MSG_BCAST:
		len = plen - 8;
		if (len < 0 || w[1] || w[0] < 1 || w[0] > DNL_BCAST_GROUPS_MAX) {
			e->err = EINVAL;
			return;
		}
		len -= 4 * (long)w[0];
		if (len < 0) {
			e->err = EINVAL;
			return;
		}
		if (len > DNL_PAYLOAD_MAX) {
			e->err = EMSGSIZE;
			return;
		}
		for (i = 0; i < w[0]; i++) {
			if (w[2 + i] < 1 || w[2 + i] > c->ngroups) {
				e->err = ERANGE;
				return;
			}
		}
		e->kind = AB_BCAST_OK;
		e->copies = w[0];
		return;
	case DNL_MSG_STATS:
		if (plen)
			e->err = EINVAL;
		else
			e->kind = AB_STATS_OK;
		return;
	default:
		e->err = EOPNOTSUPP;
	}
}

/*
 * Builds one datagram into @buf; returns its length and fills @exp, in the
 * order netlink_rcv_skb() walks it, with what the module must answer.
 */
static size_t ab_datagram(struct ab_ctx *c, unsigned char *buf, uint32_t group,
			  struct ab_expect *exp, unsigned int *nexp)
{
	unsigned int n = 1 + ab_below(c, AB_MSGS_MAX), i;
	int to_kernel = !group || (c->r_grps & (1u << (group - 1)));
	size_t len = 0, off;

	for (i = 0; i < n && len + NLMSG_HDRLEN <= AB_FRAME_MAX; i++) {
		struct nlmsghdr *nlh = (struct nlmsghdr *)(buf + len);
		size_t plen;

		nlh->nlmsg_type = ab_type(c);
		nlh->nlmsg_flags = (uint16_t)(ab_rand(c) & 0xff1e);
		if (ab_below(c, 8))
			nlh->nlmsg_flags |= NLM_F_REQUEST;
		nlh->nlmsg_seq = ++c->seq;
		nlh->nlmsg_pid = ab_below(c, 4) ? c->self : ab_rand(c);
		plen = ab_payload(c, nlh->nlmsg_type, buf + len + NLMSG_HDRLEN,
				  AB_FRAME_MAX - len - NLMSG_HDRLEN);
		nlh->nlmsg_len = (uint32_t)NLMSG_LENGTH(plen);
		memset(buf + len + NLMSG_LENGTH(plen), 0,
		       NLMSG_SPACE(plen) - NLMSG_LENGTH(plen));
		switch (ab_below(c, 24)) {
		case 0:
			nlh->nlmsg_len = ab_rand(c);
			break;
		case 1:
			nlh->nlmsg_len = ab_below(c, NLMSG_HDRLEN);
			break;
		case 2:
			nlh->nlmsg_len += 1 + ab_below(c, 7);
			break;
		}
		len += NLMSG_SPACE(plen);
		c->t->messages++;
	}
	if (!ab_below(c, 10)) {
		len = 1 + ab_below(c, (uint32_t)len);	/* cut; 0 is refused */
	} else if (!ab_below(c, 20) && len + 15 <= AB_FRAME_MAX) {
		size_t junk = 1 + ab_below(c, 15);

		ab_fill(c, buf + len, junk);
		len += junk;
	}

	*nexp = 0;
	off = 0;
	while (len - off >= NLMSG_HDRLEN) {
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)(buf + off);
		struct ab_expect *e;
		size_t step;

		if (nlh->nlmsg_len < NLMSG_HDRLEN || nlh->nlmsg_len > len - off)
			break;
		e = &exp[(*nexp)++];
		memset(e, 0, sizeof(*e));
		e->seq = nlh->nlmsg_seq;
		e->ack = !!(nlh->nlmsg_flags & NLM_F_ACK);
		if (!(nlh->nlmsg_flags & NLM_F_REQUEST) ||
		    nlh->nlmsg_type < NLMSG_MIN_TYPE) {
			e->kind = AB_SKIPPED;
		} else if (!to_kernel) {
			e->kind = AB_IGNORED;
		} else if (group && nlh->nlmsg_type != DNL_MSG_DATA) {
			e->kind = AB_ERROR;
			e->err = EPROTOTYPE;
		} else {
			ab_predict(c, nlh, e);
		}
		step = NLMSG_ALIGN(nlh->nlmsg_len);
		off += step > len - off ? len - off : step;
	}
	if (len - off) {
		struct ab_expect *e = &exp[(*nexp)++];

		memset(e, 0, sizeof(*e));
		e->kind = AB_REJECT;
		e->err = EINVAL;
	}
	return len;
}

struct ab_reply {
	uint16_t type;
	uint32_t seq;
	int err;	/* acks: positive errno, 0 = ok */
};

static void ab_mismatch(struct ab_ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void ab_mismatch(struct ab_ctx *c, const char *fmt, ...)
{
	va_list ap;

	if (!c->t->mismatches++) {
		va_start(ap, fmt);
		vsnprintf(c->t->first_mismatch, sizeof(c->t->first_mismatch),
			  fmt, ap);
		va_end(ap);
	}
}

/* Reads everything queued on the sender's socket into @r. */
static unsigned int ab_drain(struct ab_ctx *c, struct ab_reply *r,
			     unsigned int max)
{
	static unsigned char buf[AB_BUF];
	unsigned int n = 0;

	for (;;) {
		ssize_t got = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
		struct nlmsghdr *nlh;
		size_t left;

		if (got < 0) {
			if (errno == EAGAIN)
				return n;
			if (errno == ENOBUFS) {
				ab_mismatch(c, "sender %u: ENOBUFS, acks lost", c->self);
				continue;
			}
			nlk_die("recv: %s", strerror(errno));
		}
		left = (size_t)got;
		for (nlh = (struct nlmsghdr *)buf; NLMSG_OK(nlh, left);
		     nlh = NLMSG_NEXT(nlh, left)) {
			if (nlh->nlmsg_type == DNL_MSG_RELAYED) {
				c->t->relay_rx++;	/* a RELAY to itself */
				continue;
			}
			if (n == max) {
				ab_mismatch(c, "more than %u replies to one datagram", max);
				continue;
			}
			r[n].type = nlh->nlmsg_type;
			r[n].seq = nlh->nlmsg_seq;
			r[n].err = nlh->nlmsg_type == NLMSG_ERROR ?
				-((const struct nlmsgerr *)NLMSG_DATA(nlh))->error : 0;
			n++;
		}
	}
}

/* Matches the replies to one datagram against what was predicted. */
static void ab_check(struct ab_ctx *c, const struct ab_expect *exp,
		     unsigned int nexp, const struct ab_reply *r, unsigned int n)
{
	unsigned int i, j = 0;

#define AB_ACK(cond) (j < n && r[j].type == NLMSG_ERROR && (cond))
	for (i = 0; i < nexp; i++) {
		const struct ab_expect *e = &exp[i];

		if (e->kind != AB_SKIPPED)
			c->t->handled++;
		switch (e->kind) {
		case AB_ERROR:
		case AB_REJECT:
			if (!AB_ACK(r[j].err == e->err &&
				    (e->kind == AB_REJECT || r[j].seq == e->seq))) {
				ab_mismatch(c, "seq %u: expected error %s, got %s %d seq %u",
					    e->seq, nlk_errno_name(e->err),
					    j < n ? "type" : "nothing",
					    j < n ? r[j].type : 0, j < n ? r[j].seq : 0);
				return;
			}
			c->t->errors++;
			j++;
			continue;
		case AB_RELAY_LIVE:
			if (AB_ACK(r[j].seq == e->seq && r[j].err == EAGAIN)) {
				c->t->errors++;
				c->t->relay_eagain++;
				j++;
				continue;
			}
			c->t->relayed++;
			break;
		case AB_STATS_OK:
			if (!(j < n && r[j].type == DNL_MSG_STATS && r[j].seq == e->seq)) {
				ab_mismatch(c, "seq %u: no STATS reply", e->seq);
				return;
			}
			c->t->stats_done++;
			j++;
			break;
		case AB_BCAST_OK:
			c->t->bcast_done++;
			c->t->broadcast += e->copies;
			break;
		case AB_ACCEPTED:
			c->t->accepted++;
			break;
		case AB_IGNORED:
			c->t->ignored++;
			break;
		case AB_SKIPPED:
			break;
		}
		if (e->ack) {
			if (!AB_ACK(r[j].seq == e->seq && r[j].err == 0)) {
				ab_mismatch(c, "seq %u (kind %d): expected ack 0, got %s err %d seq %u",
					    e->seq, e->kind, j < n ? "one with" : "nothing",
					    j < n ? r[j].err : 0, j < n ? r[j].seq : 0);
				return;
			}
			j++;
		}
	}
#undef AB_ACK
	if (j != n)
		ab_mismatch(c, "%u replies unaccounted for (first: type %u err %d seq %u)",
			    n - j, r[j].type, r[j].err, r[j].seq);
	c->t->acks += n;
}

static void ab_sender(struct ab_ctx *c, uint64_t frames, int ext_ack)
{
	static unsigned char buf[AB_FRAME_MAX + 16];
	struct ab_expect exp[AB_MSGS_MAX + 1];
	struct ab_reply r[2 * AB_MSGS_MAX + 2];
	uint64_t i;

	c->fd = nlk_open(DNL_UNIT_DEFAULT, 0, 0);
	c->self = nlk_port_of(c->fd);
	/* Room for every reply to one datagram, with margin. */
	nlk_set_int(c->fd, SOL_SOCKET, SO_RCVBUFFORCE, 1 << 20);
	nlk_set_int(c->fd, SOL_NETLINK, NETLINK_EXT_ACK, ext_ack);
	nlk_set_int(c->fd, SOL_NETLINK, NETLINK_CAP_ACK, !ext_ack);
	for (i = 0; i < frames; i++) {
		struct sockaddr_nl to = { .nl_family = AF_NETLINK };
		unsigned int nexp, n;
		uint32_t group = 0;
		size_t len;

		switch (ab_below(c, 4)) {
		case 0:	/* a group of r_grps: the kernel handles it */
			group = 1 + ab_below(c, 2);
			break;
		case 1:	/* any group: outside r_grps, ignored */
			group = 1 + ab_below(c, 32);
			break;
		}
		len = ab_datagram(c, buf, group, exp, &nexp);
		to.nl_groups = group ? 1u << (group - 1) : 0;
		if (sendto(c->fd, buf, len, 0, (struct sockaddr *)&to,
			   sizeof(to)) < 0)
			nlk_die("sendto(%zu bytes, groups %#x): %s", len,
				to.nl_groups, strerror(errno));
		c->t->frames++;
		n = ab_drain(c, r, sizeof(r) / sizeof(r[0]));
		ab_check(c, exp, nexp, r, n);
	}
	close(c->fd);
}

static volatile sig_atomic_t ab_stop;

static void ab_on_term(int sig)
{
	(void)sig;
	ab_stop = 1;
}

/*
 * Reader @k: 1 on groups 1..32 with a large buffer, 2 on 33..ngroups (and
 * 1..4) with a small one, 3 on groups 1..4 that never reads.
 */
static void ab_reader(int k, uint32_t ngroups, struct ab_reader_tally *t,
		      int ready_fd)
{
	static unsigned char buf[AB_BUF];
	struct sigaction sa = { .sa_handler = ab_on_term };
	uint32_t g;
	int fd;

	sigaction(SIGTERM, &sa, NULL);
	fd = nlk_open(DNL_UNIT_DEFAULT, AB_PORT_BASE + k,
		      k == 1 ? 0xffffffffu : 0xfu);
	if (k == 1)
		nlk_set_int(fd, SOL_SOCKET, SO_RCVBUFFORCE, 1 << 20);
	if (k == 2) {
		nlk_set_int(fd, SOL_SOCKET, SO_RCVBUF, 4096);
		for (g = 33; g <= ngroups && g <= 64; g++)
			nlk_set_int(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, (int)g);
	}
	if (k == 3)
		nlk_set_int(fd, SOL_SOCKET, SO_RCVBUF, 4096);
	if (write(ready_fd, "r", 1) != 1)
		nlk_die("reader %d: ready pipe: %s", k, strerror(errno));
	close(ready_fd);
	while (!ab_stop) {
		ssize_t n;

		if (k == 3) {
			pause();
			continue;
		}
		n = recv(fd, buf, sizeof(buf), 0);
		if (n > 0)
			t->messages++;
		else if (n < 0 && errno == ENOBUFS)
			t->enobufs++;
		else if (n < 0 && errno != EINTR)
			nlk_die("reader %d: recv: %s", k, strerror(errno));
	}
	close(fd);
	_exit(0);
}

static struct dnl_stats ab_stats(void)
{
	static unsigned char buf[AB_BUF];
	struct {
		struct nlmsghdr nlh;
	} req = {
		.nlh = {
			.nlmsg_len = NLMSG_HDRLEN,
			.nlmsg_type = DNL_MSG_STATS,
			.nlmsg_flags = NLM_F_REQUEST,
			.nlmsg_seq = 1,
		},
	};
	struct sockaddr_nl to = { .nl_family = AF_NETLINK };
	int fd = nlk_open(DNL_UNIT_DEFAULT, 0, 0);
	struct dnl_stats s;
	ssize_t n;

	if (sendto(fd, &req, sizeof(req), 0, (struct sockaddr *)&to,
		   sizeof(to)) < 0)
		nlk_die("STATS: sendto: %s", strerror(errno));
	n = recv(fd, buf, sizeof(buf), 0);
	if (n < (ssize_t)NLMSG_LENGTH(NLK_STATS_V1_SIZE) ||
	    ((struct nlmsghdr *)buf)->nlmsg_type != DNL_MSG_STATS)
		nlk_die("STATS: no reply (%zd bytes)", n);
	nlk_stats_copy(&s, (struct nlmsghdr *)buf);
	close(fd);
	return s;
}

static int ab_wait_all(pid_t *pids, int n, const char *what)
{
	int i, status, bad = 0;

	for (i = 0; i < n; i++) {
		if (waitpid(pids[i], &status, 0) < 0 ||
		    !WIFEXITED(status) || WEXITSTATUS(status)) {
			fprintf(stderr, "abuse_nlk: %s %d ended with status %#x\n",
				what, i, status);
			bad = 1;
		}
	}
	return bad;
}

#define AB_CMP(name, want, got) do {					\
		if ((uint64_t)(want) != (uint64_t)(got)) {		\
			printf("burst %d: %s: expected %llu, module says %llu\n", \
			       burst, name, (unsigned long long)(want),	\
			       (unsigned long long)(got));		\
			ok = 0;						\
		}							\
	} while (0)

int main(int argc, char **argv)
{
	uint32_t r_grps = 3, ngroups = DNL_NGROUPS_MIN;
	unsigned long long frames = 1000, seed = 1;
	int senders = 2, burst = 1, opt, i, ok = 1;
	struct ab_tally *t, sum = { 0 };
	struct ab_reader_tally *rt;
	pid_t spid[AB_SENDERS_MAX], rpid[AB_READERS];
	struct dnl_stats s0, s1;
	struct timespec t0, t1;
	double secs;
	int ready[2];
	char c;

	nlk_prog = "abuse_nlk";
	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt(argc, argv, "r:N:S:n:s:B:")) != -1) {
		switch (opt) {
		case 'r':
			r_grps = (uint32_t)nlk_number(optarg, "-r R_GRPS", 0, UINT32_MAX);
			break;
		case 'N':
			ngroups = (uint32_t)nlk_number(optarg, "-N NGROUPS",
						       DNL_NGROUPS_MIN, DNL_NGROUPS_MAX);
			break;
		case 'S':
			senders = (int)nlk_number(optarg, "-S SENDERS", 1, AB_SENDERS_MAX);
			break;
		case 'n':
			frames = nlk_number(optarg, "-n FRAMES", 1, 100000000);
			break;
		case 's':
			seed = nlk_number(optarg, "-s SEED", 1, UINT64_MAX);
			break;
		case 'B':
			burst = (int)nlk_number(optarg, "-B BURST", 0, 1000000);
			break;
		default:
			fprintf(stderr, "usage: abuse_nlk [-r R_GRPS] [-N NGROUPS] [-S SENDERS] [-n FRAMES] [-s SEED] [-B BURST]\n");
			return 2;
		}
	}
	t = mmap(NULL, sizeof(*t) * AB_SENDERS_MAX + sizeof(*rt) * AB_READERS,
		 PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (t == MAP_FAILED)
		nlk_die("mmap: %s", strerror(errno));
	rt = (struct ab_reader_tally *)(t + AB_SENDERS_MAX);

	if (pipe(ready))
		nlk_die("pipe: %s", strerror(errno));
	for (i = 0; i < AB_READERS; i++) {
		rpid[i] = fork();
		if (rpid[i] < 0)
			nlk_die("fork: %s", strerror(errno));
		if (!rpid[i]) {
			close(ready[0]);
			ab_reader(i + 1, ngroups, &rt[i], ready[1]);
		}
	}
	close(ready[1]);
	for (i = 0; i < AB_READERS; i++)
		if (read(ready[0], &c, 1) != 1)
			nlk_die("a reader did not start");
	close(ready[0]);

	s0 = ab_stats();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < senders; i++) {
		spid[i] = fork();
		if (spid[i] < 0)
			nlk_die("fork: %s", strerror(errno));
		if (!spid[i]) {
			struct ab_ctx ctx = {
				.r_grps = r_grps, .ngroups = ngroups, .t = &t[i],
				.rng = seed * 0x9e3779b97f4a7c15ull + (uint64_t)i + 1,
				.seq = (uint32_t)i << 28,
			};

			ab_sender(&ctx, frames, i & 1);
			t[i].done = 1;
			_exit(0);
		}
	}
	if (ab_wait_all(spid, senders, "sender"))
		ok = 0;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	s1 = ab_stats();
	for (i = 0; i < AB_READERS; i++)
		kill(rpid[i], SIGTERM);
	if (ab_wait_all(rpid, AB_READERS, "reader"))
		ok = 0;

	for (i = 0; i < senders; i++) {
		sum.frames += t[i].frames;
		sum.messages += t[i].messages;
		sum.handled += t[i].handled;
		sum.accepted += t[i].accepted;
		sum.ignored += t[i].ignored;
		sum.errors += t[i].errors;
		sum.relayed += t[i].relayed;
		sum.broadcast += t[i].broadcast;
		sum.bcast_done += t[i].bcast_done;
		sum.stats_done += t[i].stats_done;
		sum.acks += t[i].acks;
		sum.relay_eagain += t[i].relay_eagain;
		sum.relay_rx += t[i].relay_rx;
		sum.mismatches += t[i].mismatches;
		if (t[i].mismatches)
			printf("burst %d: sender %d: %llu mismatches, first: %s\n",
			       burst, i, (unsigned long long)t[i].mismatches,
			       t[i].first_mismatch);
		if (!t[i].done)
			ok = 0;
	}
	secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("burst %d: seed %llu, %d senders, %llu frames (%llu messages) in %.1f s (%.0f frames/s); "
	       "%llu replies checked, %llu mismatches; readers got %llu/%llu messages (%llu/%llu ENOBUFS)\n",
	       burst, seed, senders, (unsigned long long)sum.frames,
	       (unsigned long long)sum.messages, secs, sum.frames / secs,
	       (unsigned long long)sum.acks, (unsigned long long)sum.mismatches,
	       (unsigned long long)rt[0].messages, (unsigned long long)rt[1].messages,
	       (unsigned long long)rt[0].enobufs, (unsigned long long)rt[1].enobufs);
	printf("burst %d: module received=%llu accepted=%llu ignored=%llu errors=%llu relayed=%llu broadcast=%llu; "
	       "predicted handled=%llu accepted=%llu ignored=%llu errors=%llu relayed=%llu broadcast=%llu "
	       "bcast_done=%llu stats_done=%llu relay_eagain=%llu\n",
	       burst, (unsigned long long)(s1.received - s0.received),
	       (unsigned long long)(s1.accepted - s0.accepted),
	       (unsigned long long)(s1.ignored - s0.ignored),
	       (unsigned long long)(s1.errors - s0.errors),
	       (unsigned long long)(s1.relayed - s0.relayed),
	       (unsigned long long)(s1.broadcast - s0.broadcast),
	       (unsigned long long)sum.handled, (unsigned long long)sum.accepted,
	       (unsigned long long)sum.ignored, (unsigned long long)sum.errors,
	       (unsigned long long)sum.relayed, (unsigned long long)sum.broadcast,
	       (unsigned long long)sum.bcast_done, (unsigned long long)sum.stats_done,
	       (unsigned long long)sum.relay_eagain);
	if (sum.mismatches)
		ok = 0;
	if (sum.frames != frames * (unsigned long long)senders)
		ok = 0;
	/* The second STATS request counts itself before it answers. */
	AB_CMP("received", sum.handled + 1, s1.received - s0.received);
	AB_CMP("accepted", sum.accepted, s1.accepted - s0.accepted);
	AB_CMP("ignored", sum.ignored, s1.ignored - s0.ignored);
	AB_CMP("errors", sum.errors, s1.errors - s0.errors);
	AB_CMP("relayed", sum.relayed, s1.relayed - s0.relayed);
	AB_CMP("broadcast", sum.broadcast, s1.broadcast - s0.broadcast);
	/* Since load: every request is in one outcome (STATS: ours, 2). */
	AB_CMP("received = accepted + ignored + errors + relayed + BCAST done + STATS done",
	       s1.received, s1.accepted + s1.ignored + s1.errors + s1.relayed +
	       sum.bcast_done + sum.stats_done + 2);
	printf("burst %d: %s\n", burst, ok ? "counters consistent" : "FAILED");
	return ok ? 0 : 1;
}
