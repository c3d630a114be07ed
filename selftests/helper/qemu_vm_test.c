// SPDX-License-Identifier: GPL-2.0
/*
 * The QEMU half of 'vmig qemu' (helper/qemu/qmp.c, helper/qemu/qemu_vm.c) against a
 * real qemu-system-x86_64 on the host: guest RAM on a share=on file in
 * /dev/shm, SeaBIOS with nothing to boot.  The whole driver on vmig.ko
 * regions runs in the module's VM (selftests/vmig/qemu_migrate_test.sh).
 * Skips when there is no qemu-system-x86_64.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "../../helper/qemu/qmp.c"
#include "../../helper/qemu/qemu_vm.c"

#define GUEST_MB	64

struct qemu_proc {
	pid_t pid;
	char qmp[128];
	char ram[128];
	int ram_fd;
};

static const char *qemu_bin(void)
{
	static const char *const paths[] = { "/usr/bin/qemu-system-x86_64",
					     "/usr/local/bin/qemu-system-x86_64" };
	unsigned int i;

	for (i = 0; i < 2; i++)
		if (!access(paths[i], X_OK))
			return paths[i];
	return NULL;
}

/* Start a QEMU whose RAM is a share=on file in dir; incoming: -incoming defer. */
static int qemu_start(struct qemu_proc *q, const char *dir, const char *name, bool incoming)
{
	char obj[320], qmp[200];

	snprintf(q->qmp, sizeof(q->qmp), "%s/%s.qmp", dir, name);
	snprintf(q->ram, sizeof(q->ram), "%s/%s.ram", dir, name);
	q->ram_fd = open(q->ram, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (q->ram_fd < 0 || ftruncate(q->ram_fd, GUEST_MB << 20))
		return -1;
	snprintf(obj, sizeof(obj), "memory-backend-file,id=ram0,size=%dM,mem-path=%s,share=on",
		 GUEST_MB, q->ram);
	snprintf(qmp, sizeof(qmp), "unix:%s,server=on,wait=off", q->qmp);
	q->pid = fork();
	if (q->pid < 0)
		return -1;
	if (!q->pid) {
		const char *argv[] = { qemu_bin(), "-machine", "pc,memory-backend=ram0",
				       "-accel", "tcg", "-m", "64M", "-object", obj,
				       "-nodefaults", "-display", "none", "-vga", "none",
				       "-qmp", qmp, incoming ? "-incoming" : NULL, "defer",
				       NULL };
		int null = open("/dev/null", O_RDWR);

		dup2(null, 0);
		dup2(null, 1);
		execv(argv[0], (char **)argv);
		_exit(127);
	}
	return 0;
}

static void qemu_stop(struct qemu_proc *q)
{
	if (q->pid > 0) {
		kill(q->pid, SIGKILL);
		waitpid(q->pid, NULL, 0);
	}
	q->pid = 0;
	if (q->ram_fd >= 0)
		close(q->ram_fd);
	q->ram_fd = -1;
	unlink(q->ram);
}

struct buf {
	char *p;
	size_t len, cap, off;
	struct qemu_proc *kill_on_read;	/* SIGKILL this QEMU when the load starts */
};

static int buf_sink(void *arg, const void *data, size_t len)
{
	struct buf *b = arg;

	if (b->len + len > b->cap) {
		b->cap = (b->len + len) * 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			return -ENOMEM;
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
	return 0;
}

static long buf_source(void *arg, void *data, size_t cap)
{
	struct buf *b = arg;
	size_t n = b->len - b->off < cap ? b->len - b->off : cap;

	if (b->kill_on_read) {
		kill(b->kill_on_read->pid, SIGKILL);
		waitpid(b->kill_on_read->pid, NULL, 0);
		b->kill_on_read->pid = 0;
		b->kill_on_read = NULL;
	}
	memcpy(data, b->p + b->off, n);
	b->off += n;
	return n;
}

FIXTURE(qemu) {
	char dir[64];
	struct qemu_proc src, dst;
	struct qemu_vm vsrc, vdst;
	bool src_open, dst_open;
	char err[640];
};

FIXTURE_SETUP(qemu)
{
	if (!qemu_bin())
		SKIP(return, "no qemu-system-x86_64 on this machine");
	signal(SIGPIPE, SIG_IGN);
	snprintf(self->dir, sizeof(self->dir), "/dev/shm/vmig-qemu-XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	self->src.ram_fd = self->dst.ram_fd = -1;
	ASSERT_EQ(0, qemu_start(&self->src, self->dir, "src", false));
	ASSERT_EQ(0, qemu_start(&self->dst, self->dir, "dst", true));
	ASSERT_EQ(0, qemu_vm_open(&self->vsrc, self->src.qmp, false, 30000, self->err,
				  sizeof(self->err))) TH_LOG("%s", self->err);
	self->src_open = true;
	ASSERT_EQ(0, qemu_vm_open(&self->vdst, self->dst.qmp, true, 30000, self->err,
				  sizeof(self->err))) TH_LOG("%s", self->err);
	self->dst_open = true;
}

FIXTURE_TEARDOWN(qemu)
{
	if (self->src_open)
		qemu_vm_close(&self->vsrc);
	if (self->dst_open)
		qemu_vm_close(&self->vdst);
	qemu_stop(&self->src);
	qemu_stop(&self->dst);
	if (self->dir[0] == '/') {
		unlink(self->src.qmp);
		unlink(self->dst.qmp);
		rmdir(self->dir);
	}
}

static void expect_status(struct __test_metadata *_metadata, struct qemu_vm *vm,
			  const char *want)
{
	char st[32], err[640];

	ASSERT_EQ(0, qemu_vm_status(vm, st, sizeof(st), err, sizeof(err))) TH_LOG("%s", err);
	ASSERT_STREQ(want, st);
}

/* The RAM moves apart, as the vmig helper moves the regions. */
static void copy_ram(struct __test_metadata *_metadata, FIXTURE_DATA(qemu) *self)
{
	uint64_t ram = GUEST_MB << 20;
	void *s = mmap(NULL, ram, PROT_READ, MAP_SHARED, self->src.ram_fd, 0);
	void *d = mmap(NULL, ram, PROT_WRITE, MAP_SHARED, self->dst.ram_fd, 0);

	ASSERT_NE(MAP_FAILED, s);
	ASSERT_NE(MAP_FAILED, d);
	memcpy(d, s, ram);
	munmap(s, ram);
	munmap(d, ram);
}

TEST_F(qemu, stop_and_cont_are_followed_by_query_status)
{
	expect_status(_metadata, &self->vsrc, "running");
	ASSERT_EQ(0, qemu_vm_stop(&self->vsrc, self->err, sizeof(self->err)))
		TH_LOG("%s", self->err);
	expect_status(_metadata, &self->vsrc, "paused");
	ASSERT_EQ(0, qemu_vm_cont(&self->vsrc, self->err, sizeof(self->err)))
		TH_LOG("%s", self->err);
	ASSERT_NE(0, self->vsrc.qmp.resume_event_us);	/* cont's RESUME event was seen */
	expect_status(_metadata, &self->vsrc, "running");
	/* The destination waits for its state and will not start by itself. */
	expect_status(_metadata, &self->vdst, "inmigrate");
}

TEST_F(qemu, state_moves_without_the_shared_ram_and_the_destination_resumes_only_on_cont)
{
	struct buf b = { 0 };
	uint64_t saved, loaded, est;
	uint64_t ram = GUEST_MB << 20;

	est = qemu_vm_state_estimate(&self->vsrc, &ram, 1);
	ASSERT_EQ(0, qemu_vm_stop(&self->vsrc, self->err, sizeof(self->err)))
		TH_LOG("%s", self->err);
	ASSERT_EQ(0, qemu_vm_save_state(&self->vsrc, buf_sink, &b, &saved, self->err,
					sizeof(self->err))) TH_LOG("%s", self->err);
	ASSERT_EQ(b.len, saved);
	/* CPUs, devices, BIOS and option ROMs; the 64 MiB of guest RAM left out. */
	ASSERT_GT(saved, 4096);
	ASSERT_LT(saved, 8u << 20);
	ASSERT_LT(est, ram);
	ASSERT_GT(est + (1 << 20), saved) TH_LOG("estimate %llu, saved %llu",
						 (unsigned long long)est,
						 (unsigned long long)saved);
	expect_status(_metadata, &self->vsrc, "postmigrate");

	copy_ram(_metadata, self);
	ASSERT_EQ(0, qemu_vm_load_state(&self->vdst, buf_source, &b, &loaded, self->err,
					sizeof(self->err))) TH_LOG("%s", self->err);
	ASSERT_EQ(saved, loaded);
	expect_status(_metadata, &self->vdst, "paused");
	ASSERT_EQ(0, qemu_vm_cont(&self->vdst, self->err, sizeof(self->err)))
		TH_LOG("%s", self->err);
	expect_status(_metadata, &self->vdst, "running");
	expect_status(_metadata, &self->vsrc, "postmigrate");
	free(b.p);
}


static void expect_migrate_status(struct __test_metadata *_metadata, struct qemu_vm *vm,
				  const char *want)
{
	char reply[2048], st[32];

	ASSERT_EQ(0, qmp_cmd(&vm->qmp, "{\"execute\":\"query-migrate\"}", -1, 5000, reply,
			     sizeof(reply))) TH_LOG("%s", reply);
	ASSERT_EQ(0, qmp_json_str(reply, "status", st, sizeof(st))) TH_LOG("%s", reply);
	ASSERT_STREQ(want, st);
}

/*
 * The switchover stop of a running guest is QEMU's own migration's: its
 * setup and the RAM blocks that are not shared go while the guest runs,
 * QEMU stops the vCPUs (its STOP event comes after "migrate") and waits in
 * pre-switchover; the save continues that migration and the destination
 * loads the whole of it.
 */
TEST_F(qemu, a_running_guest_stops_in_qemus_own_migration_and_its_state_moves_whole)
{
	uint64_t t0_us = realtime_us(), ran, saved, loaded;
	struct buf b = { 0 };
	size_t early;

	expect_status(_metadata, &self->vsrc, "running");
	ASSERT_EQ(0, qemu_vm_stop_migrating(&self->vsrc, &ran, self->err, sizeof(self->err)))
		TH_LOG("%s", self->err);
	expect_migrate_status(_metadata, &self->vsrc, "pre-switchover");
	expect_status(_metadata, &self->vsrc, "finish-migrate");
	ASSERT_GE(self->vsrc.qmp.stop_event_us, t0_us);	/* QEMU stopped it, after we asked */
	ASSERT_STREQ("pre-switchover", self->vsrc.qmp.mig_status);	/* its MIGRATION event */
	/* what QEMU flushed of its header and setup while the guest ran (it may hold them) */
	early = self->vsrc.early_len;
	ASSERT_EQ(0, qemu_vm_save_state(&self->vsrc, buf_sink, &b, &saved, self->err,
					sizeof(self->err))) TH_LOG("%s", self->err);
	ASSERT_EQ(b.len, saved);
	ASSERT_GT(saved, early);	/* then CPUs and devices */
	ASSERT_EQ(0, memcmp(b.p, "QEVM", 4));	/* the stream whole, from its header */
	expect_status(_metadata, &self->vsrc, "postmigrate");
	copy_ram(_metadata, self);
	ASSERT_EQ(0, qemu_vm_load_state(&self->vdst, buf_source, &b, &loaded, self->err,
					sizeof(self->err))) TH_LOG("%s", self->err);
	ASSERT_EQ(saved, loaded);
	ASSERT_EQ(0, qemu_vm_cont(&self->vdst, self->err, sizeof(self->err)))
		TH_LOG("%s", self->err);
	expect_status(_metadata, &self->vdst, "running");
	expect_status(_metadata, &self->vsrc, "postmigrate");
	free(b.p);
}

/*
 * The save run ahead (while the helper sends the last pages): QEMU completes
 * at once, the whole stream is kept, and the device save only hands it on.
 */
TEST_F(qemu, a_save_finished_ahead_is_kept_whole_and_handed_on_later)
{
	uint64_t ran, saved, loaded;
	struct buf b = { 0 };
	size_t whole;

	ASSERT_EQ(0, qemu_vm_stop_migrating(&self->vsrc, &ran, self->err, sizeof(self->err)))
		TH_LOG("%s", self->err);
	/* The destination's incoming migration waits on its pipe meanwhile. */
	ASSERT_EQ(0, qemu_vm_load_begin(&self->vdst, self->err, sizeof(self->err)))
		TH_LOG("%s", self->err);
	ASSERT_GE(self->vdst.load_fd, 0);
	ASSERT_EQ(0, qemu_vm_finish_save(&self->vsrc, self->err, sizeof(self->err)))
		TH_LOG("%s", self->err);
	expect_migrate_status(_metadata, &self->vsrc, "completed");
	expect_status(_metadata, &self->vsrc, "postmigrate");
	ASSERT_TRUE(self->vsrc.saved);
	whole = self->vsrc.early_len;
	ASSERT_EQ(0, qemu_vm_save_state(&self->vsrc, buf_sink, &b, &saved, self->err,
					sizeof(self->err))) TH_LOG("%s", self->err);
	ASSERT_EQ(whole, saved);
	ASSERT_EQ(b.len, saved);
	expect_status(_metadata, &self->vdst, "inmigrate");
	copy_ram(_metadata, self);
	ASSERT_EQ(0, qemu_vm_load_state(&self->vdst, buf_source, &b, &loaded, self->err,
					sizeof(self->err))) TH_LOG("%s", self->err);
	ASSERT_EQ(saved, loaded);
	ASSERT_EQ(-1, self->vdst.load_fd);
	ASSERT_EQ(0, qemu_vm_cont(&self->vdst, self->err, sizeof(self->err)))
		TH_LOG("%s", self->err);
	expect_status(_metadata, &self->vdst, "running");
	/* and the source, told to resume (the helper failed later), runs again */
	ASSERT_EQ(0, qemu_vm_cont(&self->vsrc, self->err, sizeof(self->err)))
		TH_LOG("%s", self->err);
	free(b.p);
}

/* A switchover abandoned after that stop: the guest runs on at the source. */
TEST_F(qemu, an_abandoned_switchover_stop_is_cancelled_and_the_guest_runs_on)
{
	uint64_t ran;

	ASSERT_EQ(0, qemu_vm_stop_migrating(&self->vsrc, &ran, self->err, sizeof(self->err)))
		TH_LOG("%s", self->err);
	expect_status(_metadata, &self->vsrc, "finish-migrate");
	ASSERT_EQ(0, qemu_vm_cancel_pending(&self->vsrc, self->err, sizeof(self->err)))
		TH_LOG("%s", self->err);
	ASSERT_EQ(-1, self->vsrc.pending_fd);
	expect_migrate_status(_metadata, &self->vsrc, "cancelled");
	ASSERT_EQ(0, qemu_vm_cont(&self->vsrc, self->err, sizeof(self->err)))
		TH_LOG("%s", self->err);
	expect_status(_metadata, &self->vsrc, "running");
	/* and a later switchover still works */
	ASSERT_EQ(0, qemu_vm_stop_migrating(&self->vsrc, &ran, self->err, sizeof(self->err)))
		TH_LOG("%s", self->err);
	expect_migrate_status(_metadata, &self->vsrc, "pre-switchover");
}

TEST_F(qemu, the_shared_ram_file_is_found_in_qemus_memory_map)
{
	int other = open(self->dir, O_RDONLY | O_DIRECTORY);

	ASSERT_EQ(0, qemu_vm_maps_shared(&self->vsrc, self->src.ram_fd, GUEST_MB << 20,
					 self->err, sizeof(self->err))) TH_LOG("%s", self->err);
	/* The destination's file is not the source QEMU's RAM. */
	ASSERT_EQ(-ENXIO, qemu_vm_maps_shared(&self->vsrc, self->dst.ram_fd, GUEST_MB << 20,
					      self->err, sizeof(self->err)));
	ASSERT_NE(NULL, strstr(self->err, "share=on"));
	close(other);
}

TEST_F(qemu, a_refused_qmp_command_names_the_step_and_qemus_reason)
{
	struct buf b = { .p = "x", .len = 1 };
	uint64_t n;
	struct qemu_vm again;

	/* migrate-incoming on a QEMU that was not started with -incoming defer. */
	ASSERT_EQ(-EREMOTEIO, qemu_vm_load_state(&self->vsrc, buf_source, &b, &n, self->err,
						 sizeof(self->err)));
	TH_LOG("%s", self->err);
	ASSERT_NE(NULL, strstr(self->err, "device state load: migrate-incoming: QEMU refused "
				"it: GenericError"));
	expect_status(_metadata, &self->vsrc, "running");
	/* A running guest offered as a destination is refused before anything. */
	qemu_vm_close(&self->vsrc);	/* QEMU serves one QMP client at a time */
	self->src_open = false;
	ASSERT_EQ(-EINVAL, qemu_vm_open(&again, self->src.qmp, true, 30000, self->err,
					sizeof(self->err)));
	ASSERT_NE(NULL, strstr(self->err, "-incoming defer"));
	qemu_vm_close(&again);
}

TEST_F(qemu, a_destination_qemu_killed_during_the_load_fails_it_naming_the_step)
{
	struct buf b = { 0 };
	uint64_t saved, loaded;
	int r;

	ASSERT_EQ(0, qemu_vm_stop(&self->vsrc, self->err, sizeof(self->err)));
	ASSERT_EQ(0, qemu_vm_save_state(&self->vsrc, buf_sink, &b, &saved, self->err,
					sizeof(self->err))) TH_LOG("%s", self->err);
	b.kill_on_read = &self->dst;
	r = qemu_vm_load_state(&self->vdst, buf_source, &b, &loaded, self->err,
			       sizeof(self->err));
	TH_LOG("%s", self->err);
	ASSERT_NE(0, r);
	ASSERT_NE(NULL, strstr(self->err, "device state load: QEMU exited during "
				"migrate-incoming"));
	ASSERT_FALSE(qemu_vm_alive(&self->vdst));
	/* The source can be continued: its guest runs on. */
	ASSERT_EQ(0, qemu_vm_cont(&self->vsrc, self->err, sizeof(self->err)))
		TH_LOG("%s", self->err);
	expect_status(_metadata, &self->vsrc, "running");
	free(b.p);
}

TEST_F(qemu, a_state_the_destination_refuses_fails_the_load_naming_the_step)
{
	static char junk[] = "not a QEMU migration stream";
	struct buf b = { .p = junk, .len = sizeof(junk) };
	uint64_t loaded;

	ASSERT_NE(0, qemu_vm_load_state(&self->vdst, buf_source, &b, &loaded, self->err,
					sizeof(self->err)));
	TH_LOG("%s", self->err);
	ASSERT_NE(NULL, strstr(self->err, "device state load: QEMU exited during "
				"migrate-incoming"));
	/* The source was never touched. */
	expect_status(_metadata, &self->vsrc, "running");
}

TEST(qmp_json_reads_keys_not_text_inside_strings)
{
	char out[64];

	ASSERT_EQ(0, qmp_json_str("{\"return\": {\"status\": \"running\", \"singlestep\": "
				  "false}}", "status", out, sizeof(out)));
	ASSERT_STREQ("running", out);
	ASSERT_EQ(0, qmp_json_str("{\"error\": {\"class\": \"GenericError\", \"desc\": "
				  "\"no \\\"status\\\": here\"}}", "desc", out, sizeof(out)));
	ASSERT_STREQ("no \"status\": here", out);
	ASSERT_EQ(-ENOENT, qmp_json_str("{\"error\": {\"desc\": \"\\\"status\\\": \\\"x\\\"\"}}",
					"status", out, sizeof(out)));
}

TEST_HARNESS_MAIN
