/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared by the bench's C sender (nlb_flood) and receiver (nlb_sink).
 *
 * Every bench message is one nlmsghdr + a 36-byte ASCII payload, one message
 * per datagram:
 *
 *   "NLB1" <index: 16 hex digits> <send time: 16 hex digits>
 *
 * ASCII so that every rendering a bridge may choose (text when the payload
 * is valid UTF-8, base64, hex, raw bytes) carries it unchanged and so that
 * it can be typed into a WebSocket as a text frame. nlmsg_seq carries the
 * low 32 bits of the index. The send time is CLOCK_MONOTONIC in ns, the
 * clock of Node's process.hrtime too, so any process on the host can compute
 * the send→receive latency.
 */
#ifndef NLB_COMMON_H
#define NLB_COMMON_H

#include <stdint.h>
#include <string.h>
#include <time.h>

#define NLB_MSG_TYPE	0x10	/* DNL_MSG_DATA: a plain user payload */
#define NLB_MAGIC	"NLB1"
/*
 * Probes: same layout, magic "NLB0". Receivers do not count them; the bench
 * sends them until every client has seen one (the path is up) and to warm
 * a bridge up before a measured run.
 */
#define NLB_PROBE_MAGIC	"NLB0"
#define NLB_PAYLOAD_LEN	36

static inline uint64_t nlb_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void nlb_put_hex(char *out, uint64_t v)
{
	static const char digits[] = "0123456789abcdef";
	int i;

	for (i = 15; i >= 0; i--, v >>= 4)
		out[i] = digits[v & 0xf];
}

static inline int nlb_get_hex(const char *in, uint64_t *v)
{
	uint64_t r = 0;
	int i;

	for (i = 0; i < 16; i++) {
		char c = in[i];

		r <<= 4;
		if (c >= '0' && c <= '9')
			r |= (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			r |= (uint64_t)(c - 'a' + 10);
		else
			return -1;
	}
	*v = r;
	return 0;
}

/* Writes the payload; out has NLB_PAYLOAD_LEN bytes. */
static inline void nlb_put_payload(char *out, const char *magic, uint64_t index, uint64_t send_ns)
{
	memcpy(out, magic, 4);
	nlb_put_hex(out + 4, index);
	nlb_put_hex(out + 20, send_ns);
}

/* 0 when p (len bytes) starts with a bench payload. */
static inline int nlb_get_payload(const char *p, size_t len, uint64_t *index, uint64_t *send_ns)
{
	if (len < NLB_PAYLOAD_LEN || memcmp(p, NLB_MAGIC, 4))
		return -1;
	if (nlb_get_hex(p + 4, index) || nlb_get_hex(p + 20, send_ns))
		return -1;
	return 0;
}

#endif
