// SPDX-License-Identifier: GPL-2.0
/*
 * vmig: the generic netlink family "vmig" - what an operator sees.
 *
 * Module info is open to every user of the initial network namespace.  A
 * region's data (its size, mode and live counters) tells what a VM is
 * doing, so the region dump and VMIG_CMD_GET_REGION show an unprivileged
 * user only the regions that user created (the owner is the creator's
 * real uid, compared with the uid the request was sent with); a holder of
 * CAP_NET_ADMIN sees all, as it may reset them: the one mutating command,
 * VMIG_CMD_RESET_STATS, needs CAP_NET_ADMIN.  CAP_NET_ADMIN, not
 * CAP_SYS_ADMIN: it is what netlink administration asks for everywhere
 * (GENL_ADMIN_PERM), and the least that lets an operator watch every VM.
 * Someone else's region reads as absent (-ENOENT), not as forbidden.
 *
 * The events group carries every region's events (the creator's pid,
 * counters at the end) and a multicast group cannot filter per listener
 * on 6.1, so joining it needs CAP_NET_ADMIN (GENL_MCAST_CAP_NET_ADMIN).
 *
 * Every command has a strict policy (a command without one takes no
 * attribute at all), so the genetlink core rejects unknown, misplaced and
 * malformed attributes with an extended-ack message before any handler
 * runs.
 *
 * Events go to the "events" multicast group.  They are best effort: none is
 * built while nobody listens, and a full listener loses them.  The hooks for
 * other files (vmig_nl_event_dirty, vmig_nl_event_stall) allocate with
 * GFP_ATOMIC, so they may be called with spinlocks held.
 *
 * Handlers run without the genetlink mutex (parallel_ops): the region list
 * is protected by vmig_regions_lock, and regions stay allocated while they
 * are on it.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/ratelimit.h>
#include <linux/sched.h>
#include <net/genetlink.h>

#include "vmig.h"

static unsigned int stall_event_us = 100000;
module_param(stall_event_us, uint, 0644);
MODULE_PARM_DESC(stall_event_us,
		 "Send a netlink stall event when a postcopy fault waits longer than this, in microseconds (0: never)");

/* At most 100 stall events a second, however many faults stall. */
static DEFINE_RATELIMIT_STATE(vmig_nl_stall_rs, HZ, 100);

enum vmig_nl_groups {
	VMIG_NL_GRP_EVENTS,
};

static const struct genl_multicast_group vmig_nl_mcgrps[] = {
	[VMIG_NL_GRP_EVENTS] = { .name = VMIG_GENL_MCGRP_EVENTS,
				 .flags = GENL_MCAST_CAP_NET_ADMIN },
};

static struct genl_family vmig_nl_family;

static const struct nla_policy vmig_nl_region_policy[VMIG_A_REGION_ID + 1] = {
	[VMIG_A_REGION_ID] = { .type = NLA_U32 },
};

