// SPDX-License-Identifier: GPL-2.0
/*
 * vmig: vmigfs - regions by path.
 *
 * A VMM that takes guest RAM as a file (QEMU's memory-backend-file with
 * mem-path=, Cloud Hypervisor's memory zones) opens a path; it cannot be
 * handed an fd from VMIG_CREATE_REGION.  vmigfs is a small filesystem,
 * mounted like tmpfs ("mount -t vmigfs none /run/vmig"), whose regular
 * files are regions:
 *
 *  - creating a file makes an empty inode; the first truncate to a
 *    non-zero, page-aligned size under the module's cap makes the region
 *    (vmig_region_new).  The size never changes afterwards: shrinking,
 *    growing, O_TRUNC of a sized file fail with -EPERM, as on a sealed
 *    memfd;
 *  - every open of the file is a region fd: mmap, the region ioctls,
 *    read()/poll() of postcopy requests, all through the same file
 *    operations as an anonymous region (region.c), which find the region
 *    in the inode's i_private.  Who may open it is the ordinary VFS
 *    permission check on the file's mode, owner and group;
 *  - the region lives as long as its inode: unlink removes the name, and
 *    the region is freed from ->evict_inode once the last open file and
 *    the last mapping (which holds a file) are gone, whichever comes last.
 *
 * Why a filesystem rather than names that /dev/vmig hands out, or files
 * reopened through /proc/PID/fd: a VMM needs nothing but open(), the
 * permissions are the ones every operator knows (chmod/chown, directory
 * permissions, mount namespaces for containers), the namespace is per
 * mount like tmpfs's, and the region's inode is the file's inode, so
 * every mapper of the file maps the same address_space and dirty logging,
 * postcopy waits and discards hold for all of them without any new code
 * on those paths.
 *
 * What QEMU 7.2 does with mem-path (softmmu/physmem.c) and how it fares
 * here: open(O_RDWR), or O_CREAT|O_EXCL when missing, or mkstemp() +
 * unlink() in a directory; fstat() and lseek(SEEK_END) for the size
 * (i_size); fstatfs() for the page size (not hugetlbfs: PAGE_SIZE);
 * ftruncate() only when the size is 0; mmap(MAP_SHARED) at a fixed
 * address; fallocate(PUNCH_HOLE | KEEP_SIZE) to discard, which is
 * VMIG_DISCARD; madvise() (DONTFORK, HUGEPAGE, DONTDUMP) acts on the VMA.
 *
 * The mount pins the module (.owner), as every open file does, so the
 * module cannot unload while a vmigfs is mounted.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/dcache.h>
#include <linux/falloc.h>
#include <linux/fs_context.h>
#include <linux/fs_parser.h>
#include <linux/module.h>
#include <linux/namei.h>
#include <linux/pagemap.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <net/genetlink.h>

#include "compat.h"
#include "vmig.h"

static struct file_system_type vmigfs_type;

static void vmigfs_touch(struct inode *inode)
{
	vmig_inode_touch(inode);
}

/*
 * Size the region behind @inode, inode_lock held (by the truncate): the
 * first non-zero size makes the region; after that only the same size is
 * accepted.  Zero on a file without a region changes nothing (O_TRUNC).
 */
static int vmigfs_set_size(struct inode *inode, loff_t size)
{
	struct vmig_region *r = inode->i_private;

	if (r)
		return size == r->size ? 0 : -EPERM;
	if (!size)
		return 0;
	if (size < 0 || !PAGE_ALIGNED(size))
		return -EINVAL;
	if (size > vmig_max_region_bytes)
		return -EFBIG;
	r = vmig_region_new(inode, size, 0);
	return PTR_ERR_OR_ZERO(r);
}

static int vmigfs_setattr(struct vmig_idmap *idmap, struct dentry *dentry,
			  struct iattr *attr)
{
	struct inode *inode = d_inode(dentry);
	int err;

	err = setattr_prepare(idmap, dentry, attr);
	if (err)
		return err;
	if (attr->ia_valid & ATTR_SIZE) {
		err = vmigfs_set_size(inode, attr->ia_size);
		if (err)
			return err;
	}
	setattr_copy(idmap, inode, attr);
	return 0;
}

static const struct inode_operations vmigfs_file_iops = {
	.setattr	= vmigfs_setattr,
	.getattr	= simple_getattr,
};

/*
 * PUNCH_HOLE is VMIG_DISCARD (page aligned; -EBUSY while dirty logging is
 * on).  Allocation inside the region succeeds at once: the whole size was
 * reserved under the cap when the region was made, and pages come on
 * first touch.  The size itself never changes.
 */
