/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * dummy_netlink: a raw netlink protocol unit used to exercise multicast and
 * unicast between user space and the kernel.
 *
 * This header is the one description of the protocol. The kernel module, the
 * C tools (rr_nlk, ww_nlk) and the TypeScript mirror (addon/dummy_netlink.ts,
 * checked against this file by tests/unit/uapi_mirror.test.ts) all use it.
 *
 * Every message is a struct nlmsghdr followed by the payload of its type.
 * All integers are in host byte order, as everywhere in netlink.
 *
 * The kernel handles a message only when it carries NLM_F_REQUEST (others
 * are skipped by netlink_rcv_skb() and acked 0 if NLM_F_ACK) and was sent
 * to the kernel directly (nl_pid 0, nl_groups 0) or, for DNL_MSG_DATA
 * only, to a group in the module's r_grps. A copy to another group is
 * counted as ignored, whatever its type. RELAY, BCAST and STATS are
 * requests to the kernel: sent as a copy to an r_grps group they are
 * refused (-EPROTOTYPE), never executed.
 *
 * Copies of one message (same sending socket, nlmsg_seq and type: one per
 * group, and perhaps one to the kernel) are handled once, if they come
 * within DNL_ONCE_WINDOW_MS of the first and with fewer than DNL_ONCE_KEYS
 * other requests of the same socket in between; the repeats are counted as
 * ignored and acked 0.
 * Other senders do not shorten that window. Only a request that succeeded
 * is remembered: one that failed may be retried with the same nlmsg_seq.
 * STATS requests are always answered. So a sender gives each message its
 * own nlmsg_seq.
 *
 * Error acks (NLMSG_ERROR, sent whether or not NLM_F_ACK was asked; with
 * NETLINK_EXT_ACK they carry a text):
 *   -EINVAL	nlmsg_len under NLMSG_HDRLEN or beyond the datagram, trailing
 *		bytes, a payload too short for its struct, reserved not zero,
 *		n_groups not in 1..DNL_BCAST_GROUPS_MAX, RELAY to port 0,
 *		STATS request with a payload
 *   -EPROTOTYPE	a type other than DATA as a copy to an r_grps group
 *   -EOPNOTSUPP	unknown message type (sent to the kernel directly)
 *   -EMSGSIZE	data part larger than DNL_PAYLOAD_MAX
 *   -ERANGE	BCAST group not in 1..ngroups
 *   -EPERM	sender without CAP_NET_ADMIN and module without allow_unpriv
 *   -ECONNREFUSED, -EAGAIN	RELAY target port gone, or its queue full
 *   -ENOBUFS	the once-only table is full: every one of its once_senders
 *		slots holds a socket that sent within 2 s (counted in
 *		once_full)
 */
#ifndef _UAPI_LINUX_DUMMY_NETLINK_H
#define _UAPI_LINUX_DUMMY_NETLINK_H

#include <linux/types.h>

#define DNL_VERSION		2

/*
 * Units 0-22 are assigned in <linux/netlink.h> (NETLINK_SMC is 22) and
 * MAX_LINKS is 32; 25 is unassigned in every kernel from 5.10 to 6.x.
 * Overridable with the module parameter "unit".
 */
#define DNL_UNIT_DEFAULT	25

/* Groups the unit offers unless the module parameter "ngroups" says more. */
#define DNL_NGROUPS_MIN		32
#define DNL_NGROUPS_MAX		1024

/*
 * Largest data part the module accepts: a DATA payload, or the bytes after
 * struct dnl_relay / the group list of struct dnl_bcast.
 */
#define DNL_PAYLOAD_MAX		4096

/* Most groups one BCAST request may name. */
#define DNL_BCAST_GROUPS_MAX	64

/*
 * Once-only: how long, and across how many of the sender's own requests,
 * the module recognises a copy of a message it has handled.
 */
#define DNL_ONCE_WINDOW_MS	2000
#define DNL_ONCE_KEYS		120

/* Message types; values below NLMSG_MIN_TYPE (0x10) are netlink's own. */
enum dnl_msg_type {
	/* A user payload: to groups, to a port, or to the kernel. */
	DNL_MSG_DATA = 0x10,
	/* "Kernel, deliver this payload to port id P": struct dnl_relay. */
	DNL_MSG_RELAY = 0x11,
	/* "Kernel, broadcast this payload to these groups": struct dnl_bcast. */
	DNL_MSG_BCAST = 0x12,
	/* The kernel's periodic broadcast: struct dnl_tick. */
	DNL_MSG_TICK = 0x13,
	/* Request (empty payload) and reply (struct dnl_stats). */
	DNL_MSG_STATS = 0x14,
	/* A RELAY's delivery, from port 0: struct dnl_relayed, then the data. */
	DNL_MSG_RELAYED = 0x15,
};

/*
 * RELAY request payload; the data to deliver follows the struct. The kernel
 * delivers it to @portid as a DNL_MSG_RELAYED whose nlmsg_pid is the
 * requester's port id and whose nlmsg_seq is the request's.
 */
struct dnl_relay {
	__u32 portid;
	__u32 reserved;		/* must be zero */
};

/*
 * DNL_MSG_RELAYED payload: who asked, then the data. It arrives from port 0
 * like the kernel's own messages, but only the module writes this type from
 * port 0, so a receiver that trusts port 0 tells a relay from the kernel by
 * its type, and the requester by these fields (and SCM_CREDENTIALS, which
 * carry the requester's credentials). A RELAYED type from any other port
 * is a user's message like any other.
 */
struct dnl_relayed {
	__u32 portid;		/* the requester's real port id */
	__u32 uid;		/* the requesting task's uid, in the initial user namespace */
};

/*
 * BCAST request payload: @n_groups group numbers (1..ngroups) follow the
 * struct as __u32, then the data. The kernel broadcasts one DNL_MSG_DATA to
 * each group, all with the requester's port id in nlmsg_pid and the request's
 * nlmsg_seq, so a reader on several of those groups can keep one copy.
 */
struct dnl_bcast {
	__u32 n_groups;
	__u32 reserved;		/* must be zero */
	/* __u32 groups[n_groups]; __u8 data[]; */
};

/*
 * TICK payload. Every copy of one tick (one per group in b_grp) has
 * nlmsg_seq equal to the low 32 bits of @counter and nlmsg_pid 0.
 */
struct dnl_tick {
	__u64 counter;		/* ticks since load, from 1 */
	__u64 time_ns;		/* CLOCK_REALTIME when sent */
	__u32 group;		/* group this copy was broadcast to */
	__u32 period_ms;
};

/* STATS reply payload. */
struct dnl_stats {
	__u32 version;		/* DNL_VERSION */
	__u32 unit;
	__u64 received;		/* requests handed to the module, malformed included */
	__u64 accepted;		/* DATA kept (to the kernel or to an r_grps group) */
	__u64 ignored;		/* to a group outside r_grps, or a repeat */
	__u64 relayed;		/* RELAY delivered */
	__u64 broadcast;	/* BCAST copies, one per group named (listened to or not) */
	__u64 ticks;		/* TICK rounds sent */
	__u64 errors;		/* rejected requests (each got an error ack) */
	/* since DNL_VERSION 2 */
	__u64 once_full;	/* requests refused (-ENOBUFS): once-only table full */
	__u64 once_senders;	/* sending sockets the once-only table holds now */
};

#endif /* _UAPI_LINUX_DUMMY_NETLINK_H */
