// SPDX-License-Identifier: GPL-2.0
/* copyup sensor: one event per overlayfs copy-up of one file or directory, with
 * how long it took, how many bytes it moved and which syscall caused it.
 *
 * The unit of work is ovl_copy_up_one(parent, dentry, flags): ovl_copy_up_flags()
 * calls it once per not-yet-copied ancestor, then for the file itself. Its entry
 * hook starts a per-thread record in `inflight`; nested hooks fill it in:
 *
 *   ovl_copy_up_start   returns 0 when this thread does the copy-up (> 0 when
 *                       another thread raced it and it was already done)
 *   ovl_copy_up_data,   receive the copy-up context (struct ovl_copy_up_ctx):
 *   ovl_copy_up_metadata its metacopy and index decisions. Not a place to read
 *                       the lower inode: the compiler inlines ovl_copy_up_data
 *                       into the main path, so a copy-up that fails while
 *                       copying data (ENOSPC) reaches neither hook.
 *   do_splice_direct,   the data copy itself (vmlinux functions, filtered by
 *   do_clone_file_range the in-flight thread): bytes actually moved
 *   or vfs_clone_file_range
 *
 * and the exit hook emits the event when the copy-up ran or failed.
 *
 * Kernel differences, all in the overlay module (whose BTF is module BTF:
 * /sys/kernel/btf/overlay; fentry targets and CO-RE relocations resolve there):
 *   - ovl_copy_up_one, ovl_copy_up_start, ovl_copy_up_data and
 *     ovl_copy_up_metadata have the same prototypes on 6.1 and 6.12.
 *   - struct ovl_copy_up_ctx moved its fields between 6.1 and 6.12 (6.12 added
 *     origin_fh, metacopy_digest, metadata_fsync): read through the CO-RE
 *     flavour below, never by offset.
 *   - The lower dentry of an overlay inode: up to 6.4 in ovl_inode.lowerpath;
 *     from 6.5 ("ovl: move ovl_entry into ovl_inode") in ovl_inode.oe, an
 *     ovl_entry whose __lowerstack[0] is the topmost lower layer. lower_dentry()
 *     picks the layout with bpf_core_field_exists.
 *   - ovl_copy_up_file gained a `datasync` argument in 6.12; it is deliberately
 *     not hooked (the splice/clone hooks count bytes on both).
 *   - do_splice_direct returns long on 6.1 and ssize_t on 6.12: same width.
 *   - A reflink copy-up: 6.1's ovl_copy_up_file calls do_clone_file_range (which
 *     vfs_clone_file_range also calls there); 6.12 calls vfs_clone_file_range and
 *     has no do_clone_file_range. Both hooks are here, same prototype; the tracer
 *     keeps the do_ one when the kernel's BTF has it, else the vfs_ one
 *     (tracer/copyup.go), so a clone is counted once.
 *
 *   fentry: fentry/fexit on the functions above
 *   kprobe: kprobe/kretprobe on the same functions
 */
#include "common.h"
#include "arch.h"

/* Set by userspace before load (tracer/moduletypes.go): the kernel has no BTF
 * for the overlay module (5.10: module BTF is 5.11+), so nothing may read an
 * overlay type. The programs then read only vmlinux types (dentry, inode,
 * file): the path, the file type (from the overlay inode, whose mode mirrors
 * the lower one), duration, result, bytes copied and the trigger; the lower
 * inode's size and link count and the copy-up context (metacopy, index) are
 * unknown, reported as absent (have_lower = have_ctx = 0), not as zero. The
 * branches reading overlay types are dead code the verifier skips, and the
 * ovl_copy_up_data/metadata hooks are not loaded. */
const volatile bool vmlinux_only = false;

#define PATH_DEPTH 8
#define NAME_LEN 64
#define PF_IO_WORKER 0x00000010
#define PF_KTHREAD 0x00200000

/* Only the fields we read; CO-RE finds them in whichever layout the kernel has. */
struct ovl_copy_up_ctx___copyup {
	bool indexed;
	bool metacopy;
} __attribute__((preserve_access_index));

struct ovl_path___copyup {
	struct dentry *dentry;
} __attribute__((preserve_access_index));

