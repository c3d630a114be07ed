/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmig: internal declarations shared by the module's files.
 *
 * One file per concern: main.c (device, parameters), region.c (memory,
 * mmap, faults), dirty.c (dirty logging), postcopy.c (missing-page
 * service), netlink.c (generic netlink: stats, events), regionfs.c (the
 * mountable vmigfs: regions by path).  region.c owns
 * a region's lifetime and calls into the others
 * through the hooks declared here.
 */
#ifndef _VMIG_INTERNAL_H
#define _VMIG_INTERNAL_H

#include <linux/atomic.h>
#include <linux/fs.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/poll.h>
#include <linux/rwsem.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/vmig.h>

#define VMIG_MOD_VERSION	"0.1"

/* Counters of one region; atomics so no path needs a lock to count. */
struct vmig_region_stats {
	atomic64_t write_faults;
	atomic64_t harvest_calls;
	atomic64_t pages_harvested;
	atomic64_t clear_calls;
	atomic64_t pages_protected;
	atomic64_t max_protect_ns;
	atomic64_t missing_faults;
	atomic64_t requests;
	atomic64_t pages_placed;
	atomic64_t place_exist;
	atomic64_t wait_hist[VMIG_HIST_BUCKETS];
	atomic64_t pages_discarded;
	atomic64_t nowait_placed;
	atomic64_t nowait_fallbacks;
	atomic64_t sink_sent;
	atomic64_t sink_unsent;
};

/* Dirty-logging state of a region, owned by dirty.c. */
struct vmig_dirty {
	struct mutex lock;		/* serializes enable/disable/harvest */
	unsigned long __rcu *bitmap;	/* one bit per page; NULL when off */
	u32 flags;			/* VMIG_DIRTY_* while on */
	bool on;
	bool hw;			/* HWDIRTY on; read without the lock */
	bool mprotected;		/* mprotect() gave write access; sticky */
	u64 gen;			/* ENABLEs so far, under lock */
};

/*
 * Requests the module writes to a socket itself (VMIG_POSTCOPY_SET_SINK),
 * owned by sink.c.  The queue and the record under pc.lock; @sock and the
 * worker's buffer under @mutex, or the worker's own while @open.
 */
struct vmig_sink_state {
	struct mutex mutex;		/* attach and detach */
	struct socket *sock;		/* NULL: none; holds a file reference */
	struct pid *owner;		/* the attacher's process, with @sock */
	struct work_struct work;	/* writes the queue out */
	pgoff_t *queue;			/* VMIG_SINK_QUEUE pages, a ring */
	unsigned int head, count;
	bool open;			/* the fault may queue */
	u32 len, page_at;
	u8 record[VMIG_SINK_RECORD_MAX];
	u8 *buf;			/* the worker's records */
};

/* Missing-page service state of a region, owned by postcopy.c. */
#define VMIG_PENDING_HASH_BITS	8
struct vmig_postcopy {
	/*
	 * Held for reading by a fault that zero-fills a missing page outside
	 * postcopy mode, for writing to switch the mode: after a switch no
	 * fault still acts on the old mode.
	 */
	struct rw_semaphore mode_sem;
	spinlock_t lock;		/* protects on..aborted */
	bool on;			/* postcopy mode; also under mode_sem */
	wait_queue_head_t readq;	/* readers of requests */
	struct hlist_head pending[1 << VMIG_PENDING_HASH_BITS]; /* by page */
	struct list_head unread;	/* requests not yet read(), FIFO */
	bool aborted;
	struct vmig_sink_state sink;
};

struct mem_cgroup;
struct user_struct;

struct vmig_region {
	struct inode *inode;		/* own inode, own address_space */
	struct user_struct *user;	/* the creator's; owns the region */
	struct mem_cgroup *memcg;	/* the creator's, charged for pages */
	unsigned long locked_pages;	/* charged to user->locked_vm */
	u64 size;
	pgoff_t npages;
	u32 flags;			/* VMIG_REGION_* */
	unsigned int id;		/* for messages and netlink */
	struct list_head node;		/* on vmig_regions */
	struct vmig_region_stats stats;
	struct vmig_dirty dirty;
	struct vmig_postcopy pc;
};

static inline struct address_space *vmig_region_mapping(struct vmig_region *r)
{
	return r->inode->i_mapping;
}

/*
 * The region behind a file: its inode's, NULL for a vmigfs file whose size
 * is not set yet.  Once set it stays until the inode is freed.
 */