static int vmig_nl_put_stats(struct sk_buff *skb, struct vmig_region *r)
{
	struct vmig_stats st;
	struct nlattr *nest;

	vmig_region_stats_fill(r, &st);
	nest = nla_nest_start(skb, VMIG_A_STATS);
	if (!nest)
		return -EMSGSIZE;
	if (nla_put_u64_64bit(skb, VMIG_STAT_PAGES_PRESENT, st.pages_present, VMIG_STAT_PAD) ||
	    nla_put_u64_64bit(skb, VMIG_STAT_WRITE_FAULTS, st.write_faults, VMIG_STAT_PAD) ||
	    nla_put_u64_64bit(skb, VMIG_STAT_HARVEST_CALLS, st.harvest_calls, VMIG_STAT_PAD) ||
	    nla_put_u64_64bit(skb, VMIG_STAT_PAGES_HARVESTED, st.pages_harvested, VMIG_STAT_PAD) ||
	    nla_put_u64_64bit(skb, VMIG_STAT_CLEAR_CALLS, st.clear_calls, VMIG_STAT_PAD) ||
	    nla_put_u64_64bit(skb, VMIG_STAT_PAGES_PROTECTED, st.pages_protected, VMIG_STAT_PAD) ||
	    nla_put_u64_64bit(skb, VMIG_STAT_MAX_PROTECT_NS, st.max_protect_ns, VMIG_STAT_PAD) ||
	    nla_put_u64_64bit(skb, VMIG_STAT_MISSING_FAULTS, st.missing_faults, VMIG_STAT_PAD) ||
	    nla_put_u64_64bit(skb, VMIG_STAT_REQUESTS, st.requests, VMIG_STAT_PAD) ||
	    nla_put_u64_64bit(skb, VMIG_STAT_PAGES_PLACED, st.pages_placed, VMIG_STAT_PAD) ||
	    nla_put_u64_64bit(skb, VMIG_STAT_PLACE_EXIST, st.place_exist, VMIG_STAT_PAD) ||
	    nla_put(skb, VMIG_STAT_WAIT_HIST, sizeof(st.wait_hist), st.wait_hist) ||
	    nla_put_u64_64bit(skb, VMIG_STAT_PAGES_DISCARDED, st.pages_discarded,
			      VMIG_STAT_PAD) ||
	    nla_put_u64_64bit(skb, VMIG_STAT_NOWAIT_PLACED, st.nowait_placed, VMIG_STAT_PAD) ||
	    nla_put_u64_64bit(skb, VMIG_STAT_NOWAIT_FALLBACKS, st.nowait_fallbacks,
			      VMIG_STAT_PAD) ||
	    nla_put_u64_64bit(skb, VMIG_STAT_SINK_SENT, st.sink_sent, VMIG_STAT_PAD) ||
	    nla_put_u64_64bit(skb, VMIG_STAT_SINK_UNSENT, st.sink_unsent, VMIG_STAT_PAD)) {
		nla_nest_cancel(skb, nest);
		return -EMSGSIZE;
	}
	nla_nest_end(skb, nest);
	return 0;
}

static int vmig_nl_put_region(struct sk_buff *skb, struct vmig_region *r)
{
	if (nla_put_u32(skb, VMIG_A_REGION_ID, r->id) ||
	    nla_put_u64_64bit(skb, VMIG_A_REGION_SIZE, r->size, VMIG_A_PAD) ||
	    nla_put_u32(skb, VMIG_A_REGION_FLAGS, vmig_region_flags(r)) ||
	    vmig_regionfs_nl_put(skb, r))
		return -EMSGSIZE;
	return 0;
}

/* The dirty state is read without r->dirty.lock: a dump never waits for a harvest. */
static int vmig_nl_put_dirty(struct sk_buff *skb, struct vmig_region *r)
{
	if (nla_put_u8(skb, VMIG_A_DIRTY_ON, READ_ONCE(r->dirty.on)) ||
	    nla_put_u32(skb, VMIG_A_DIRTY_FLAGS, READ_ONCE(r->dirty.flags)))
		return -EMSGSIZE;
	return 0;
}

static int vmig_nl_fill_region(struct sk_buff *skb, struct vmig_region *r,
			       u32 portid, u32 seq, int flags)
{
	void *hdr;

	hdr = genlmsg_put(skb, portid, seq, &vmig_nl_family, flags,
			  VMIG_CMD_GET_REGION);
	if (!hdr)
		return -EMSGSIZE;
	if (vmig_nl_put_region(skb, r) || vmig_nl_put_dirty(skb, r) ||
	    vmig_nl_put_stats(skb, r)) {
		genlmsg_cancel(skb, hdr);
		return -EMSGSIZE;
	}
	genlmsg_end(skb, hdr);
	return 0;
}

static struct vmig_region *vmig_nl_find_region(u32 id)
{
	struct vmig_region *r;

	lockdep_assert_held(&vmig_regions_lock);
	list_for_each_entry(r, &vmig_regions, node)
		if (r->id == id)
			return r;
	return NULL;
}