struct ovl_entry___copyup {
	unsigned int __numlower;
	struct ovl_path___copyup __lowerstack[];
} __attribute__((preserve_access_index));

struct ovl_inode___copyup {
	struct inode vfs_inode;
	struct ovl_path___copyup lowerpath; /* up to 6.4 */
	struct ovl_entry___copyup *oe;      /* 6.5 and later */
} __attribute__((preserve_access_index));

struct copy_up_event {
	struct event_header hdr;
	__u64 duration_ns;
	__u64 size;       /* lower file size (i_size) */
	__u64 bytes;      /* bytes spliced or cloned into the upper file */
	__s64 syscall_nr; /* x86-64 number of the current syscall; -1 kernel thread, -2 io_uring worker */
	__s32 ret;        /* 0 or -errno */
	__u32 mode;       /* lower i_mode (file type and permissions) */
	__u32 nlink;      /* lower i_nlink */
	__u32 flags;      /* ovl_copy_up_one flags: the open flags that asked for it */
	__u8 have_lower;  /* the lower inode was found: size, mode and nlink are valid */
	__u8 metacopy;    /* metadata-only copy-up (mount option metacopy=on) */
	__u8 indexed;     /* hard links preserved through the index (index=on) */
	__u8 depth;       /* path components in names, leaf first */
	__u8 truncated;   /* the path has more components than PATH_DEPTH */
	__u8 have_mode;   /* mode's file type is valid (have_lower, or the overlay inode's) */
	__u8 have_ctx;    /* metacopy and indexed are valid */
	__u8 _pad;
	char names[PATH_DEPTH][NAME_LEN];
};
/* Referenced so that bpf2go can generate the Go mirror of the record. */
const struct copy_up_event *unused_copy_up_event __attribute__((unused));

struct inflight {
	__u64 start_ns;
	__u64 dentry; /* struct dentry * of the overlay file: kretprobes lose the argument */
	__u64 size;
	__u64 bytes;
	__s64 syscall_nr;
	__u32 mode;
	__u32 nlink;
	__u32 flags;
	__u8 started;
	__u8 have_lower;
	__u8 have_ctx;
	__u8 metacopy;
	__u8 indexed;
	__u8 have_mode;
};

/* LRU so that an entry whose exit hook never ran (detach mid-call) cannot pin a slot. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct inflight);
} inflight SEC(".maps");

/* Entries in `inflight`, i.e. copy-ups running on the host. The splice and
 * clone hooks run on every sendfile, splice and copy_file_range of the host;
 * while no copy-up runs (nearly always) they return on this load instead of a
 * hash lookup. Only an insert increments it and only a delete that removed an
 * entry decrements it, so it never drops below the entries present; an LRU
 * eviction leaves it one too high, which costs only the shortcut. */
__s64 copyups_inflight = 0;

static __always_inline __u32 current_tid(void)
{
	return (__u32)bpf_get_current_pid_tgid();
}

/* The syscall the current thread is in, from its user registers (arch.h); -3
 * when they cannot be found. */
static __always_inline __s64 current_syscall(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u32 pf = BPF_CORE_READ(task, flags);
	if (pf & PF_KTHREAD)
		return -1;
	if (pf & PF_IO_WORKER)
		return -2;
	struct pt_regs *regs;
	/* bpf_task_pt_regs is 5.15+; before it, where the kernel put them. */
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_task_pt_regs)) {
		regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	} else {
		regs = arch_stack_user_regs(task);
		if (!regs)
			return -3;
	}
	return (__s64)ARCH_SYSCALL_NR_CORE(regs);
}

