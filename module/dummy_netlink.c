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
 * unit and keeps the DATA copies whose group is in r_grps.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/err.h>
#include <linux/hashtable.h>
#include <linux/jiffies.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/netlink.h>
#include <linux/skbuff.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/timekeeping.h>
#include <linux/timer.h>
#include <linux/uidgid.h>
#include <net/net_namespace.h>
#include <net/netlink.h>
#include <net/sock.h>

#include <uapi/linux/dummy_netlink.h>

#ifndef DNL_HAVE_TIMER_SHUTDOWN	/* probed by Kbuild: before 6.2 */
#define timer_shutdown_sync del_timer_sync
#endif

/*
 * The kernel's number parsers answer a value too large for its type with
 * -ERANGE and anything else unparsable with -EINVAL. Every bad value is
 * -EINVAL here, as module/README.md says; parse_args() still logs the
 * parameter's name and value.
 */
static int dnl_param_set_uint(const char *val, const struct kernel_param *kp)
{
	return param_set_uint(val, kp) ? -EINVAL : 0;
}

static int dnl_param_set_int(const char *val, const struct kernel_param *kp)
{
	return param_set_int(val, kp) ? -EINVAL : 0;
}

static const struct kernel_param_ops dnl_uint_ops = {
	.set = dnl_param_set_uint,
	.get = param_get_uint,
};

static const struct kernel_param_ops dnl_int_ops = {
	.set = dnl_param_set_int,
	.get = param_get_int,
};

static int unit = DNL_UNIT_DEFAULT;
module_param_cb(unit, &dnl_int_ops, &unit, 0444);
__MODULE_PARM_TYPE(unit, "int");
MODULE_PARM_DESC(unit, "Netlink protocol unit, 23..31 (default 25)");

static uint r_grps;
module_param_cb(r_grps, &dnl_uint_ops, &r_grps, 0444);
__MODULE_PARM_TYPE(r_grps, "uint");
MODULE_PARM_DESC(r_grps, "Mask of groups 1..32 whose DATA copies the kernel accepts");

static uint b_grp;
module_param_cb(b_grp, &dnl_uint_ops, &b_grp, 0444);
__MODULE_PARM_TYPE(b_grp, "uint");
MODULE_PARM_DESC(b_grp, "Mask of groups 1..32 the periodic TICK is broadcast to");

static uint period_ms = 1000;
module_param_cb(period_ms, &dnl_uint_ops, &period_ms, 0444);
__MODULE_PARM_TYPE(period_ms, "uint");
MODULE_PARM_DESC(period_ms, "TICK period in ms, 10..3600000; 0 sends no ticks (default 1000)");

static uint ngroups = DNL_NGROUPS_MIN;
module_param_cb(ngroups, &dnl_uint_ops, &ngroups, 0444);
__MODULE_PARM_TYPE(ngroups, "uint");
MODULE_PARM_DESC(ngroups, "Number of multicast groups of the unit, 32..1024 (default 32)");

static uint once_senders = 1024;
module_param_cb(once_senders, &dnl_uint_ops, &once_senders, 0444);
__MODULE_PARM_TYPE(once_senders, "uint");
MODULE_PARM_DESC(once_senders, "Sending sockets the once-only table holds at most, 1..65536 (default 1024)");

static bool allow_unpriv;
module_param(allow_unpriv, bool, 0444);
MODULE_PARM_DESC(allow_unpriv, "Let users without CAP_NET_ADMIN send and join groups (default N)");

/* Read per message: root may switch it at run time. */
static bool log_data;
module_param(log_data, bool, 0644);
MODULE_PARM_DESC(log_data, "Log each accepted DATA message, rate-limited (default N)");

#define DNL_UNIT_MIN		23	/* 0..22 are assigned in <linux/netlink.h> */
#define DNL_PERIOD_MIN_MS	10
#define DNL_PERIOD_MAX_MS	3600000
#define DNL_ONCE_SENDERS_MAX	65536
#define DNL_LOG_BYTES		64	/* payload bytes shown in a log line */

/*
 * Once-only (module/README.md, "Copies of one message"). The copies of one
 * message come from one sending socket, so keys are kept per sender, and a
 * flood from one socket cannot push out another's keys. A sender is its
 * port id and its socket's inode number: a socket that binds a port id just
 * given up is another sender. Each keeps the keys of its last DNL_ONCE_KEYS
 * handled requests, each for DNL_ONCE_WINDOW_MS; the keys and the head fit
 * one 2 KiB slab object. A sender whose newest key has expired has nothing left
 * to protect: once once_senders senders are held, its slot goes to the next
 * new sender. When every slot holds a sender with a live key, a new
 * sender's request is refused with -ENOBUFS and counted in once_full.
 */
