// SPDX-License-Identifier: GPL-2.0
/* seccomp sensor: time spent evaluating seccomp filters, per cgroup, as an
 * in-kernel log2 histogram, plus the number of filters the task carries.
 *
 *   fentry: fentry/fexit on __seccomp_filter (static, but not inlined on
 *           Debian's 6.1 and 6.12: it has BTF and a symbol)
 *   kprobe: kprobe/kretprobe on __seccomp_filter
 *
 * __seccomp_filter runs for every syscall of a task in SECCOMP_MODE_FILTER: it
 * fills seccomp_data, checks the per-filter action cache and runs the filters.
 * For syscalls the action cache allows, that is a few tens of nanoseconds, less
 * than two clock reads cost on a retpoline host: so, like the latency sensor,
 * this one times a random one call in N (--syscall-sample-every); an untimed
 * call costs a random number at entry and a task-storage lookup at exit.
 * Task pointers come from bpf_get_current_task and are read with CO-RE probe
 * reads, so the same programs load where bpf_get_current_task_btf is missing.
 */
#include "arch.h"
#include "hist.h"
#include "overflow.h"
#include "thread.h"

#define MAX_FILTER_WALK 64

/* Set by userspace before load, as in the latency sensor. */
const volatile __u32 sample_every = 1; /* 1: time every filter run */
const volatile __u32 sample_below = 0; /* else time it when a random u32 is below this (2^32 / N) */

/* The pending start of the task's outermost __seccomp_filter call. Task
 * storage, not a per-CPU slot: the task may be preempted or migrated between
 * entry and exit, and the slot goes with the task (and is freed with it). */
struct inflight {
	__u64 ts;    /* bpf_ktime_get_ns at the outermost entry */
	__u64 nvcsw; /* task->nvcsw then: a change at exit means the task slept */
	__u32 depth; /* calls in progress: 2 while the SECCOMP_RET_TRACE recheck runs */
	__u32 _pad;
};

/* filter_start: task storage, or filter_start_tid, a hash by thread id, where
 * the kernel has no task storage for tracing programs (5.10; bpf/thread.h);
 * the do_exit hooks below empty that hash as threads exit. */
THREAD_STATE(filter_start, struct inflight)

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 2048); /* resized by userspace */
	__type(key, __u64);        /* cgroup id */
	__type(value, struct hist);
} filter_hist SEC(".maps");

const struct hist zero_hist = {};

/* One sample per filtered syscall, from the outermost entry to the outermost
 * exit. SECCOMP_RET_TRACE stops the task for its tracer inside
 * __seccomp_filter and then calls __seccomp_filter again with
 * recheck_after_trace set: that nested call only deepens the nesting, so it
 * neither overwrites the start nor records a sample of its own (the outer call
 * slept in the ptrace stop, so the syscall is counted as OVERFLOW_FILTER_SLEPT).
 * An outermost entry (recheck_after_trace false) that finds a call still
 * pending means an exit was never seen (a kretprobe out of instances, or the
 * exit hook attached after the entry hook while a call was in flight): that
 * call is counted as unmatched and the new one starts afresh, so one missed
 * exit cannot disable the thread's measurements. */
static __always_inline void begin(bool recheck_after_trace)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct inflight *f;

	if (sample_every > 1) {
		if (recheck_after_trace) {
			/* Follows its outer call: deepens it if that one is timed. */
			f = filter_start_get(false);
			if (f && f->depth == 1)
				f->depth++;
			return;
		}
		if (bpf_get_prandom_u32() >= sample_below)
			return;
	}
	f = filter_start_get(true);
	if (!f)
		return;
	if (f->depth) {
		if (recheck_after_trace && f->depth < 2) {
			f->depth++;
			return;
		}
		count_overflow(OVERFLOW_FILTER_UNMATCHED);
	}
	f->depth = 1;
	f->nvcsw = BPF_CORE_READ(task, nvcsw);
	f->ts = bpf_ktime_get_ns();
}