/* The topmost lower dentry of an overlay dentry: what is being copied up. */
static __always_inline struct dentry *lower_dentry(struct dentry *dentry)
{
	struct inode *inode = BPF_CORE_READ(dentry, d_inode);
	if (!inode)
		return NULL;
	struct ovl_inode___copyup *oi =
		(void *)inode - bpf_core_field_offset(struct ovl_inode___copyup, vfs_inode);
	if (bpf_core_field_exists(oi->oe)) {
		/* 6.5+: ovl_inode.oe->__lowerstack[0].dentry. Offsets, not an array
		 * relocation: __lowerstack is a flexible array. */
		struct ovl_entry___copyup *oe = BPF_CORE_READ(oi, oe);
		if (!oe || BPF_CORE_READ(oe, __numlower) == 0)
			return NULL;
		struct dentry *d = NULL;
		bpf_probe_read_kernel(&d, sizeof(d),
				      (void *)oe + bpf_core_field_offset(struct ovl_entry___copyup, __lowerstack) +
					      bpf_core_field_offset(struct ovl_path___copyup, dentry));
		return d;
	}
	/* up to 6.4: ovl_inode.lowerpath.dentry */
	return BPF_CORE_READ(oi, lowerpath.dentry);
}

static __always_inline void begin(struct dentry *dentry, int flags)
{
	struct inflight in = {
		.start_ns = bpf_ktime_get_ns(),
		.dentry = (__u64)dentry,
		.syscall_nr = current_syscall(),
		.flags = flags,
	};
	if (vmlinux_only) {
		struct inode *inode = BPF_CORE_READ(dentry, d_inode);
		if (inode) {
			in.mode = BPF_CORE_READ(inode, i_mode);
			in.have_mode = 1;
		}
	} else {
		struct inode *lower = BPF_CORE_READ(lower_dentry(dentry), d_inode);
		if (lower) {
			in.size = BPF_CORE_READ(lower, i_size);
			in.nlink = BPF_CORE_READ(lower, __i_nlink);
			in.mode = BPF_CORE_READ(lower, i_mode);
			in.have_lower = in.have_mode = 1;
		}
	}
	__u32 tid = current_tid();
	if (!bpf_map_update_elem(&inflight, &tid, &in, BPF_NOEXIST)) {
		__sync_fetch_and_add(&copyups_inflight, 1);
		return;
	}
	/* A stale entry of this thread (its exit hook was missed): already counted. */
	bpf_map_update_elem(&inflight, &tid, &in, BPF_ANY);
}

static __always_inline void started(int ret)
{
	__u32 tid = current_tid();
	struct inflight *in = bpf_map_lookup_elem(&inflight, &tid);
	if (in && ret == 0)
		in->started = 1;
}

static __always_inline void read_ctx(struct ovl_copy_up_ctx___copyup *c)
{
	__u32 tid = current_tid();
	struct inflight *in = bpf_map_lookup_elem(&inflight, &tid);
	if (!in || in->have_ctx)
		return;
	in->metacopy = BPF_CORE_READ(c, metacopy);
	in->indexed = BPF_CORE_READ(c, indexed);
	in->have_ctx = 1;
}

static __always_inline void add_bytes(long n)
{
	if (n <= 0 || !*(volatile __s64 *)&copyups_inflight)
		return;
	__u32 tid = current_tid();
	struct inflight *in = bpf_map_lookup_elem(&inflight, &tid);
	if (in)
		in->bytes += n;
}

static __always_inline void finish(int ret)
{
	__u32 tid = current_tid();
	struct inflight *in = bpf_map_lookup_elem(&inflight, &tid);
	if (!in)
		return;
	/* Nothing to report when another thread had already copied it up. */
	if (!in->started && ret == 0)
		goto out;
	struct copy_up_event *e = reserve_event(sizeof(*e));
	if (!e)
		goto out;
	fill_header(&e->hdr, EVENT_COPY_UP);
	e->duration_ns = bpf_ktime_get_ns() - in->start_ns;
	e->size = in->size;
	e->bytes = in->bytes;
	e->syscall_nr = in->syscall_nr;
	e->ret = ret;
	e->mode = in->mode;
	e->nlink = in->nlink;
	e->flags = in->flags;
	e->have_lower = in->have_lower;
	e->metacopy = in->metacopy;
	e->indexed = in->indexed;
	e->have_mode = in->have_mode;
	e->have_ctx = in->have_ctx;
	e->truncated = 0;
	e->_pad = 0;

	/* The path inside the overlay, leaf first, up to the overlay's root. */
	struct dentry *d = (struct dentry *)in->dentry;
	__u8 depth = 0;
	for (int i = 0; i < PATH_DEPTH; i++) {
		struct dentry *parent = BPF_CORE_READ(d, d_parent);
		if (!d || parent == d)
			break;
		bpf_probe_read_kernel_str(e->names[i], NAME_LEN, BPF_CORE_READ(d, d_name.name));
		depth++;
		d = parent;
	}
	if (depth == PATH_DEPTH && d && BPF_CORE_READ(d, d_parent) != d)
		e->truncated = 1;
	e->depth = depth;
	submit_event(e);
out:
	/* Every way out of a copy-up (done, failed, or done by another thread
	 * first) passes here. */
	if (!bpf_map_delete_elem(&inflight, &tid))
		__sync_fetch_and_add(&copyups_inflight, -1);
}