/* May the sender of @skb see @r?  Its owner or CAP_NET_ADMIN: see the top. */
static bool vmig_nl_may_see(struct sk_buff *skb, struct vmig_region *r,
			    bool admin)
{
	return vmig_region_visible(r, NETLINK_CB(skb).creds.uid, admin);
}

static int vmig_nl_get_info(struct sk_buff *skb, struct genl_info *info)
{
	struct sk_buff *msg;
	void *hdr;

	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	hdr = genlmsg_put_reply(msg, info, &vmig_nl_family, 0, VMIG_CMD_GET_INFO);
	if (!hdr)
		goto err_size;
	if (nla_put_string(msg, VMIG_A_MOD_VERSION, VMIG_MOD_VERSION) ||
	    nla_put_u32(msg, VMIG_A_API_VERSION, VMIG_API_VERSION) ||
	    nla_put_u64_64bit(msg, VMIG_A_FEATURES, vmig_features, VMIG_A_PAD) ||
	    nla_put_u64_64bit(msg, VMIG_A_PAGE_SIZE, PAGE_SIZE, VMIG_A_PAD) ||
	    nla_put_u64_64bit(msg, VMIG_A_MAX_REGION_BYTES, vmig_max_region_bytes,
			      VMIG_A_PAD) ||
	    nla_put_u64_64bit(msg, VMIG_A_RESERVED_BYTES,
			      atomic64_read(&vmig_reserved_bytes), VMIG_A_PAD) ||
	    nla_put_u64_64bit(msg, VMIG_A_PAGES_ALLOCATED,
			      atomic64_read(&vmig_pages_allocated), VMIG_A_PAD) ||
	    nla_put_u64_64bit(msg, VMIG_A_REGION_COUNT,
			      atomic64_read(&vmig_region_count), VMIG_A_PAD) ||
	    nla_put_u64_64bit(msg, VMIG_A_STALL_THRESHOLD_NS,
			      (u64)READ_ONCE(stall_event_us) * NSEC_PER_USEC,
			      VMIG_A_PAD))
		goto err_size;
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);

err_size:
	nlmsg_free(msg);
	return -EMSGSIZE;
}

static int vmig_nl_get_region(struct sk_buff *skb, struct genl_info *info)
{
	struct vmig_region *r;
	struct sk_buff *msg;
	int err;

	if (GENL_REQ_ATTR_CHECK(info, VMIG_A_REGION_ID))
		return -EINVAL;
	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	mutex_lock(&vmig_regions_lock);
	r = vmig_nl_find_region(nla_get_u32(info->attrs[VMIG_A_REGION_ID]));
	if (r && !vmig_nl_may_see(skb, r, netlink_capable(skb, CAP_NET_ADMIN)))
		r = NULL;
	if (r)
		err = vmig_nl_fill_region(msg, r, info->snd_portid,
					  info->snd_seq, 0);
	else
		err = -ENOENT;
	mutex_unlock(&vmig_regions_lock);
	if (err) {
		if (err == -ENOENT)
			NL_SET_ERR_MSG_ATTR(info->extack,
					    info->attrs[VMIG_A_REGION_ID],
					    "no region with this id");
		nlmsg_free(msg);
		return err;
	}
	return genlmsg_reply(msg, info);
}

/*
 * cb->args[0] is the lowest id not dumped yet.  vmig_regions is sorted by
 * id, so a dump that spans several messages neither repeats nor skips a
 * region that lives throughout it.
 */
static int vmig_nl_dump_regions(struct sk_buff *skb, struct netlink_callback *cb)
{
	bool admin = netlink_capable(cb->skb, CAP_NET_ADMIN);
	unsigned long next = cb->args[0];
	struct vmig_region *r;
	int err = 0;

	mutex_lock(&vmig_regions_lock);
	list_for_each_entry(r, &vmig_regions, node) {
		if (r->id < next || !vmig_nl_may_see(cb->skb, r, admin))
			continue;
		err = vmig_nl_fill_region(skb, r, NETLINK_CB(cb->skb).portid,
					  cb->nlh->nlmsg_seq, NLM_F_MULTI);
		if (err)
			break;
		next = (unsigned long)r->id + 1;
	}
	mutex_unlock(&vmig_regions_lock);
	cb->args[0] = next;
	/* One region that does not fit an empty buffer would loop forever. */
	if (err && !skb->len)
		return err;
	return skb->len;
}

