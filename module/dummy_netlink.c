// SPDX-License-Identifier: GPL-2.0
/*
 * dummy_netlink: a raw netlink protocol unit to exercise multicast and
 * unicast between user space and the kernel. The protocol is described in
 * include/uapi/linux/dummy_netlink.h; module/README.md shows how to use it.
 *
 * A kernel netlink socket is not on its unit's multicast lists. What makes
 * "the kernel joins r_grps" work is netlink_sendmsg(): a user sendto() with
 * nl_groups set and nl_pid 0 broadcasts to the group and then unicasts the
 * same message to the kernel socket with NETLINK_CB(skb).dst_group set to
 * that group. The input path below therefore sees every group send on the
 * unit and keeps those whose group is in r_grps.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/capability.h>
#include <linux/jiffies.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/netlink.h>
#include <linux/skbuff.h>
#include <linux/spinlock.h>
#include <linux/timekeeping.h>
#include <linux/timer.h>
#include <net/net_namespace.h>
#include <net/netlink.h>
#include <net/sock.h>

#include <uapi/linux/dummy_netlink.h>

#ifndef DNL_HAVE_TIMER_SHUTDOWN	/* probed by Kbuild: before 6.2 */
#define timer_shutdown_sync del_timer_sync
#endif

static int unit = DNL_UNIT_DEFAULT;
module_param(unit, int, 0444);
MODULE_PARM_DESC(unit, "Netlink protocol unit, 23..31 (default 25)");

static uint r_grps;
module_param(r_grps, uint, 0444);
MODULE_PARM_DESC(r_grps, "Mask of groups 1..32 whose messages the kernel accepts");

static uint b_grp;
module_param(b_grp, uint, 0444);
MODULE_PARM_DESC(b_grp, "Mask of groups 1..32 the periodic TICK is broadcast to");

static uint period_ms = 1000;
module_param(period_ms, uint, 0444);
MODULE_PARM_DESC(period_ms, "TICK period in ms, 10..3600000; 0 sends no ticks (default 1000)");

static uint ngroups = DNL_NGROUPS_MIN;
module_param(ngroups, uint, 0444);
MODULE_PARM_DESC(ngroups, "Number of multicast groups of the unit, 32..1024 (default 32)");

static bool allow_unpriv;
module_param(allow_unpriv, bool, 0444);
MODULE_PARM_DESC(allow_unpriv, "Let users without CAP_NET_ADMIN send and join groups (default N)");

#define DNL_UNIT_MIN		23	/* 0..22 are assigned in <linux/netlink.h> */
#define DNL_PERIOD_MIN_MS	10
#define DNL_PERIOD_MAX_MS	3600000
#define DNL_LOG_BYTES		64	/* payload bytes shown in a log line */

/*
 * Copies of one logical message (one per group, same sender and nlmsg_seq)
 * reach the input path back to back. The table remembers the last accepted
 * messages for a short window, so a copy is recognised without keeping state
 * for ever; a sender reusing a sequence number later is a new message.
 */
#define DNL_RECENT_SIZE		64
#define DNL_RECENT_WINDOW	(2 * HZ)

struct dnl_recent {
	u32 portid;
	u32 seq;
	u16 type;
	bool used;
	unsigned long when;
};

struct dnl_counters {
	atomic64_t received;
	atomic64_t accepted;
	atomic64_t ignored;
	atomic64_t relayed;
	atomic64_t broadcast;
	atomic64_t ticks;
	atomic64_t errors;
};

static struct sock *dnl_sock;
static struct timer_list dnl_tick_timer;
static u64 dnl_tick_counter;
static struct dnl_counters dnl_counters;

static DEFINE_SPINLOCK(dnl_recent_lock);
static struct dnl_recent dnl_recent[DNL_RECENT_SIZE];
static unsigned int dnl_recent_next;

