/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmig tracepoints (events/vmig/ in tracefs), for perf and bpftrace users.
 * trace.c instantiates them; each concern's events sit in their own block:
 *   vmig_write_fault	a write to a write-protected page was recorded
 *   vmig_harvest	VMIG_GET_DIRTY_LOG or VMIG_CLEAR_DIRTY_LOG finished
 *   vmig_protect_race	a chunk's bits were set again: a PTE changed
 *			while its protection was being re-armed
 *   vmig_missing_fault	a fault found its page missing (postcopy)
 *   vmig_missing_wake	a fault stopped waiting for its page
 *   vmig_place		VMIG_PLACE handled a page
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM vmig

#if !defined(_VMIG_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _VMIG_TRACE_H

#include <linux/tracepoint.h>

/* --- dirty logging (dirty.c) ---------------------------------------------- */

TRACE_EVENT(vmig_write_fault,
	    TP_PROTO(unsigned int region, unsigned long index),
	    TP_ARGS(region, index),
	    TP_STRUCT__entry(__field(unsigned int, region)
			     __field(unsigned long, index)),
	    TP_fast_assign(__entry->region = region;
			   __entry->index = index;),
	    TP_printk("region=%u page=%lu", __entry->region, __entry->index)
);

TRACE_EVENT(vmig_harvest,
	    TP_PROTO(unsigned int region, bool clear, u64 first, u64 num,
		     u64 dirty, u64 ns),
	    TP_ARGS(region, clear, first, num, dirty, ns),
	    TP_STRUCT__entry(__field(unsigned int, region)
			     __field(bool, clear)
			     __field(u64, first)
			     __field(u64, num)
			     __field(u64, dirty)
			     __field(u64, ns)),
	    TP_fast_assign(__entry->region = region;
			   __entry->clear = clear;
			   __entry->first = first;
			   __entry->num = num;
			   __entry->dirty = dirty;
			   __entry->ns = ns;),
	    TP_printk("region=%u op=%s first=%llu pages=%llu dirty=%llu ns=%llu",
		      __entry->region, __entry->clear ? "clear" : "get",
		      __entry->first, __entry->num, __entry->dirty, __entry->ns)
);

/*
 * The second protection pass over pages [first, first + pages) changed a
 * PTE (an mprotect() gave write access back meanwhile): their bits were
 * set again, so they are reported by the next harvest.
 */
TRACE_EVENT(vmig_protect_race,
	    TP_PROTO(unsigned int region, u64 first, u64 pages),
	    TP_ARGS(region, first, pages),
	    TP_STRUCT__entry(__field(unsigned int, region)
			     __field(u64, first)
			     __field(u64, pages)),
	    TP_fast_assign(__entry->region = region;
			   __entry->first = first;
			   __entry->pages = pages;),
	    TP_printk("region=%u first=%llu pages=%llu",
		      __entry->region, __entry->first, __entry->pages)
);

/* --- postcopy: the missing-page service (postcopy.c) --------------------- */

/*
 * A fault found its page missing.  @queued: this fault created the page's
 * request (the first fault on it); later faults join that request.
 */
TRACE_EVENT(vmig_missing_fault,
	    TP_PROTO(unsigned int region, pgoff_t index,
		     unsigned int fault_flags, bool queued),
	    TP_ARGS(region, index, fault_flags, queued),
	    TP_STRUCT__entry(__field(unsigned int, region)
			     __field(unsigned int, fault_flags)
			     __field(pgoff_t, index)
			     __field(bool, queued)),
	    TP_fast_assign(__entry->region = region;
			   __entry->fault_flags = fault_flags;
			   __entry->index = index;
			   __entry->queued = queued;),
	    TP_printk("region=%u page=%lu fault_flags=%#x new_request=%d",
		      __entry->region, __entry->index, __entry->fault_flags,
		      __entry->queued)
);

/*
 * A faulting thread stopped waiting for a missing page.  @result: 0 the
 * page was placed, -ESHUTDOWN the region was aborted, -EINTR a signal.
 */
TRACE_EVENT(vmig_missing_wake,
	    TP_PROTO(unsigned int region, pgoff_t index, u64 wait_ns,
		     int result),
	    TP_ARGS(region, index, wait_ns, result),
	    TP_STRUCT__entry(__field(unsigned int, region)
			     __field(int, result)
			     __field(pgoff_t, index)
			     __field(u64, wait_ns)),
	    TP_fast_assign(__entry->region = region;
			   __entry->result = result;
			   __entry->index = index;
			   __entry->wait_ns = wait_ns;),
	    TP_printk("region=%u page=%lu wait_ns=%llu result=%d",
		      __entry->region, __entry->index, __entry->wait_ns,
		      __entry->result)
);

/*
 * VMIG_PLACE / VMIG_PLACE_BATCH handled one page.  @err: 0 or the errno
 * (-EEXIST: already present).  @woke: a request was pending for the page.
 */
TRACE_EVENT(vmig_place,
	    TP_PROTO(unsigned int region, pgoff_t index, bool zero, int err,
		     bool woke),
	    TP_ARGS(region, index, zero, err, woke),
	    TP_STRUCT__entry(__field(unsigned int, region)
			     __field(int, err)
			     __field(pgoff_t, index)
			     __field(bool, zero)
			     __field(bool, woke)),
	    TP_fast_assign(__entry->region = region;
			   __entry->err = err;
			   __entry->index = index;
			   __entry->zero = zero;
			   __entry->woke = woke;),
	    TP_printk("region=%u page=%lu zero=%d err=%d woke=%d",
		      __entry->region, __entry->index, __entry->zero,
		      __entry->err, __entry->woke)
);

#endif /* _VMIG_TRACE_H */

/* This part must be outside the include guard. */
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE trace
#include <trace/define_trace.h>