static int vmig_nl_reset_stats(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr *id = info->attrs[VMIG_A_REGION_ID];
	struct vmig_region *r;
	int err = 0;

	mutex_lock(&vmig_regions_lock);
	if (id) {
		r = vmig_nl_find_region(nla_get_u32(id));
		if (r) {
			vmig_region_stats_reset(r);
		} else {
			NL_SET_ERR_MSG_ATTR(info->extack, id, "no region with this id");
			err = -ENOENT;
		}
	} else {
		list_for_each_entry(r, &vmig_regions, node)
			vmig_region_stats_reset(r);
	}
	mutex_unlock(&vmig_regions_lock);
	return err;
}

static const struct genl_ops vmig_nl_ops[] = {
	{
		.cmd	= VMIG_CMD_GET_INFO,
		.doit	= vmig_nl_get_info,
	},
	{
		.cmd	= VMIG_CMD_GET_REGION,
		.doit	= vmig_nl_get_region,
		.dumpit	= vmig_nl_dump_regions,
		.policy	= vmig_nl_region_policy,
		.maxattr = VMIG_A_REGION_ID,
	},
	{
		.cmd	= VMIG_CMD_RESET_STATS,
		.doit	= vmig_nl_reset_stats,
		.policy	= vmig_nl_region_policy,
		.maxattr = VMIG_A_REGION_ID,
		.flags	= GENL_ADMIN_PERM,
	},
};

static struct genl_family vmig_nl_family __ro_after_init = {
	.name		= VMIG_GENL_NAME,
	.version	= VMIG_GENL_VERSION,
	.maxattr	= VMIG_A_MAX,
	.netnsok	= false,
	.parallel_ops	= true,
	.module		= THIS_MODULE,
	.ops		= vmig_nl_ops,
	.n_ops		= ARRAY_SIZE(vmig_nl_ops),
	.mcgrps		= vmig_nl_mcgrps,
	.n_mcgrps	= ARRAY_SIZE(vmig_nl_mcgrps),
};

static bool vmig_nl_listening(void)
{
	return genl_has_listeners(&vmig_nl_family, &init_net, VMIG_NL_GRP_EVENTS);
}

/* Start an event message; NULL when there is no memory for it. */
static struct sk_buff *vmig_nl_event_new(u8 cmd, gfp_t gfp, void **hdr)
{
	struct sk_buff *skb = genlmsg_new(NLMSG_GOODSIZE, gfp);

	if (!skb)
		return NULL;
	*hdr = genlmsg_put(skb, 0, 0, &vmig_nl_family, 0, cmd);
	if (!*hdr) {
		nlmsg_free(skb);
		return NULL;
	}
	return skb;
}

static void vmig_nl_event_send(struct sk_buff *skb, void *hdr, gfp_t gfp)
{
	genlmsg_end(skb, hdr);
	genlmsg_multicast(&vmig_nl_family, skb, 0, VMIG_NL_GRP_EVENTS, gfp);
}

/**
 * vmig_nl_event_region - announce a region's creation or its end
 * @r:		the region, complete (created) or still whole (destroyed)
 * @created:	true for VMIG_CMD_REGION_NEW, false for VMIG_CMD_REGION_DEL
 *
 * Process context.  region.c sends "created" before the region's fd is
 * installed, so no "destroyed" can overtake it.
 */
