// SPDX-License-Identifier: GPL-2.0
/* rename sensor: rename(2), renameat(2) and renameat2(2) calls that fail with EXDEV.
 *
 * Each attach mode has an entry hook that copies the two paths into `inflight`
 * (keyed by thread) and an exit hook that emits an event only when the call
 * returned -EXDEV. Paths are copied at entry because in the fentry/kprobe modes the
 * kernel frees its `struct filename` copies before do_renameat2 returns.
 *
 *   fentry:     fentry/fexit on do_renameat2 (also sees io_uring renames)
 *   kprobe:     kprobe/kretprobe on do_renameat2
 *   tail_call:  tail-called by the latency sensor's tp_btf sys_enter/sys_exit
 *               programs for the same three syscalls (syscall_tail.h)
 *   tracepoint: syscalls/sys_{enter,exit}_rename{,at,at2}
 */
#include "common.h"
#include "syscall_tail.h"

#define PATH_LEN 256
#define EXDEV 18

struct rename_args {
	char old_path[PATH_LEN];
	char new_path[PATH_LEN];
	__u32 flags;
};

struct rename_event {
	struct event_header hdr;
	__s32 ret;
	__u32 flags;
	char old_path[PATH_LEN];
	char new_path[PATH_LEN];
};
/* Referenced so that bpf2go can generate the Go mirror of the record. */
const struct rename_event *unused_rename_event __attribute__((unused));


/* LRU so that an entry whose exit hook never ran (detach mid-call) cannot pin a slot. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct rename_args);
} inflight SEC(".maps");

/* rename_args is too large for the BPF stack; build it here before the map update. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rename_args);
} scratch SEC(".maps");

static __always_inline struct rename_args *scratch_args(__u32 flags)
{
	__u32 zero = 0;
	struct rename_args *a = bpf_map_lookup_elem(&scratch, &zero);
	if (a)
		a->flags = flags;
	return a;
}

static __always_inline void save_user(const char *oldp, const char *newp, __u32 flags)
{
	struct rename_args *a = scratch_args(flags);
	if (!a)
		return;
	bpf_probe_read_user_str(a->old_path, sizeof(a->old_path), oldp);
	bpf_probe_read_user_str(a->new_path, sizeof(a->new_path), newp);
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_update_elem(&inflight, &tid, a, BPF_ANY);
}

static __always_inline void save_kernel(struct filename *from, struct filename *to, __u32 flags)
{
	struct rename_args *a = scratch_args(flags);
	if (!a)
		return;
	bpf_probe_read_kernel_str(a->old_path, sizeof(a->old_path), BPF_CORE_READ(from, name));
	bpf_probe_read_kernel_str(a->new_path, sizeof(a->new_path), BPF_CORE_READ(to, name));
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_update_elem(&inflight, &tid, a, BPF_ANY);
}

static __always_inline void finish(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct rename_args *a = bpf_map_lookup_elem(&inflight, &tid);
	if (!a)
		return;
	if (ret == -EXDEV) {
		struct rename_event *e = reserve_event(sizeof(*e));
		if (e) {
			fill_header(&e->hdr, EVENT_RENAME_EXDEV);
			e->ret = ret;
			e->flags = a->flags;
			__builtin_memcpy(e->old_path, a->old_path, PATH_LEN);
			__builtin_memcpy(e->new_path, a->new_path, PATH_LEN);
			submit_event(e);
		}
	}
	bpf_map_delete_elem(&inflight, &tid);
}

/* fentry mode */
SEC("fentry/do_renameat2")
int BPF_PROG(rename_fentry, int olddfd, struct filename *from, int newdfd, struct filename *to,
	     unsigned int flags)
{
	save_kernel(from, to, flags);
	return 0;
}

SEC("fexit/do_renameat2")
int BPF_PROG(rename_fexit, int olddfd, struct filename *from, int newdfd, struct filename *to,
	     unsigned int flags, int ret)
{
	finish(ret);
	return 0;
}

/* kprobe mode */
SEC("kprobe/do_renameat2")
int BPF_KPROBE(rename_kprobe, int olddfd, struct filename *from, int newdfd, struct filename *to,
	       unsigned int flags)
{
	save_kernel(from, to, flags);
	return 0;
}

SEC("kretprobe/do_renameat2")
int BPF_KRETPROBE(rename_kretprobe, int ret)
{
	finish(ret);
	return 0;
}

/* The syscall modes (tracepoint, tail_call): args are the syscall's arguments. */
static __always_inline void enter_rename(const unsigned long *args)
{
	save_user((const char *)args[0], (const char *)args[1], 0);
}

static __always_inline void enter_renameat(const unsigned long *args)
{
	save_user((const char *)args[1], (const char *)args[3], 0);
}

static __always_inline void enter_renameat2(const unsigned long *args)
{
	save_user((const char *)args[1], (const char *)args[3], (__u32)args[4]);
}

/* tracepoint and tail_call modes (syscall_tail.h) */
SYSCALL_PROGRAMS(rename, enter_rename, finish)
SYSCALL_PROGRAMS(renameat, enter_renameat, finish)
SYSCALL_PROGRAMS(renameat2, enter_renameat2, finish)