/* True when (portid, seq, type) was already handled; else records it. */
static bool dnl_seen(u32 portid, u32 seq, u16 type)
{
	unsigned long now = jiffies;
	bool seen = false;
	unsigned int i;

	spin_lock_bh(&dnl_recent_lock);
	for (i = 0; i < DNL_RECENT_SIZE; i++) {
		struct dnl_recent *r = &dnl_recent[i];

		if (r->used && r->portid == portid && r->seq == seq &&
		    r->type == type &&
		    time_before(now, r->when + DNL_RECENT_WINDOW)) {
			seen = true;
			break;
		}
	}
	if (!seen) {
		dnl_recent[dnl_recent_next] = (struct dnl_recent) {
			.portid = portid, .seq = seq, .type = type,
			.used = true, .when = now,
		};
		dnl_recent_next = (dnl_recent_next + 1) % DNL_RECENT_SIZE;
	}
	spin_unlock_bh(&dnl_recent_lock);
	return seen;
}

/*
 * A message carrying exactly @len bytes of @data, or NULL. No nlmsg_end():
 * it would round nlmsg_len up to the padded size.
 */
static struct sk_buff *dnl_new_msg(u32 pid, u32 seq, int type,
				   const void *data, size_t len, gfp_t gfp)
{
	struct nlmsghdr *nlh;
	struct sk_buff *skb;

	skb = nlmsg_new(len, gfp);
	if (!skb)
		return NULL;
	nlh = nlmsg_put(skb, pid, seq, type, len, 0);
	if (!nlh) {
		kfree_skb(skb);
		return NULL;
	}
	memcpy(nlmsg_data(nlh), data, len);
	return skb;
}

static int dnl_rcv_data(struct sk_buff *skb, struct nlmsghdr *nlh,
			struct netlink_ext_ack *extack)
{
	int len = nlmsg_len(nlh);

	if (len > DNL_PAYLOAD_MAX) {
		NL_SET_ERR_MSG_MOD(extack, "payload larger than DNL_PAYLOAD_MAX");
		return -EMSGSIZE;
	}
	atomic64_inc(&dnl_counters.accepted);
	pr_info_ratelimited("DATA from port %u group %u seq %u len %d: %*pE\n",
			    NETLINK_CB(skb).portid, NETLINK_CB(skb).dst_group,
			    nlh->nlmsg_seq, len, min(len, DNL_LOG_BYTES),
			    nlmsg_data(nlh));
	return 0;
}

static int dnl_rcv_relay(struct sk_buff *skb, struct nlmsghdr *nlh,
			 struct netlink_ext_ack *extack)
{
	const struct dnl_relay *req = nlmsg_data(nlh);
	int len = nlmsg_len(nlh) - (int)sizeof(*req);
	struct sk_buff *out;
	int err;

	if (len < 0) {
		NL_SET_ERR_MSG_MOD(extack, "RELAY payload shorter than struct dnl_relay");
		return -EINVAL;
	}
	if (req->reserved) {
		NL_SET_ERR_MSG_MOD(extack, "RELAY reserved field is not zero");
		return -EINVAL;
	}
	if (len > DNL_PAYLOAD_MAX) {
		NL_SET_ERR_MSG_MOD(extack, "RELAY data larger than DNL_PAYLOAD_MAX");
		return -EMSGSIZE;
	}
	if (!req->portid) {
		NL_SET_ERR_MSG_MOD(extack, "RELAY to port 0, the kernel itself");
		return -EINVAL;
	}

	out = dnl_new_msg(NETLINK_CB(skb).portid, nlh->nlmsg_seq, DNL_MSG_DATA,
			  req + 1, len, GFP_KERNEL);
	if (!out)
		return -ENOMEM;
	/* Consumes @out; a dead port gives -ECONNREFUSED, a full one -EAGAIN. */
	err = netlink_unicast(dnl_sock, out, req->portid, MSG_DONTWAIT);
	if (err < 0) {
		NL_SET_ERR_MSG_MOD(extack, "RELAY target did not take the message");
		return err;
	}
	atomic64_inc(&dnl_counters.relayed);
	return 0;
}