#define DNL_ONCE_WINDOW		msecs_to_jiffies(DNL_ONCE_WINDOW_MS)
#define DNL_ONCE_HASH_BITS	8

struct dnl_once_key {
	unsigned long when;
	u32 seq;
	u16 type;	/* 0: unused (only types >= NLMSG_MIN_TYPE are recorded) */
};

struct dnl_sender {
	struct hlist_node node;	/* in dnl_senders, under dnl_senders_lock */
	unsigned long ino;
	u32 portid;
	unsigned int users;	/* requests in flight, under dnl_senders_lock */
	/*
	 * Check, handle, record: one request of this sender at a time, so two
	 * threads sending copies on one socket cannot both miss the key.
	 * Different senders run in parallel.
	 */
	struct mutex lock;
	unsigned long last;	/* newest key; read under dnl_senders_lock when !users */
	unsigned int next;	/* slot of the next key */
	struct dnl_once_key keys[DNL_ONCE_KEYS];
};

struct dnl_counters {
	atomic64_t received;
	atomic64_t accepted;
	atomic64_t ignored;
	atomic64_t relayed;
	atomic64_t broadcast;
	atomic64_t ticks;
	atomic64_t errors;
	atomic64_t once_full;
};

static struct sock *dnl_sock;
static struct timer_list dnl_tick_timer;
static u64 dnl_tick_counter;
static struct dnl_counters dnl_counters;

/*
 * Only the input path takes this lock, and the input runs in the sending
 * task's context (netlink_unicast_kernel(), inside sendmsg()), never in a
 * softirq or the tick timer: a plain spin_lock is enough.
 */
static DEFINE_SPINLOCK(dnl_senders_lock);
static DEFINE_HASHTABLE(dnl_senders, DNL_ONCE_HASH_BITS);
static unsigned int dnl_nsenders;

static u32 dnl_sender_hash(u32 portid, unsigned long ino)
{
	return portid ^ (u32)ino;
}

static struct dnl_sender *dnl_sender_find(u32 portid, unsigned long ino)
{
	struct dnl_sender *s;

	hash_for_each_possible(dnl_senders, s, node, dnl_sender_hash(portid, ino))
		if (s->portid == portid && s->ino == ino)
			return s;
	return NULL;
}

/* A sender with no request in flight whose keys have all expired. */
static struct dnl_sender *dnl_sender_idle(unsigned long now)
{
	struct dnl_sender *s;
	unsigned int bkt;

	hash_for_each(dnl_senders, bkt, s, node)
		if (!s->users && !time_before(now, s->last + DNL_ONCE_WINDOW))
			return s;
	return NULL;
}

/*
 * The once-only state of the socket that sent @skb, held until
 * dnl_sender_put(); ERR_PTR(-ENOBUFS) when all once_senders slots are in
 * use, ERR_PTR(-ENOMEM) when a slot could not be allocated.
 */
static struct dnl_sender *dnl_sender_get(struct sk_buff *skb)
{
	u32 portid = NETLINK_CB(skb).portid;
	unsigned long ino = sock_i_ino(NETLINK_CB(skb).sk);
	struct dnl_sender *s, *fresh;
	bool full = false;

	spin_lock(&dnl_senders_lock);
	s = dnl_sender_find(portid, ino);
	if (s) {
		s->users++;
		spin_unlock(&dnl_senders_lock);
		return s;
	}
	spin_unlock(&dnl_senders_lock);

	fresh = kmalloc(sizeof(*fresh), GFP_KERNEL);
	spin_lock(&dnl_senders_lock);
	/* Another thread sending on the same socket may have added it. */
	s = dnl_sender_find(portid, ino);
	if (!s) {
		full = dnl_nsenders >= once_senders;
		if (fresh && !full) {
			s = fresh;
			fresh = NULL;
			mutex_init(&s->lock);
			dnl_nsenders++;
		} else {
			s = dnl_sender_idle(jiffies);
			if (s)
				hash_del(&s->node);
		}
		if (s) {
			s->portid = portid;
			s->ino = ino;
			s->users = 0;
			s->last = jiffies - DNL_ONCE_WINDOW;
			s->next = 0;
			memset(s->keys, 0, sizeof(s->keys));
			hash_add(dnl_senders, &s->node,
				 dnl_sender_hash(portid, ino));
		}
	}
	if (s)
		s->users++;
	spin_unlock(&dnl_senders_lock);
	kfree(fresh);
	return s ?: ERR_PTR(full ? -ENOBUFS : -ENOMEM);
}

