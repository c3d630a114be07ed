// SPDX-License-Identifier: GPL-2.0
/*
 * vmig: requests written by the module itself (VMIG_POSTCOPY_SET_SINK).
 *
 * Without a sink a request crosses a helper thread: the fault wakes it,
 * it returns from poll(), read()s the request and write()s it to the
 * network, three system calls and a wakeup on some other CPU before the
 * request leaves.  With a sink the fault puts the page on a queue (under
 * pc.lock, with the request) and kicks a worker; the faulting thread then
 * sleeps for its page and the worker, queued on the same CPU, runs at
 * once and writes the record.  Measured with a QEMU guest under nested
 * KVM, docs/performance.md has the figures.
 *
 * Why a worker and not the fault itself: writing takes the socket's lock,
 * under which a process's own send() may fault on guest memory and wait
 * for a request of its own; a fault that held mmap_lock while it waited
 * for that lock could deadlock the VMM.  The worker holds no lock of the
 * fault's, so the worst such a misuse does is keep the worker waiting
 * until the process is killed.
 *
 * Records are whole or absent on the wire.  The worker writes under the
 * socket's lock, and only when the send buffer has room for every record
 * of the batch (tcp_sendmsg_locked, MSG_DONTWAIT); a batch that does not
 * fit, or a broken socket, fails the sink: writing stops and every queued
 * request goes back to read() without VMIG_REQ_SENT, for the reader to
 * write once it has detached the socket.  Only a write that stopped half
 * way (no memory for a buffer) leaves a partial record: the socket is then
 * shut down, as a broken link would be, and recovery reconnects.  Plain
 * TCP only: a socket whose sendmsg is not TCP's (kTLS, sockmap) is refused
 * at attach, and a sink whose socket changes to one fails at its next
 * write.
 *
 * Lifetime: @sock is set and cleared under @mutex with the worker stopped
 * (open false under pc.lock, then cancel_work_sync()), so the worker never
 * sees a socket go.  Faults queue only while open.  The sink ends with the
 * process that attached it: when that process closes a descriptor of the
 * region, as its exit closes them all (vmig_sink_flush), the socket goes
 * and the peer sees the connection end, as it would without a sink, rather
 * than a connection kept open by a module for a helper that is gone.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/file.h>
#include <linux/net.h>
#include <linux/pid.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/workqueue.h>
#include <net/sock.h>
#include <net/tcp.h>

#include "vmig.h"

/* Records per write: 64 x 32 bytes at most. */
#define VMIG_SINK_BATCH		64

static struct workqueue_struct *vmig_sink_wq;

/* Write @len bytes of whole records, or nothing; see the top. */
static int vmig_sink_write(struct socket *sock, const void *buf, size_t len)
{
	struct kvec kv = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_flags = MSG_DONTWAIT | MSG_NOSIGNAL };
	struct sock *sk = sock->sk;
	int sent, err = 0;

	iov_iter_kvec(&msg.msg_iter, WRITE, &kv, 1, len);
	lock_sock(sk);
	if (READ_ONCE(sk->sk_prot)->sendmsg != tcp_sendmsg)
		err = -EPROTO;
	else if (sk->sk_state != TCP_ESTABLISHED || sk->sk_err ||
		 (sk->sk_shutdown & SEND_SHUTDOWN))
		err = -EPIPE;
	else if (sk_stream_wspace(sk) < (int)len || !sk_stream_memory_free(sk))
		err = -EAGAIN;
	if (!err) {
		sent = tcp_sendmsg_locked(sk, &msg, len);
		if (sent != len)
			err = sent > 0 ? -EIO : sent ? sent : -EAGAIN;
		if (sent > 0 && sent != len)
			pr_warn_ratelimited("request sink: %d of %zu bytes written, shutting the socket down\n",
					    sent, len);
	}
	release_sock(sk);
	if (err == -EIO)
		kernel_sock_shutdown(sock, SHUT_RDWR);
	return err;
}