/* fentry mode */
SEC("fentry/ovl_copy_up_one")
int BPF_PROG(copy_up_fentry, struct dentry *parent, struct dentry *dentry, int flags)
{
	begin(dentry, flags);
	return 0;
}

SEC("fexit/ovl_copy_up_one")
int BPF_PROG(copy_up_fexit, struct dentry *parent, struct dentry *dentry, int flags, int ret)
{
	finish(ret);
	return 0;
}

SEC("fexit/ovl_copy_up_start")
int BPF_PROG(copy_up_start_fexit, struct dentry *dentry, int flags, int ret)
{
	started(ret);
	return 0;
}

SEC("fentry/ovl_copy_up_data")
int BPF_PROG(copy_up_data_fentry, struct ovl_copy_up_ctx___copyup *c)
{
	read_ctx(c);
	return 0;
}

SEC("fentry/ovl_copy_up_metadata")
int BPF_PROG(copy_up_metadata_fentry, struct ovl_copy_up_ctx___copyup *c)
{
	read_ctx(c);
	return 0;
}

SEC("fexit/do_splice_direct")
int BPF_PROG(copy_up_splice_fexit, struct file *in, loff_t *ppos, struct file *out, loff_t *opos,
	     size_t len, unsigned int flags, long ret)
{
	add_bytes(ret);
	return 0;
}

SEC("fexit/vfs_clone_file_range")
int BPF_PROG(copy_up_clone_fexit, struct file *file_in, loff_t pos_in, struct file *file_out,
	     loff_t pos_out, loff_t len, unsigned int remap_flags, loff_t ret)
{
	add_bytes(ret);
	return 0;
}

SEC("fexit/do_clone_file_range")
int BPF_PROG(copy_up_do_clone_fexit, struct file *file_in, loff_t pos_in, struct file *file_out,
	     loff_t pos_out, loff_t len, unsigned int remap_flags, loff_t ret)
{
	add_bytes(ret);
	return 0;
}

/* kprobe mode */
SEC("kprobe/ovl_copy_up_one")
int BPF_KPROBE(copy_up_kprobe, struct dentry *parent, struct dentry *dentry, int flags)
{
	begin(dentry, flags);
	return 0;
}

SEC("kretprobe/ovl_copy_up_one")
int BPF_KRETPROBE(copy_up_kretprobe, int ret)
{
	finish(ret);
	return 0;
}

SEC("kretprobe/ovl_copy_up_start")
int BPF_KRETPROBE(copy_up_start_kretprobe, int ret)
{
	started(ret);
	return 0;
}

SEC("kprobe/ovl_copy_up_data")
int BPF_KPROBE(copy_up_data_kprobe, struct ovl_copy_up_ctx___copyup *c)
{
	read_ctx(c);
	return 0;
}

SEC("kprobe/ovl_copy_up_metadata")
int BPF_KPROBE(copy_up_metadata_kprobe, struct ovl_copy_up_ctx___copyup *c)
{
	read_ctx(c);
	return 0;
}

SEC("kretprobe/do_splice_direct")
int BPF_KRETPROBE(copy_up_splice_kretprobe, long ret)
{
	add_bytes(ret);
	return 0;
}

SEC("kretprobe/vfs_clone_file_range")
int BPF_KRETPROBE(copy_up_clone_kretprobe, loff_t ret)
{
	add_bytes(ret);
	return 0;
}

SEC("kretprobe/do_clone_file_range")
int BPF_KRETPROBE(copy_up_do_clone_kretprobe, loff_t ret)
{
	add_bytes(ret);
	return 0;
}
