/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared by rr_nlk and ww_nlk (and tests/vm/module/raw_nlk.c): option
 * parsing, socket set-up with clear errors, message naming and printing.
 */
#ifndef NLK_COMMON_H
#define NLK_COMMON_H

#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <linux/dummy_netlink.h>

/* Each tool uses a subset of the helpers below. */
#define NLK_HELPER static __attribute__((unused))

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif
#ifndef NLM_F_CAPPED
#define NLM_F_CAPPED	0x100
#endif
#ifndef NLM_F_ACK_TLVS
#define NLM_F_ACK_TLVS	0x200
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK	10
#endif
#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK	11
#endif
#define NLK_NLMSGERR_ATTR_MSG	1

static const char *nlk_prog = "nlk";

static void nlk_die(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));
NLK_HELPER void nlk_die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", nlk_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* Parses a decimal or 0x-hex number in [min, max] or dies naming @what. */
NLK_HELPER unsigned long long nlk_number(const char *s, const char *what,
				     unsigned long long min,
				     unsigned long long max)
{
	unsigned long long v;
	char *end;

	errno = 0;
	if (!s || !*s || *s == '-')
		nlk_die("%s: not a number: '%s'", what, s ? s : "");
	v = strtoull(s, &end, 0);
	if (errno || *end)
		nlk_die("%s: not a number: '%s'", what, s);
	if (v < min || v > max)
		nlk_die("%s: %llu is not in %llu..%llu", what, v, min, max);
	return v;
}

/* "33,40" -> groups[]; returns how many. */
NLK_HELPER unsigned int nlk_group_list(const char *s, uint32_t *groups,
				   unsigned int max)
{
	unsigned int n = 0;
	char *copy = strdup(s), *tok, *save = NULL;

	if (!copy)
		nlk_die("out of memory");
	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (n == max)
			nlk_die("more than %u groups in '%s'", max, s);
		groups[n++] = (uint32_t)nlk_number(tok, "group", 0, UINT32_MAX);
	}
	free(copy);
	if (!n)
		nlk_die("empty group list");
	return n;
}

NLK_HELPER const char *nlk_type_name(uint16_t type)
{
	switch (type) {
	case NLMSG_NOOP: return "NOOP";
	case NLMSG_ERROR: return "ERROR";
	case NLMSG_DONE: return "DONE";
	case NLMSG_OVERRUN: return "OVERRUN";
	case DNL_MSG_DATA: return "DATA";
	case DNL_MSG_RELAY: return "RELAY";
	case DNL_MSG_BCAST: return "BCAST";
	case DNL_MSG_TICK: return "TICK";
	case DNL_MSG_STATS: return "STATS";
	case DNL_MSG_RELAYED: return "RELAYED";
	}
	return NULL;
}

/* errno -> "ECONNREFUSED" for the errors the protocol produces. */
NLK_HELPER const char *nlk_errno_name(int err)
{
	switch (err) {
	case 0: return "OK";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case ESRCH: return "ESRCH";
	case EINTR: return "EINTR";
	case ENOMEM: return "ENOMEM";
	case EACCES: return "EACCES";
	case EBUSY: return "EBUSY";
	case EINVAL: return "EINVAL";
	case ERANGE: return "ERANGE";
	case EAGAIN: return "EAGAIN";
	case EMSGSIZE: return "EMSGSIZE";
	case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case EADDRINUSE: return "EADDRINUSE";
	case EPROTOTYPE: return "EPROTOTYPE";
	case ENOBUFS: return "ENOBUFS";
	case ECONNREFUSED: return "ECONNREFUSED";
	}
	return "E?";
}

/*
 * A netlink socket on @unit bound to @port (0: the kernel picks) and the
 * groups 1..32 in @mask. Dies with a message that names the likely cause.
 */
