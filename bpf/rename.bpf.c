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

/* The fixed part of a record; the two paths follow it back to back, each with
 * its NUL: old_len bytes of the old path, then new_len of the new one. A record
 * carries only those bytes, so a ring holds as many records as their paths
 * allow (a 592-byte record for two 255-byte paths, 168 bytes for two of 40). */
struct rename_event {
	struct event_header hdr;
	__s32 ret;
	__u32 flags;
	__u16 old_len;
	__u16 new_len;
	__u32 _pad;
};
/* Referenced so that bpf2go can generate the Go mirror of the record. */
const struct rename_event *unused_rename_event __attribute__((unused));

/* A call in flight is its record in the making: the entry hook fills in the
 * flags and paths, the exit hook the header, and emits it from here. */
struct rename_record {
	struct rename_event e;
	char paths[2 * PATH_LEN];
};

/* LRU so that an entry whose exit hook never ran (detach mid-call) cannot pin a slot. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct rename_record);
} inflight SEC(".maps");

/* rename_record is too large for the BPF stack; build it here before the map update. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rename_record);
} scratch SEC(".maps");

/* path_len is the bytes a *_str read left at dst, its NUL included: an empty
 * string when the read failed. */
static __always_inline __u16 path_len(char *dst, long n)
{
	if (n <= 0) {
		dst[0] = 0;
		return 1;
	}
	return n > PATH_LEN ? PATH_LEN : n;
}

static __always_inline long read_str(char *dst, const char *src, bool user)
{
	return user ? bpf_probe_read_user_str(dst, PATH_LEN, src) : bpf_probe_read_kernel_str(dst, PATH_LEN, src);
}

/* save copies the paths, from user or kernel memory, into the thread's call in flight. */
static __always_inline void save(const char *oldp, const char *newp, __u32 flags, bool user)
{
	__u32 zero = 0;
	struct rename_record *r = bpf_map_lookup_elem(&scratch, &zero);
	if (!r)
		return;
	r->e.flags = flags;
	r->e.old_len = path_len(r->paths, read_str(r->paths, oldp, user));
	__u32 off = r->e.old_len;
	if (off > PATH_LEN) /* never: path_len bounds it, but the verifier does not know */
		return;
	r->e.new_len = path_len(r->paths + off, read_str(r->paths + off, newp, user));
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_update_elem(&inflight, &tid, r, BPF_ANY);
}

static __always_inline void save_user(const char *oldp, const char *newp, __u32 flags)
{
	save(oldp, newp, flags, true);
}

static __always_inline void save_kernel(struct filename *from, struct filename *to, __u32 flags)
{
	save(BPF_CORE_READ(from, name), BPF_CORE_READ(to, name), flags, false);
}

static __always_inline void finish(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct rename_record *r = bpf_map_lookup_elem(&inflight, &tid);
	if (!r)
		return;
	if (ret == -EXDEV) {
		fill_header(&r->e.hdr, EVENT_RENAME_EXDEV);
		r->e.ret = ret;
		r->e._pad = 0;
		__u64 size = sizeof(r->e) + (__u64)r->e.old_len + r->e.new_len;
		if (size > sizeof(*r))
			size = sizeof(*r);
		output_event(r, size);
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