static void vmig_sink_work(struct work_struct *work)
{
	struct vmig_sink_state *s = container_of(work, struct vmig_sink_state,
						 work);
	struct vmig_postcopy *pc = container_of(s, struct vmig_postcopy, sink);
	struct vmig_region *r = container_of(pc, struct vmig_region, pc);
	unsigned int i, k, n;
	size_t len;
	int err;

	for (;;) {
		spin_lock(&pc->lock);
		if (!s->open || !s->count) {
			spin_unlock(&pc->lock);
			return;
		}
		n = min_t(unsigned int, s->count, VMIG_SINK_BATCH);
		len = s->len;
		for (i = 0, k = 0; i < n; i++) {
			pgoff_t index = s->queue[(s->head + i) % VMIG_SINK_QUEUE];
			__le64 page = cpu_to_le64(index);
			u8 *rec = s->buf + k * len;

			/* Placed meanwhile, or taken back by REQUEUE: not asked. */
			if (!vmig_postcopy_sent(r, index))
				continue;
			memcpy(rec, s->record, len);
			memcpy(rec + s->page_at, &page, sizeof(page));
			k++;
		}
		spin_unlock(&pc->lock);

		err = k ? vmig_sink_write(s->sock, s->buf, k * len) : 0;

		spin_lock(&pc->lock);
		if (!err) {
			s->head = (s->head + n) % VMIG_SINK_QUEUE;
			s->count -= n;
			atomic64_add(k, &r->stats.sink_sent);
			spin_unlock(&pc->lock);
			continue;
		}
		s->open = false;
		spin_unlock(&pc->lock);
		pr_debug("region %u: request sink failed (%d)\n", r->id, err);
		/* Whatever is queued goes back to the reader. */
		vmig_postcopy_unsend(r);
		return;
	}
}

/**
 * vmig_sink_queue - queue a new request's page for the sink
 * @r:		the region, pc.lock held
 * @index:	the page
 *
 * Return: true if queued (the request is then VMIG_REQ_SENT and the
 * caller kicks the worker once it dropped the lock), false if there is
 * no open sink or its queue is full.
 */
bool vmig_sink_queue(struct vmig_region *r, pgoff_t index)
{
	struct vmig_sink_state *s = &r->pc.sink;

	lockdep_assert_held(&r->pc.lock);
	if (!s->open || s->count == VMIG_SINK_QUEUE)
		return false;
	s->queue[(s->head + s->count) % VMIG_SINK_QUEUE] = index;
	s->count++;
	return true;
}

/* The worker runs on this CPU as soon as the fault sleeps. */
void vmig_sink_kick(struct vmig_region *r)
{
	queue_work(vmig_sink_wq, &r->pc.sink.work);
}

/*
 * Called with s->mutex held.  The work is cancelled even with no socket:
 * a fault that queued before an earlier detach may kick it after.
 */
static void vmig_sink_detach_locked(struct vmig_region *r)
{
	struct vmig_sink_state *s = &r->pc.sink;
	struct socket *sock = s->sock;

	spin_lock(&r->pc.lock);
	s->open = false;
	spin_unlock(&r->pc.lock);
	/* A write in progress ends; none starts after. */
	cancel_work_sync(&s->work);
	if (!sock)
		return;
	vmig_postcopy_unsend(r);
	s->sock = NULL;
	put_pid(s->owner);
	WRITE_ONCE(s->owner, NULL);
	sockfd_put(sock);
}

/* Detach the socket, if any; queued requests go back to read(). */
void vmig_sink_detach(struct vmig_region *r)
{
	mutex_lock(&r->pc.sink.mutex);
	vmig_sink_detach_locked(r);
	mutex_unlock(&r->pc.sink.mutex);
}

/**
 * vmig_sink_flush - a descriptor of the region is being closed
 * @r:	the region
 *
 * By the process that attached the sink (its exit closes every one): the
 * sink goes with it.  Any other process's close leaves it, even one that
 * shares the attacher's descriptor table (CLONE_FILES without a thread
 * group) and outlives it: such a sink stays until the other ends above.
 */
void vmig_sink_flush(struct vmig_region *r)
{
	struct vmig_sink_state *s = &r->pc.sink;

	/* A held reference: equal only to a pid of the attacher's. */
	if (READ_ONCE(s->owner) != task_tgid(current))
		return;
	mutex_lock(&s->mutex);
	if (s->owner == task_tgid(current))
		vmig_sink_detach_locked(r);
	mutex_unlock(&s->mutex);
}