void vmig_nl_event_region(struct vmig_region *r, bool created)
{
	struct sk_buff *skb;
	int err;
	void *hdr;

	if (!vmig_nl_listening())
		return;
	skb = vmig_nl_event_new(created ? VMIG_CMD_REGION_NEW : VMIG_CMD_REGION_DEL,
				GFP_KERNEL, &hdr);
	if (!skb)
		return;
	err = vmig_nl_put_region(skb, r);
	if (!err && created)
		err = nla_put_u32(skb, VMIG_A_PID, task_tgid_nr(current));
	if (!err && !created)
		err = vmig_nl_put_stats(skb, r);
	if (err) {
		nlmsg_free(skb);
		return;
	}
	vmig_nl_event_send(skb, hdr, GFP_KERNEL);
}

/**
 * vmig_nl_event_dirty - announce that dirty logging of @r turned on or off
 * @r:	the region; r->dirty.flags already holds the new mode
 * @on:	the new state
 *
 * Any context but hard interrupts.
 */
void vmig_nl_event_dirty(struct vmig_region *r, bool on)
{
	struct sk_buff *skb;
	void *hdr;

	if (!vmig_nl_listening())
		return;
	skb = vmig_nl_event_new(VMIG_CMD_DIRTY, GFP_ATOMIC, &hdr);
	if (!skb)
		return;
	if (nla_put_u32(skb, VMIG_A_REGION_ID, r->id) ||
	    nla_put_u8(skb, VMIG_A_DIRTY_ON, on) ||
	    nla_put_u32(skb, VMIG_A_DIRTY_FLAGS, on ? READ_ONCE(r->dirty.flags) : 0)) {
		nlmsg_free(skb);
		return;
	}
	vmig_nl_event_send(skb, hdr, GFP_ATOMIC);
}

/**
 * vmig_nl_event_stall - report a postcopy fault that waited @ns nanoseconds
 * @r:	the region
 * @ns:	from the fault to the page's arrival
 *
 * Cheap to call for every wait: it returns at once below the threshold
 * (module parameter stall_event_us) or when nobody listens.  Any context but
 * hard interrupts.
 */
void vmig_nl_event_stall(struct vmig_region *r, u64 ns)
{
	u64 limit = (u64)READ_ONCE(stall_event_us) * NSEC_PER_USEC;
	struct sk_buff *skb;
	void *hdr;

	if (!limit || ns <= limit || !vmig_nl_listening() ||
	    !__ratelimit(&vmig_nl_stall_rs))
		return;
	skb = vmig_nl_event_new(VMIG_CMD_STALL, GFP_ATOMIC, &hdr);
	if (!skb)
		return;
	if (nla_put_u32(skb, VMIG_A_REGION_ID, r->id) ||
	    nla_put_u64_64bit(skb, VMIG_A_STALL_NS, ns, VMIG_A_PAD)) {
		nlmsg_free(skb);
		return;
	}
	vmig_nl_event_send(skb, hdr, GFP_ATOMIC);
}

/**
 * vmig_nl_event_postcopy - announce that postcopy mode of @r turned on or off
 * @r:	the region
 * @on:	the new mode
 *
 * Process context.
 */
void vmig_nl_event_postcopy(struct vmig_region *r, bool on)
{
	struct sk_buff *skb;
	void *hdr;

	if (!vmig_nl_listening())
		return;
	skb = vmig_nl_event_new(VMIG_CMD_POSTCOPY, GFP_KERNEL, &hdr);
	if (!skb)
		return;
	if (nla_put_u32(skb, VMIG_A_REGION_ID, r->id) ||
	    nla_put_u8(skb, VMIG_A_POSTCOPY_ON, on)) {
		nlmsg_free(skb);
		return;
	}
	vmig_nl_event_send(skb, hdr, GFP_KERNEL);
}

int vmig_nl_init(void)
{
	/* Suppressed stall events are not worth a log line. */
	ratelimit_set_flags(&vmig_nl_stall_rs, RATELIMIT_MSG_ON_RELEASE);
	return genl_register_family(&vmig_nl_family);
}

void vmig_nl_exit(void)
{
	genl_unregister_family(&vmig_nl_family);
}
