/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmig tracepoints (events/vmig/ in tracefs), for perf and bpftrace users:
 *   vmig_write_fault	a write to a write-protected page was recorded
 *   vmig_harvest	VMIG_GET_DIRTY_LOG or VMIG_CLEAR_DIRTY_LOG finished
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM vmig

#if !defined(_VMIG_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _VMIG_TRACE_H

#include <linux/tracepoint.h>

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

#endif /* _VMIG_TRACE_H */

/* This part must be outside the include guard. */
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE trace
#include <trace/define_trace.h>