/* filters counts the filters attached to the task: seccomp.filter_count where the
 * kernel keeps it (5.9+), else a bounded walk of the filter chain. */
static __always_inline __u64 filters(struct task_struct *task)
{
	if (bpf_core_field_exists(task->seccomp.filter_count))
		return BPF_CORE_READ(task, seccomp.filter_count.counter);
	struct seccomp_filter *f = BPF_CORE_READ(task, seccomp.filter);
	__u64 n = 0;
	for (int i = 0; i < MAX_FILTER_WALK && f; i++) {
		n++;
		f = BPF_CORE_READ(f, prev);
	}
	return n;
}

static __always_inline void end(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	/* Not created: a task never seen at entry has nothing to close. */
	struct inflight *f = filter_start_get(false);
	if (!f || !f->depth) {
		/* An untimed call; or, timing every call, an exit without an entry:
		 * the entry hook attached after the call began, or its storage could
		 * not be created (counted there too). */
		if (sample_every == 1)
			count_overflow(OVERFLOW_FILTER_UNMATCHED);
		return;
	}
	if (--f->depth)
		return; /* the SECCOMP_RET_TRACE recheck returned; the outer call goes on */
	__u64 d = bpf_ktime_get_ns() - f->ts;
	/* Filters never sleep; a voluntary switch means the task waited for a
	 * SECCOMP_RET_USER_NOTIF supervisor or stopped for a SECCOMP_RET_TRACE
	 * tracer, which is not filter cost. (Involuntary preemption is kept: the
	 * syscall was delayed inside the filter path.) */
	if (BPF_CORE_READ(task, nvcsw) != f->nvcsw) {
		count_overflow(OVERFLOW_FILTER_SLEPT);
		return;
	}

	__u64 cg = bpf_get_current_cgroup_id();
	struct hist *h = bpf_map_lookup_elem(&filter_hist, &cg);
	if (!h) {
		bpf_map_update_elem(&filter_hist, &cg, &zero_hist, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&filter_hist, &cg);
		if (!h) {
			count_overflow(OVERFLOW_HIST_FULL);
			return;
		}
	}
	hist_add(h, d);
	h->aux = filters(task);
}

/* __seccomp_filter(int this_syscall, const struct seccomp_data *sd,
 *                  const bool recheck_after_trace) on 6.1 and 6.12 (checked in
 * their BTF). */
/* The bool is read as its low byte: 5.10's trampoline stores each argument
 * with its own size into an 8-byte slot, so the slot's upper bytes are stack
 * garbage there, and a 64-bit test of it is nearly always true. */
SEC("fentry/__seccomp_filter")
int BPF_PROG(seccomp_fentry, int this_syscall, void *sd, __u64 recheck_after_trace)
{
	begin((__u8)recheck_after_trace != 0);
	return 0;
}

SEC("fexit/__seccomp_filter")
int BPF_PROG(seccomp_fexit)
{
	end();
	return 0;
}

SEC("kprobe/__seccomp_filter")
int BPF_KPROBE(seccomp_kprobe, int this_syscall, void *sd, __u64 recheck_after_trace)
{
	begin((__u8)recheck_after_trace != 0); /* a bool: only its low byte is defined */
	return 0;
}

SEC("kretprobe/__seccomp_filter")
int BPF_KRETPROBE(seccomp_kretprobe)
{
	end();
	return 0;
}

/* Thread exit: with the hash by thread id, the thread's entry goes (the
 * tracer loads these only then: task storage is freed with the task). */
SEC("fentry/do_exit")
int BPF_PROG(seccomp_thread_exit_fentry)
{
	filter_start_forget();
	return 0;
}

SEC("kprobe/do_exit")
int BPF_KPROBE(seccomp_thread_exit_kprobe)
{
	filter_start_forget();
	return 0;
}