static int dnl_rcv_bcast(struct sk_buff *skb, struct nlmsghdr *nlh,
			 struct netlink_ext_ack *extack)
{
	const struct dnl_bcast *req = nlmsg_data(nlh);
	int len = nlmsg_len(nlh) - (int)sizeof(*req);
	const u32 *groups = (const u32 *)(req + 1);
	const void *data;
	u32 i, n;

	if (len < 0) {
		NL_SET_ERR_MSG_MOD(extack, "BCAST payload shorter than struct dnl_bcast");
		return -EINVAL;
	}
	if (req->reserved) {
		NL_SET_ERR_MSG_MOD(extack, "BCAST reserved field is not zero");
		return -EINVAL;
	}
	n = req->n_groups;
	if (n < 1 || n > DNL_BCAST_GROUPS_MAX) {
		NL_SET_ERR_MSG_MOD(extack, "BCAST n_groups not in 1..DNL_BCAST_GROUPS_MAX");
		return -EINVAL;
	}
	len -= (int)(n * sizeof(u32));
	if (len < 0) {
		NL_SET_ERR_MSG_MOD(extack, "BCAST payload shorter than its group list");
		return -EINVAL;
	}
	if (len > DNL_PAYLOAD_MAX) {
		NL_SET_ERR_MSG_MOD(extack, "BCAST data larger than DNL_PAYLOAD_MAX");
		return -EMSGSIZE;
	}
	for (i = 0; i < n; i++) {
		if (groups[i] < 1 || groups[i] > ngroups) {
			NL_SET_ERR_MSG_MOD(extack, "BCAST group not in 1..ngroups");
			return -ERANGE;
		}
	}

	data = groups + n;
	for (i = 0; i < n; i++) {
		struct sk_buff *out;
		int err;

		atomic64_inc(&dnl_counters.broadcast);
		if (!netlink_has_listeners(dnl_sock, groups[i]))
			continue;
		out = dnl_new_msg(NETLINK_CB(skb).portid, nlh->nlmsg_seq,
				  DNL_MSG_DATA, data, len, GFP_KERNEL);
		if (!out)
			return -ENOMEM;
		NETLINK_CB(out).dst_group = groups[i];
		/*
		 * Consumes @out. -ESRCH (the last listener just left) and
		 * -ENOBUFS (a listener's queue is full; it gets ENOBUFS on its
		 * next read) are the listeners' business, not the requester's.
		 */
		err = netlink_broadcast(dnl_sock, out, 0, groups[i], GFP_KERNEL);
		if (err && err != -ESRCH && err != -ENOBUFS)
			return err;
	}
	return 0;
}

static int dnl_rcv_stats(struct sk_buff *skb, struct nlmsghdr *nlh,
			 struct netlink_ext_ack *extack)
{
	struct dnl_stats stats = {
		.version = DNL_VERSION,
		.unit = unit,
		.received = atomic64_read(&dnl_counters.received),
		.accepted = atomic64_read(&dnl_counters.accepted),
		.ignored = atomic64_read(&dnl_counters.ignored),
		.relayed = atomic64_read(&dnl_counters.relayed),
		.broadcast = atomic64_read(&dnl_counters.broadcast),
		.ticks = atomic64_read(&dnl_counters.ticks),
		.errors = atomic64_read(&dnl_counters.errors),
	};
	struct sk_buff *out;
	int err;

	if (nlmsg_len(nlh)) {
		NL_SET_ERR_MSG_MOD(extack, "STATS request carries a payload");
		return -EINVAL;
	}
	out = dnl_new_msg(NETLINK_CB(skb).portid, nlh->nlmsg_seq,
			  DNL_MSG_STATS, &stats, sizeof(stats), GFP_KERNEL);
	if (!out)
		return -ENOMEM;
	err = netlink_unicast(dnl_sock, out, NETLINK_CB(skb).portid,
			      MSG_DONTWAIT);
	return err < 0 ? err : 0;
}