static long vmigfs_fallocate(struct file *file, int mode, loff_t offset,
			     loff_t len)
{
	struct vmig_region *r = vmig_file_region(file);
	u64 discarded;

	if (!r)
		return -ENODEV;
	if (mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) {
		if (!PAGE_ALIGNED(offset) || !PAGE_ALIGNED(len))
			return -EINVAL;
		if (offset >= r->size)
			return 0;
		len = min_t(u64, len, r->size - offset);
		return vmig_postcopy_discard_range(r, offset, len, &discarded);
	}
	if (mode & ~FALLOC_FL_KEEP_SIZE)
		return -EOPNOTSUPP;
	if (offset + len > r->size && !(mode & FALLOC_FL_KEEP_SIZE))
		return -EPERM;
	return 0;
}

static const struct file_operations vmigfs_file_fops = {
	.owner		= THIS_MODULE,
	.flush		= vmig_region_flush,
	.mmap		= vmig_region_mmap,
	.unlocked_ioctl	= vmig_region_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.read		= vmig_region_read,
	.poll		= vmig_region_poll,
	.llseek		= generic_file_llseek,
	.fallocate	= vmigfs_fallocate,
};

static struct inode *vmigfs_new_inode(struct super_block *sb)
{
	struct inode *inode = new_inode(sb);

	if (!inode)
		return NULL;
	inode->i_ino = get_next_ino();
	vmigfs_touch(inode);
	return inode;
}

static int vmigfs_create(struct vmig_idmap *idmap, struct inode *dir,
			 struct dentry *dentry, umode_t mode, bool excl)
{
	struct inode *inode = vmigfs_new_inode(dir->i_sb);

	if (!inode)
		return -ENOMEM;
	inode_init_owner(idmap, inode, dir, S_IFREG | (mode & ~S_IFMT));
	inode->i_op = &vmigfs_file_iops;
	inode->i_fop = &vmigfs_file_fops;
	d_instantiate(dentry, inode);
	dget(dentry);	/* pinned until unlink, as on ramfs */
	vmigfs_touch(dir);
	return 0;
}

static const struct inode_operations vmigfs_dir_iops = {
	.create		= vmigfs_create,
	.lookup		= simple_lookup,
	.unlink		= simple_unlink,
	.rename		= simple_rename,
};

/*
 * The inode's last reference is gone: no file, no mapping, no name.  The
 * region goes with it.
 */
static void vmigfs_evict_inode(struct inode *inode)
{
	struct vmig_region *r = inode->i_private;

	truncate_inode_pages_final(&inode->i_data);
	clear_inode(inode);
	if (r) {
		inode->i_private = NULL;
		vmig_region_destroy(r);
	}
}

/* The root's mode and owner as mount options, as they are now. */
static int vmigfs_show_options(struct seq_file *m, struct dentry *root)
{
	struct inode *inode = d_inode(root);

	if ((inode->i_mode & 07777) != 0755)
		seq_printf(m, ",mode=%o", inode->i_mode & 07777);
	if (!uid_eq(inode->i_uid, GLOBAL_ROOT_UID))
		seq_printf(m, ",uid=%u", from_kuid_munged(&init_user_ns, inode->i_uid));
	if (!gid_eq(inode->i_gid, GLOBAL_ROOT_GID))
		seq_printf(m, ",gid=%u", from_kgid_munged(&init_user_ns, inode->i_gid));
	return 0;
}

static const struct super_operations vmigfs_sops = {
	.statfs		= simple_statfs,
	.show_options	= vmigfs_show_options,
	.drop_inode	= generic_delete_inode,
	.evict_inode	= vmigfs_evict_inode,
};

/* Mount options: the root directory's mode and owner, as tmpfs takes them. */
struct vmigfs_opts {
	umode_t mode;
	kuid_t uid;
	kgid_t gid;
};

enum { VMIGFS_OPT_MODE, VMIGFS_OPT_UID, VMIGFS_OPT_GID };

static const struct fs_parameter_spec vmigfs_params[] = {
	fsparam_u32oct("mode", VMIGFS_OPT_MODE),
	fsparam_u32("uid", VMIGFS_OPT_UID),
	fsparam_u32("gid", VMIGFS_OPT_GID),
	{}
};

static int vmigfs_parse_param(struct fs_context *fc, struct fs_parameter *param)
{
	struct vmigfs_opts *opts = fc->fs_private;
	struct fs_parse_result result;
	int opt;

	opt = fs_parse(fc, vmigfs_params, param, &result);
	if (opt < 0)
		return opt;
	switch (opt) {
	case VMIGFS_OPT_MODE:
		opts->mode = result.uint_32 & 07777;
		break;
	case VMIGFS_OPT_UID:
		opts->uid = make_kuid(current_user_ns(), result.uint_32);
		if (!uid_valid(opts->uid))
			return invalfc(fc, "uid %u has no mapping", result.uint_32);
		break;
	case VMIGFS_OPT_GID:
		opts->gid = make_kgid(current_user_ns(), result.uint_32);
		if (!gid_valid(opts->gid))
			return invalfc(fc, "gid %u has no mapping", result.uint_32);
		break;
	}
	return 0;
}