static inline struct vmig_region *vmig_file_region(struct file *file)
{
	/* Pairs with smp_store_release() in vmig_region_new(): r is whole. */
	return smp_load_acquire(&file_inode(file)->i_private);
}

/* main.c */
extern const u64 vmig_features;
extern unsigned long vmig_max_region_bytes;
extern unsigned int vmig_max_regions_per_user;
extern atomic64_t vmig_reserved_bytes;
extern atomic64_t vmig_pages_allocated;
extern atomic64_t vmig_region_count;

/* region.c */
extern struct mutex vmig_regions_lock;	/* protects vmig_regions */
extern struct list_head vmig_regions;	/* live regions, sorted by id */
void vmig_region_exit(void);
int vmig_region_create(const struct vmig_region_create *arg);
struct vmig_region *vmig_region_new(struct inode *inode, u64 size, u32 flags);
void vmig_region_destroy(struct vmig_region *r);
int vmig_region_mmap(struct file *file, struct vm_area_struct *vma);
long vmig_region_ioctl(struct file *file, unsigned int cmd, unsigned long arg);
int vmig_region_flush(struct file *file, fl_owner_t id);
ssize_t vmig_region_read(struct file *file, char __user *buf, size_t count,
			 loff_t *ppos);
__poll_t vmig_region_poll(struct file *file, poll_table *wait);
struct folio *vmig_region_add_folio(struct vmig_region *r, pgoff_t index,
				    const void __user *src);
u32 vmig_region_flags(struct vmig_region *r);
void vmig_region_stats_fill(struct vmig_region *r, struct vmig_stats *st);
void vmig_region_stats_reset(struct vmig_region *r);
bool vmig_region_visible(struct vmig_region *r, kuid_t uid, bool admin);

/* dirty.c */
int vmig_dirty_init(struct vmig_region *r);
void vmig_dirty_destroy(struct vmig_region *r);
void vmig_dirty_note_write(struct vmig_region *r, pgoff_t index);
void vmig_dirty_note_mprotect(struct vmig_region *r, pgoff_t first, pgoff_t nr,
			      unsigned long newflags);
bool vmig_dirty_folio(struct address_space *mapping, struct folio *folio);
long vmig_dirty_ioctl(struct vmig_region *r, unsigned int cmd,
		      void __user *argp);

/* postcopy.c */
int vmig_postcopy_init(struct vmig_region *r);
void vmig_postcopy_destroy(struct vmig_region *r);
vm_fault_t vmig_postcopy_fault(struct vmig_region *r, struct vm_fault *vmf);
struct folio *vmig_postcopy_fill_zero(struct vmig_region *r, pgoff_t index);
void vmig_postcopy_state(struct vmig_region *r, bool *on, bool *aborted);
static inline bool vmig_postcopy_on(struct vmig_region *r)
{
	return READ_ONCE(r->pc.on);
}

long vmig_postcopy_ioctl(struct vmig_region *r, unsigned int cmd,
			 void __user *argp);
ssize_t vmig_postcopy_read(struct vmig_region *r, struct file *file,
			   char __user *buf, size_t count);
__poll_t vmig_postcopy_poll(struct vmig_region *r, struct file *file,
			    poll_table *wait);
long vmig_postcopy_discard_range(struct vmig_region *r, u64 offset, u64 len,
				 u64 *discarded);

/* sink.c */
int vmig_sink_init(void);
void vmig_sink_exit(void);
void vmig_sink_region_init(struct vmig_region *r);
void vmig_sink_region_destroy(struct vmig_region *r);
bool vmig_sink_queue(struct vmig_region *r, pgoff_t index);
void vmig_sink_kick(struct vmig_region *r);
void vmig_sink_detach(struct vmig_region *r);
void vmig_sink_flush(struct vmig_region *r);
long vmig_sink_set(struct vmig_region *r, struct vmig_sink __user *argp);
void vmig_postcopy_unsend(struct vmig_region *r);
bool vmig_postcopy_sent(struct vmig_region *r, pgoff_t index);

/* regionfs.c */
struct sk_buff;
int vmig_regionfs_init(void);
void vmig_regionfs_exit(void);
int vmig_regionfs_nl_put(struct sk_buff *skb, struct vmig_region *r);

/* netlink.c */
int vmig_nl_init(void);
void vmig_nl_exit(void);
void vmig_nl_event_region(struct vmig_region *r, bool created);
void vmig_nl_event_dirty(struct vmig_region *r, bool on);
void vmig_nl_event_stall(struct vmig_region *r, u64 ns);
void vmig_nl_event_postcopy(struct vmig_region *r, bool on);

#endif /* _VMIG_INTERNAL_H */