static int dnl_dispatch(struct sk_buff *skb, struct nlmsghdr *nlh,
			struct netlink_ext_ack *extack)
{
	u32 group = NETLINK_CB(skb).dst_group;

	if (!allow_unpriv && !netlink_capable(skb, CAP_NET_ADMIN)) {
		NL_SET_ERR_MSG_MOD(extack, "sending needs CAP_NET_ADMIN (allow_unpriv=0)");
		return -EPERM;
	}

	/*
	 * group 0: sent to the kernel directly; otherwise a group copy. A
	 * copy to a group outside r_grps is not for the kernel, whatever its
	 * type: user sockets may use the groups for messages of their own.
	 */
	if (group && (group > 32 || !(r_grps & BIT(group - 1)))) {
		atomic64_inc(&dnl_counters.ignored);
		return 0;
	}

	switch (nlh->nlmsg_type) {
	case DNL_MSG_DATA:
	case DNL_MSG_RELAY:
	case DNL_MSG_BCAST:
	case DNL_MSG_STATS:
		break;
	default:
		NL_SET_ERR_MSG_MOD(extack, "unknown message type");
		return -EOPNOTSUPP;
	}

	/*
	 * STATS only reads: every request is answered, so a poller that
	 * reuses its seq is not left without a reply.
	 */
	if (nlh->nlmsg_type != DNL_MSG_STATS &&
	    dnl_seen(NETLINK_CB(skb).portid, nlh->nlmsg_seq, nlh->nlmsg_type)) {
		atomic64_inc(&dnl_counters.ignored);
		return 0;
	}

	switch (nlh->nlmsg_type) {
	case DNL_MSG_DATA:
		return dnl_rcv_data(skb, nlh, extack);
	case DNL_MSG_RELAY:
		return dnl_rcv_relay(skb, nlh, extack);
	case DNL_MSG_BCAST:
		return dnl_rcv_bcast(skb, nlh, extack);
	default:
		return dnl_rcv_stats(skb, nlh, extack);
	}
}

static int dnl_rcv_msg(struct sk_buff *skb, struct nlmsghdr *nlh,
		       struct netlink_ext_ack *extack)
{
	int err;

	atomic64_inc(&dnl_counters.received);
	err = dnl_dispatch(skb, nlh, extack);
	if (err) {
		atomic64_inc(&dnl_counters.errors);
		pr_debug_ratelimited("port %u type %u seq %u rejected: %d\n",
				     NETLINK_CB(skb).portid, nlh->nlmsg_type,
				     nlh->nlmsg_seq, err);
	}
	return err;
}

/*
 * netlink_rcv_skb() stops without a word at a message whose nlmsg_len is
 * under NLMSG_HDRLEN or beyond the datagram, and at trailing bytes too few
 * for a header. Whatever it left is answered here with -EINVAL. The ack
 * quotes a copy of the header with nlmsg_len set to NLMSG_HDRLEN: given
 * the original, netlink_ack() would copy nlmsg_len bytes from the skb.
 */
static void dnl_reject_rest(struct sk_buff *skb)
{
	struct netlink_ext_ack extack = {};
	struct nlmsghdr hdr = {};

	memcpy(&hdr, skb->data, min_t(unsigned int, skb->len, sizeof(hdr)));
	hdr.nlmsg_len = NLMSG_HDRLEN;
	atomic64_inc(&dnl_counters.received);
	atomic64_inc(&dnl_counters.errors);
	NL_SET_ERR_MSG_MOD(&extack, "malformed nlmsg_len or truncated header");
	pr_debug_ratelimited("port %u: %u malformed bytes\n",
			     NETLINK_CB(skb).portid, skb->len);
	netlink_ack(skb, &hdr, -EINVAL, &extack);
}