static int vmigfs_fill_super(struct super_block *sb, struct fs_context *fc)
{
	struct vmigfs_opts *opts = fc->fs_private;
	struct inode *root;

	sb->s_maxbytes = MAX_LFS_FILESIZE;
	sb->s_blocksize = PAGE_SIZE;
	sb->s_blocksize_bits = PAGE_SHIFT;
	sb->s_magic = VMIGFS_MAGIC;
	sb->s_op = &vmigfs_sops;
	sb->s_time_gran = 1;

	root = vmigfs_new_inode(sb);
	if (!root)
		return -ENOMEM;
	/* By default root's, 0755: only root makes regions. */
	root->i_mode = S_IFDIR | opts->mode;
	root->i_uid = opts->uid;
	root->i_gid = opts->gid;
	root->i_op = &vmigfs_dir_iops;
	root->i_fop = &simple_dir_operations;
	set_nlink(root, 2);
	sb->s_root = d_make_root(root);
	return sb->s_root ? 0 : -ENOMEM;
}

static int vmigfs_get_tree(struct fs_context *fc)
{
	/* Each mount is a namespace of its own, as with tmpfs. */
	return get_tree_nodev(fc, vmigfs_fill_super);
}

static void vmigfs_free_fc(struct fs_context *fc)
{
	kfree(fc->fs_private);
}

static const struct fs_context_operations vmigfs_context_ops = {
	.parse_param	= vmigfs_parse_param,
	.get_tree	= vmigfs_get_tree,
	.free		= vmigfs_free_fc,
};

static int vmigfs_init_fs_context(struct fs_context *fc)
{
	struct vmigfs_opts *opts = kzalloc(sizeof(*opts), GFP_KERNEL);

	if (!opts)
		return -ENOMEM;
	opts->mode = 0755;
	opts->uid = GLOBAL_ROOT_UID;
	opts->gid = GLOBAL_ROOT_GID;
	fc->fs_private = opts;
	fc->ops = &vmigfs_context_ops;
	return 0;
}

static struct file_system_type vmigfs_type = {
	.owner		 = THIS_MODULE,
	.name		 = "vmigfs",
	.init_fs_context = vmigfs_init_fs_context,
	.parameters	 = vmigfs_params,
	.kill_sb	 = kill_litter_super,
};

/* mount -t vmigfs loads an installed module by itself. */
MODULE_ALIAS_FS("vmigfs");

/**
 * vmig_regionfs_nl_put - add a path region's name to a netlink message
 * @skb:	the message
 * @r:		any region; anonymous ones add nothing
 *
 * VMIG_A_REGION_DEV is the vmigfs's device number (st_dev of its files)
 * and VMIG_A_REGION_NAME the file's path inside that filesystem, with
 * " (deleted)" once unlinked; no name once the inode is being freed.
 *
 * Called with vmig_regions_lock held (a dump), so it must not take a
 * reference to the dentry: dropping it could be the last reference, and
 * evicting the inode takes that lock.  The alias is read under RCU, which
 * keeps the dentry's memory (and its parents' names) while the path is
 * built; dentry_path_raw() copes with concurrent renames.
 *
 * Return: 0, or -EMSGSIZE when the message is full.
 */
int vmig_regionfs_nl_put(struct sk_buff *skb, struct vmig_region *r)
{
	struct inode *inode = r->inode;
	struct dentry *dentry;
	char *buf, *name = NULL;
	int err = 0;

	if (inode->i_sb->s_type != &vmigfs_type)
		return 0;
	if (nla_put_u32(skb, VMIG_A_REGION_DEV, new_encode_dev(inode->i_sb->s_dev)))
		return -EMSGSIZE;
	buf = kmalloc(PATH_MAX, GFP_KERNEL);
	if (!buf)
		return 0;	/* the name is best effort */
	rcu_read_lock();
	spin_lock(&inode->i_lock);
	dentry = hlist_empty(&inode->i_dentry) ? NULL :
		 hlist_entry(inode->i_dentry.first, struct dentry, d_u.d_alias);
	spin_unlock(&inode->i_lock);
	if (dentry) {
		name = dentry_path_raw(dentry, buf, PATH_MAX - 16);
		if (IS_ERR(name))
			name = NULL;
		else if (d_unlinked(dentry))
			strcat(name, " (deleted)");
	}
	rcu_read_unlock();
	if (name)
		err = nla_put_string(skb, VMIG_A_REGION_NAME, name);
	kfree(buf);
	return err ? -EMSGSIZE : 0;
}

int vmig_regionfs_init(void)
{
	return register_filesystem(&vmigfs_type);
}

void vmig_regionfs_exit(void)
{
	unregister_filesystem(&vmigfs_type);
}