static void dnl_sender_put(struct dnl_sender *s)
{
	spin_lock(&dnl_senders_lock);
	s->users--;
	spin_unlock(&dnl_senders_lock);
}

/*
 * Keys are recorded in time order: the walk goes from the newest back and
 * stops at the first expired one.
 */
static bool dnl_once_seen(const struct dnl_sender *s, u32 seq, u16 type,
			  unsigned long now)
{
	unsigned int i;

	for (i = 1; i <= DNL_ONCE_KEYS; i++) {
		const struct dnl_once_key *k =
			&s->keys[(s->next + DNL_ONCE_KEYS - i) % DNL_ONCE_KEYS];

		if (!k->type || !time_before(now, k->when + DNL_ONCE_WINDOW))
			return false;
		if (k->seq == seq && k->type == type)
			return true;
	}
	return false;
}

static void dnl_once_record(struct dnl_sender *s, u32 seq, u16 type,
			    unsigned long now)
{
	s->keys[s->next] = (struct dnl_once_key) {
		.when = now, .seq = seq, .type = type,
	};
	s->next = (s->next + 1) % DNL_ONCE_KEYS;
	s->last = now;
}

static void dnl_senders_free(void)
{
	struct dnl_sender *s;
	struct hlist_node *tmp;
	unsigned int bkt;

	hash_for_each_safe(dnl_senders, bkt, tmp, s, node) {
		hash_del(&s->node);
		kfree(s);
	}
	dnl_nsenders = 0;
}

/*
 * A message whose payload is @hlen bytes of @head then @len bytes of @data,
 * or NULL. No nlmsg_end(): it would round nlmsg_len up to the padded size.
 */
static struct sk_buff *dnl_new_msg(u32 pid, u32 seq, int type,
				   const void *head, size_t hlen,
				   const void *data, size_t len, gfp_t gfp)
{
	struct nlmsghdr *nlh;
	struct sk_buff *skb;

	skb = nlmsg_new(hlen + len, gfp);
	if (!skb)
		return NULL;
	nlh = nlmsg_put(skb, pid, seq, type, hlen + len, 0);
	if (!nlh) {
		kfree_skb(skb);
		return NULL;
	}
	if (hlen)
		memcpy(nlmsg_data(nlh), head, hlen);
	memcpy((u8 *)nlmsg_data(nlh) + hlen, data, len);
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
	/* Any sender can trigger this: off unless asked, rate-limited when on. */
	if (log_data)
		pr_info_ratelimited("DATA from port %u group %u seq %u len %d: %*pE\n",
				    NETLINK_CB(skb).portid,
				    NETLINK_CB(skb).dst_group, nlh->nlmsg_seq,
				    len, min(len, DNL_LOG_BYTES),
				    nlmsg_data(nlh));
	return 0;
}

static int dnl_rcv_relay(struct sk_buff *skb, struct nlmsghdr *nlh,
			 struct netlink_ext_ack *extack)
{
	const struct dnl_relay *req = nlmsg_data(nlh);
	int len = nlmsg_len(nlh) - (int)sizeof(*req);
	struct dnl_relayed origin;
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

	/*
	 * The delivery comes from port 0 like the module's own messages: its
	 * type and a header only the module writes say whose it is. The
	 * credentials are the requester's (netlink_sendmsg() filled them in
	 * from the sending task), so SO_PASSCRED shows them too.
	 */
	origin = (struct dnl_relayed) {
		.portid = NETLINK_CB(skb).portid,
		.uid = from_kuid_munged(&init_user_ns, NETLINK_CB(skb).creds.uid),
	};
	out = dnl_new_msg(NETLINK_CB(skb).portid, nlh->nlmsg_seq,
			  DNL_MSG_RELAYED, &origin, sizeof(origin), req + 1, len,
			  GFP_KERNEL);
	if (!out)
		return -ENOMEM;
	NETLINK_CB(out).creds = NETLINK_CB(skb).creds;
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
				  DNL_MSG_DATA, NULL, 0, data, len, GFP_KERNEL);
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
		.once_full = atomic64_read(&dnl_counters.once_full),
	};
	struct sk_buff *out;
	int err;

	if (nlmsg_len(nlh)) {
		NL_SET_ERR_MSG_MOD(extack, "STATS request carries a payload");
		return -EINVAL;
	}
	spin_lock(&dnl_senders_lock);
	stats.once_senders = dnl_nsenders;
	spin_unlock(&dnl_senders_lock);
	out = dnl_new_msg(NETLINK_CB(skb).portid, nlh->nlmsg_seq,
			  DNL_MSG_STATS, NULL, 0, &stats, sizeof(stats),
			  GFP_KERNEL);
	if (!out)
		return -ENOMEM;
	err = netlink_unicast(dnl_sock, out, NETLINK_CB(skb).portid,
			      MSG_DONTWAIT);
	return err < 0 ? err : 0;
}

