/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared by the bench's C sender (nlb_flood) and receiver (nlb_sink).
 *
 * Every bench message is one nlmsghdr + struct nlb_payload (+ padding), one
 * message per datagram. nlmsg_seq carries the low 32 bits of the index so
 * a consumer that only sees a JSON rendering of the header can still count
 * and order; the payload carries the send time on CLOCK_MONOTONIC, which is
 * the clock of Node's process.hrtime too, so any process on the host can
 * compute the send→receive latency.
 */
#ifndef NLB_COMMON_H
#define NLB_COMMON_H

#include <stdint.h>
#include <time.h>

#define NLB_MSG_TYPE	0x10	/* DNL_MSG_DATA: a plain user payload */
#define NLB_MAGIC	0x4e4c4231u	/* "NLB1" */

struct nlb_payload {
	uint32_t magic;
	uint32_t reserved;
	uint64_t index;		/* 0 .. count-1 */
	uint64_t send_ns;	/* CLOCK_MONOTONIC when handed to sendto */
};

static inline uint64_t nlb_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif
