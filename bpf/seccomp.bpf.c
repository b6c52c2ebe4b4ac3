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
 */
#include "hist.h"

#define MAX_FILTER_WALK 64

struct inflight {
	__u64 ts;
	__u32 tid; /* the start belongs to this thread; 0 = none pending */
	__u32 _pad;
};

/* Filters never sleep unless they hand the syscall to a user-space notifier or a
 * tracer; a per-CPU slot tagged with the thread id is enough. When the thread
 * was switched out in between, the tag no longer matches and the sample is dropped. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct inflight);
} filter_start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 2048); /* resized by userspace */
	__type(key, __u64);        /* cgroup id */
	__type(value, struct hist);
} filter_hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, OVERFLOW_REASONS);
	__type(key, __u32);
	__type(value, __u64);
} overflow SEC(".maps");

const struct hist zero_hist = {};

static __always_inline void begin(void)
{
	__u32 zero = 0;
	struct inflight *f = bpf_map_lookup_elem(&filter_start, &zero);
	if (!f)
		return;
	f->tid = (__u32)bpf_get_current_pid_tgid();
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
	__u32 zero = 0;
	struct inflight *f = bpf_map_lookup_elem(&filter_start, &zero);
	if (!f || f->tid != (__u32)bpf_get_current_pid_tgid())
		return;
	__u64 d = bpf_ktime_get_ns() - f->ts;
	f->tid = 0;

	__u64 cg = bpf_get_current_cgroup_id();
	struct hist *h = bpf_map_lookup_elem(&filter_hist, &cg);
	if (!h) {
		bpf_map_update_elem(&filter_hist, &cg, &zero_hist, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&filter_hist, &cg);
		if (!h) {
			__u32 reason = OVERFLOW_HIST_FULL;
			__u64 *n = bpf_map_lookup_elem(&overflow, &reason);
			if (n)
				(*n)++;
			return;
		}
	}
	hist_add(h, d);
	h->aux = filters((struct task_struct *)bpf_get_current_task());
}

SEC("fentry/__seccomp_filter")
int BPF_PROG(seccomp_fentry)
{
	begin();
	return 0;
}

SEC("fexit/__seccomp_filter")
int BPF_PROG(seccomp_fexit)
{
	end();
	return 0;
}

SEC("kprobe/__seccomp_filter")
int BPF_KPROBE(seccomp_kprobe)
{
	begin();
	return 0;
}

SEC("kretprobe/__seccomp_filter")
int BPF_KRETPROBE(seccomp_kretprobe)
{
	end();
	return 0;
}
