// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Loading, unloading and describing vmig.ko, with libkmod.  libkmod's own
 * logging is silenced: the library reports through return values only.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libkmod.h>

#include "libvmig.h"

#define VMIG_MODULE_NAME	"vmig"
#define VMIG_SYSFS		"/sys/module/" VMIG_MODULE_NAME

static void module_log_quiet(void *data, int priority, const char *file, int line,
			     const char *fn, const char *format, va_list args)
{
	(void)data, (void)priority, (void)file, (void)line, (void)fn, (void)format;
	(void)args;
}

static struct kmod_ctx *module_ctx(void)
{
	struct kmod_ctx *ctx = kmod_new(NULL, NULL);

	if (ctx)
		kmod_set_log_fn(ctx, module_log_quiet, NULL);
	return ctx;
}

/* The module's state in the running kernel: KMOD_MODULE_*, or -ENOENT. */
static int module_state(struct kmod_ctx *ctx, struct kmod_module **modp)
{
	struct kmod_module *mod;
	int state, err;

	err = kmod_module_new_from_name(ctx, VMIG_MODULE_NAME, &mod);
	if (err < 0)
		return err;
	state = kmod_module_get_initstate(mod);
	if (modp)
		*modp = mod;
	else
		kmod_module_unref(mod);
	return state < 0 ? -ENOENT : state;
}

/* The installed module file for "vmig" (modules.dep), or NULL. */
static struct kmod_module *module_lookup(struct kmod_ctx *ctx)
{
	struct kmod_list *list = NULL, *l;
	struct kmod_module *found = NULL;

	if (kmod_module_new_from_lookup(ctx, VMIG_MODULE_NAME, &list) < 0)
		return NULL;
	kmod_list_foreach(l, list) {
		struct kmod_module *mod = kmod_module_get_module(l);

		if (!found && kmod_module_get_path(mod))
			found = mod;
		else
			kmod_module_unref(mod);
	}
	kmod_module_unref_list(list);
	return found;
}

int vmig_module_load(const char *ko_path, const char *options)
{
	struct kmod_module *mod = NULL;
	struct kmod_ctx *ctx;
	int err;

	ctx = module_ctx();
	if (!ctx)
		return -ENOMEM;
	err = module_state(ctx, NULL);
	if (err == KMOD_MODULE_LIVE || err == KMOD_MODULE_COMING ||
	    err == KMOD_MODULE_BUILTIN) {
		err = -EEXIST;
		goto out;
	}
	if (ko_path) {
		if (access(ko_path, R_OK)) {
			err = -errno;
			goto out;
		}
		err = kmod_module_new_from_path(ctx, ko_path, &mod);
		if (err < 0)
			goto out;
		err = kmod_module_insert_module(mod, 0, options);
	} else {
		mod = module_lookup(ctx);
		if (!mod) {
			err = -ENOENT;
			goto out;
		}
		/* As modprobe: dependencies first, options from modprobe.d. */
		err = kmod_module_probe_insert_module(mod, KMOD_PROBE_FAIL_ON_LOADED,
						      options, NULL, NULL, NULL);
		if (err > 0)	/* refused by a blacklist */
			err = -EPERM;
	}
out:
	if (mod)
		kmod_module_unref(mod);
	kmod_unref(ctx);
	return err < 0 ? err : 0;
}

int vmig_module_unload(void)
{
	struct kmod_module *mod = NULL;
	struct kmod_ctx *ctx;
	int err;

	ctx = module_ctx();
	if (!ctx)
		return -ENOMEM;
	err = module_state(ctx, &mod);
	if (err == KMOD_MODULE_BUILTIN)
		err = -EPERM;
	if (err >= 0)
		/* Never wait for users to go: fail at once if there are any. */
		err = kmod_module_remove_module(mod, KMOD_REMOVE_NOWAIT);
	if (err == -EAGAIN || err == -EWOULDBLOCK)
		err = -EBUSY;
	if (mod)
		kmod_module_unref(mod);
	kmod_unref(ctx);
	return err < 0 ? err : 0;
}

/* Read a one-line sysfs file without its newline; 0 or -errno. */
static int read_line(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0) {
		n = -errno;
		close(fd);
		return n;
	}
	close(fd);
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

int vmig_module_status(struct vmig_module_status *st)
{
	static const char *const states[] = {
		[KMOD_MODULE_BUILTIN] = "builtin",
		[KMOD_MODULE_LIVE] = "live",
		[KMOD_MODULE_COMING] = "coming",
		[KMOD_MODULE_GOING] = "going",
	};
	struct kmod_module *mod = NULL, *inst;
	struct kmod_ctx *ctx;
	int state;

	memset(st, 0, sizeof(*st));
	ctx = module_ctx();
	if (!ctx)
		return -ENOMEM;
	state = module_state(ctx, &mod);
	if (state >= 0 && state < (int)(sizeof(states) / sizeof(states[0])) &&
	    states[state]) {
		st->loaded = state != KMOD_MODULE_GOING;
		snprintf(st->state, sizeof(st->state), "%s", states[state]);
		st->refcnt = kmod_module_get_refcnt(mod);
		read_line(VMIG_SYSFS "/version", st->version, sizeof(st->version));
	}
	inst = module_lookup(ctx);
	if (inst) {
		snprintf(st->installed, sizeof(st->installed), "%s",
			 kmod_module_get_path(inst));
		kmod_module_unref(inst);
	}
	if (mod)
		kmod_module_unref(mod);
	kmod_unref(ctx);
	return 0;
}

int vmig_module_params(int (*cb)(const char *name, const char *value, void *arg),
		       void *arg)
{
	char path[512], value[256];
	struct dirent **names;
	int i, n, err = 0;

	n = scandir(VMIG_SYSFS "/parameters", &names, NULL, alphasort);
	if (n < 0)
		return -errno;
	for (i = 0; i < n; i++) {
		if (!err && names[i]->d_name[0] != '.') {
			snprintf(path, sizeof(path), VMIG_SYSFS "/parameters/%s",
				 names[i]->d_name);
			/* Skip write-only or vanished ones. */
			if (!read_line(path, value, sizeof(value)))
				err = cb(names[i]->d_name, value, arg);
		}
		free(names[i]);
	}
	free(names);
	return err;
}