static void dnl_input(struct sk_buff *skb)
{
	netlink_rcv_skb(skb, dnl_rcv_msg);
	if (skb->len)
		dnl_reject_rest(skb);
}

static int dnl_bind(struct net *net, int group)
{
	if (allow_unpriv || ns_capable(net->user_ns, CAP_NET_ADMIN))
		return 0;
	return -EPERM;
}

static void dnl_tick(struct timer_list *timer)
{
	struct dnl_tick tick = {
		.counter = ++dnl_tick_counter,
		.time_ns = ktime_get_real_ns(),
		.period_ms = period_ms,
	};
	unsigned long mask = b_grp;
	unsigned int bit;

	for_each_set_bit(bit, &mask, 32) {
		struct sk_buff *out;

		tick.group = bit + 1;
		if (!netlink_has_listeners(dnl_sock, tick.group))
			continue;
		out = dnl_new_msg(0, lower_32_bits(tick.counter), DNL_MSG_TICK,
				  &tick, sizeof(tick), GFP_ATOMIC);
		if (!out)
			break;
		NETLINK_CB(out).dst_group = tick.group;
		netlink_broadcast(dnl_sock, out, 0, tick.group, GFP_ATOMIC);
	}
	atomic64_inc(&dnl_counters.ticks);
	mod_timer(timer, jiffies + msecs_to_jiffies(period_ms));
}

static int __init dnl_check_params(void)
{
	if (unit < DNL_UNIT_MIN || unit >= MAX_LINKS) {
		pr_err("unit=%d is not in %d..%d\n", unit, DNL_UNIT_MIN,
		       MAX_LINKS - 1);
		return -EINVAL;
	}
	if (ngroups < DNL_NGROUPS_MIN || ngroups > DNL_NGROUPS_MAX) {
		pr_err("ngroups=%u is not in %d..%d\n", ngroups,
		       DNL_NGROUPS_MIN, DNL_NGROUPS_MAX);
		return -EINVAL;
	}
	if (period_ms &&
	    (period_ms < DNL_PERIOD_MIN_MS || period_ms > DNL_PERIOD_MAX_MS)) {
		pr_err("period_ms=%u is neither 0 nor in %d..%d\n", period_ms,
		       DNL_PERIOD_MIN_MS, DNL_PERIOD_MAX_MS);
		return -EINVAL;
	}
	return 0;
}

static int __init dnl_init(void)
{
	struct netlink_kernel_cfg cfg = {
		.groups = ngroups,
		.input = dnl_input,
		.bind = dnl_bind,
		.flags = allow_unpriv ?
			 NL_CFG_F_NONROOT_RECV | NL_CFG_F_NONROOT_SEND : 0,
	};
	int err;

	err = dnl_check_params();
	if (err)
		return err;

	dnl_sock = netlink_kernel_create(&init_net, unit, &cfg);
	if (!dnl_sock) {
		pr_err("cannot create netlink unit %d (in use?)\n", unit);
		return -EBUSY;
	}

	timer_setup(&dnl_tick_timer, dnl_tick, 0);
	if (period_ms)
		mod_timer(&dnl_tick_timer,
			  jiffies + msecs_to_jiffies(period_ms));

	pr_info("unit %d, %u groups, r_grps %#x, b_grp %#x, period %u ms%s\n",
		unit, ngroups, r_grps, b_grp, period_ms,
		allow_unpriv ? ", unprivileged allowed" : "");
	return 0;
}

static void __exit dnl_exit(void)
{
	/* The tick callback uses the socket: stop it for good first. */
	timer_shutdown_sync(&dnl_tick_timer);
	netlink_kernel_release(dnl_sock);
	pr_info("unloaded after %llu ticks\n",
		(unsigned long long)atomic64_read(&dnl_counters.ticks));
}

module_init(dnl_init);
module_exit(dnl_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Raw netlink unit for multicast and unicast experiments");
MODULE_ALIAS_NET_PF_PROTO(PF_NETLINK, DNL_UNIT_DEFAULT);