/* Plain TCP over IPv4 or IPv6, connected: see the top. */
static int vmig_sink_check_socket(struct socket *sock)
{
	struct sock *sk = sock->sk;

	if (!sk || sock->type != SOCK_STREAM || sk->sk_protocol != IPPROTO_TCP ||
	    (sk->sk_family != AF_INET && sk->sk_family != AF_INET6) ||
	    READ_ONCE(sk->sk_prot)->sendmsg != tcp_sendmsg)
		return -EINVAL;
	if (READ_ONCE(sk->sk_state) != TCP_ESTABLISHED)
		return -ENOTCONN;
	return 0;
}

static int vmig_sink_check(const struct vmig_sink *a)
{
	u32 len = a->len;

	if (a->flags || a->reserved)
		return -EINVAL;
	if (a->fd == -1)
		return len || a->page_at ||
		       memchr_inv(a->record, 0, sizeof(a->record)) ? -EINVAL : 0;
	if (a->fd < 0 || len < 8 || len > VMIG_SINK_RECORD_MAX ||
	    a->page_at > len - 8)
		return -EINVAL;
	if (memchr_inv(a->record + len, 0, sizeof(a->record) - len))
		return -EINVAL;
	return 0;
}

long vmig_sink_set(struct vmig_region *r, struct vmig_sink __user *argp)
{
	struct vmig_sink_state *s = &r->pc.sink;
	struct vmig_postcopy *pc = &r->pc;
	struct socket *sock;
	struct vmig_sink a;
	int err;

	if (copy_from_user(&a, argp, sizeof(a)))
		return -EFAULT;
	err = vmig_sink_check(&a);
	if (err)
		return err;
	if (a.fd == -1) {
		vmig_sink_detach(r);
		return 0;
	}
	sock = sockfd_lookup(a.fd, &err);
	if (!sock)
		return err;
	err = vmig_sink_check_socket(sock);
	if (err)
		goto out_put;

	mutex_lock(&s->mutex);
	if (!s->queue) {
		s->queue = kvmalloc_array(VMIG_SINK_QUEUE, sizeof(*s->queue),
					  GFP_KERNEL_ACCOUNT);
		s->buf = kmalloc_array(VMIG_SINK_BATCH, VMIG_SINK_RECORD_MAX,
				       GFP_KERNEL_ACCOUNT);
		if (!s->queue || !s->buf) {
			kvfree(s->queue);
			kfree(s->buf);
			s->queue = NULL;
			s->buf = NULL;
			err = -ENOMEM;
			goto out_unlock;
		}
	}
	vmig_sink_detach_locked(r);
	spin_lock(&pc->lock);
	if (!pc->on || pc->aborted) {
		spin_unlock(&pc->lock);
		err = -EINVAL;
		goto out_unlock;
	}
	memcpy(s->record, a.record, sizeof(s->record));
	s->len = a.len;
	s->page_at = a.page_at;
	s->head = 0;
	s->count = 0;
	s->sock = sock;
	s->open = true;
	spin_unlock(&pc->lock);
	WRITE_ONCE(s->owner, get_pid(task_tgid(current)));
	mutex_unlock(&s->mutex);
	return 0;

out_unlock:
	mutex_unlock(&s->mutex);
out_put:
	sockfd_put(sock);
	return err;
}

void vmig_sink_region_init(struct vmig_region *r)
{
	mutex_init(&r->pc.sink.mutex);
	INIT_WORK(&r->pc.sink.work, vmig_sink_work);
}

void vmig_sink_region_destroy(struct vmig_region *r)
{
	vmig_sink_detach(r);
	kvfree(r->pc.sink.queue);
	kfree(r->pc.sink.buf);
	mutex_destroy(&r->pc.sink.mutex);
}

int vmig_sink_init(void)
{
	/* Per CPU: the worker runs where the fault queued it. */
	vmig_sink_wq = alloc_workqueue("vmig_sink", WQ_HIGHPRI, 0);
	return vmig_sink_wq ? 0 : -ENOMEM;
}

void vmig_sink_exit(void)
{
	destroy_workqueue(vmig_sink_wq);
}