NLK_HELPER int nlk_open(int unit, uint32_t port, uint32_t mask)
{
	struct sockaddr_nl addr = { .nl_family = AF_NETLINK };
	int fd;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, unit);
	if (fd < 0) {
		if (errno == EPROTONOSUPPORT)
			nlk_die("netlink protocol %d is not available: is dummy_netlink loaded (unit=%d)?",
				unit, unit);
		nlk_die("socket(AF_NETLINK, %d): %s", unit, strerror(errno));
	}
	addr.nl_pid = port;
	addr.nl_groups = mask;
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int err = errno;

		if (err == EADDRINUSE)
			nlk_die("port id %u is taken on protocol %d by another socket; choose one with -P PORT (-P 0: kernel-assigned)",
				port, unit);
		if (err == EPERM)
			nlk_die("joining groups %#x on protocol %d: permission denied (needs CAP_NET_ADMIN unless the module has allow_unpriv=1)",
				mask, unit);
		nlk_die("bind(port %u, groups %#x): %s", port, mask,
			strerror(err));
	}
	return fd;
}

NLK_HELPER void nlk_join(int fd, uint32_t group)
{
	if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group,
		       sizeof(group)) < 0) {
		if (errno == EPERM)
			nlk_die("joining group %u: permission denied (needs CAP_NET_ADMIN unless the module has allow_unpriv=1)",
				group);
		if (errno == EINVAL)
			nlk_die("joining group %u: out of range for this protocol (see the module's ngroups)",
				group);
		nlk_die("joining group %u: %s", group, strerror(errno));
	}
}

NLK_HELPER uint32_t nlk_port_of(int fd)
{
	struct sockaddr_nl addr;
	socklen_t len = sizeof(addr);

	if (getsockname(fd, (struct sockaddr *)&addr, &len) < 0)
		nlk_die("getsockname: %s", strerror(errno));
	return addr.nl_pid;
}

NLK_HELPER void nlk_set_int(int fd, int level, int opt, int value)
{
	/* Best effort: every option used this way only adds detail. */
	(void)setsockopt(fd, level, opt, &value, sizeof(value));
}

/* Writes @len bytes as a JSON string body (bytes are code points 0..255). */
NLK_HELPER void nlk_json_bytes(FILE *f, const unsigned char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = p[i];

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c >= 0x20 && c < 0x7f)
			fputc(c, f);
		else
			fprintf(f, "\\u%04x", c);
	}
}

/* Writes @len bytes readable on one line: C escapes for the rest. */
NLK_HELPER void nlk_text_bytes(FILE *f, const unsigned char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = p[i];

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c >= 0x20 && c < 0x7f)
			fputc(c, f);
		else
			fprintf(f, "\\x%02x", c);
	}
}

/* A STATS reply of a version-1 module ends before once_full. */
#define NLK_STATS_V1_SIZE	offsetof(struct dnl_stats, once_full)

/* The STATS reply @nlh into @s; counters an older module lacks are 0. */
NLK_HELPER void nlk_stats_copy(struct dnl_stats *s, const struct nlmsghdr *nlh)
{
	size_t len = nlh->nlmsg_len - NLMSG_HDRLEN;

	memset(s, 0, sizeof(*s));
	memcpy(s, NLMSG_DATA(nlh), len < sizeof(*s) ? len : sizeof(*s));
}

/* The text of an extended ack (NETLINK_EXT_ACK), or NULL. */
NLK_HELPER const char *nlk_ext_msg(const struct nlmsghdr *nlh)
{
	const struct nlmsgerr *e = NLMSG_DATA(nlh);
	size_t off, end = nlh->nlmsg_len;

	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
		return NULL;
	off = NLMSG_HDRLEN + sizeof(*e);
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
		off += NLMSG_ALIGN(e->msg.nlmsg_len) - NLMSG_HDRLEN;
	while (off + 4 <= end) {
		const unsigned char *a = (const unsigned char *)nlh + off;
		uint16_t alen, atype;

		memcpy(&alen, a, 2);
		memcpy(&atype, a + 2, 2);
		if (alen < 4 || off + alen > end)
			return NULL;
		if (atype == NLK_NLMSGERR_ATTR_MSG && alen > 4 && a[alen - 1] == 0)
			return (const char *)a + 4;
		off += (alen + 3u) & ~3u;
	}
	return NULL;
}

NLK_HELPER double nlk_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif /* NLK_COMMON_H */