/*
 * DATA, RELAY and BCAST, once per sender, seq and type. The key is
 * recorded only when the request succeeded: a request that failed (a RELAY
 * to a port that was not there yet, say) may be retried with its seq.
 */
static int dnl_rcv_once(struct sk_buff *skb, struct nlmsghdr *nlh,
			struct netlink_ext_ack *extack)
{
	struct dnl_sender *s;
	unsigned long now;
	int err;

	s = dnl_sender_get(skb);
	if (IS_ERR(s)) {
		if (PTR_ERR(s) == -ENOBUFS) {
			atomic64_inc(&dnl_counters.once_full);
			NL_SET_ERR_MSG_MOD(extack, "once-only table full: retry in 2 s");
		}
		return PTR_ERR(s);
	}
	mutex_lock(&s->lock);
	now = jiffies;
	if (dnl_once_seen(s, nlh->nlmsg_seq, nlh->nlmsg_type, now)) {
		atomic64_inc(&dnl_counters.ignored);
		err = 0;
		goto unlock;
	}
	switch (nlh->nlmsg_type) {
	case DNL_MSG_DATA:
		err = dnl_rcv_data(skb, nlh, extack);
		break;
	case DNL_MSG_RELAY:
		err = dnl_rcv_relay(skb, nlh, extack);
		break;
	default:
		err = dnl_rcv_bcast(skb, nlh, extack);
		break;
	}
	if (!err)
		dnl_once_record(s, nlh->nlmsg_seq, nlh->nlmsg_type, now);
unlock:
	mutex_unlock(&s->lock);
	dnl_sender_put(s);
	return err;
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
	/*
	 * A group copy is a message to the group's readers that the kernel
	 * also reads. Requests (RELAY, BCAST, STATS) are for the kernel
	 * alone: sending one to a group must not make the kernel act on it,
	 * or a sender allowed on a group would act as the kernel.
	 */
	if (group && nlh->nlmsg_type != DNL_MSG_DATA) {
		NL_SET_ERR_MSG_MOD(extack, "group copies carry DATA only; send requests to port 0");
		return -EPROTOTYPE;
	}

	switch (nlh->nlmsg_type) {
	case DNL_MSG_DATA:
	case DNL_MSG_RELAY:
	case DNL_MSG_BCAST:
		return dnl_rcv_once(skb, nlh, extack);
	case DNL_MSG_STATS:
		/*
		 * STATS only reads: every request is answered, so a poller
		 * that reuses its seq is not left without a reply.
		 */
		return dnl_rcv_stats(skb, nlh, extack);
	default:
		NL_SET_ERR_MSG_MOD(extack, "unknown message type");
		return -EOPNOTSUPP;
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
				  NULL, 0, &tick, sizeof(tick), GFP_ATOMIC);
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
	if (once_senders < 1 || once_senders > DNL_ONCE_SENDERS_MAX) {
		pr_err("once_senders=%u is not in 1..%d\n", once_senders,
		       DNL_ONCE_SENDERS_MAX);
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
	/*
	 * rmmod is refused while a user socket of the unit is open, so no
	 * input is running: the once-only table has no user left.
	 */
	netlink_kernel_release(dnl_sock);
	dnl_senders_free();
	pr_info("unloaded after %llu ticks\n",
		(unsigned long long)atomic64_read(&dnl_counters.ticks));
}

module_init(dnl_init);
module_exit(dnl_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Raw netlink unit for multicast and unicast experiments");
/*
 * No MODULE_ALIAS_NET_PF_PROTO: with it, any user's socket(AF_NETLINK, _,
 * 25) would load the module (and so start nlbridge.service through its udev
 * rule). It is loaded at boot (modules-load.d) or by root.
 */
