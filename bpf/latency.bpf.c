// SPDX-License-Identifier: GPL-2.0
/* latency sensor: the duration of syscalls, aggregated in the kernel into log2
 * histograms keyed by cgroup id and seccomp mode, and an exact count of every
 * syscall. No event per syscall.
 *
 *   tp_btf:         tp_btf/sys_enter + tp_btf/sys_exit (+ sched_process_exit)
 *   raw_tracepoint: the same as raw tracepoints
 *
 * In tp_btf mode the sys_enter/sys_exit programs end with a tail call into
 * sys_enter_tails/sys_exit_tails at the syscall's number: other sensors' tail_call
 * mode (see syscall_tail.h). An empty slot costs a bounds check and a load.
 *
 * Enabling either hook moves every syscall of every task onto the kernel's
 * syscall slow path: that is the floor (see `make bench`). Timing a syscall
 * costs two bpf_ktime_get_ns calls on top, about as much again as the floor
 * where retpolines make the clocksource's indirect call expensive. So by
 * default one syscall in N is timed, picked at random at sys_enter, and every
 * other syscall costs a random number and a counter increment in task storage.
 *
 * Exact counts without a map lookup per syscall: each thread counts its own
 * syscalls in task storage and adds them to its histogram entry when a timed
 * syscall looks that entry up anyway, when the thread exits, or when its
 * seccomp mode changes (runc's last syscalls before it installs a container's
 * profile count as "none", not "filter").
 *
 * Task storage, not a hash keyed by thread id: it is a pointer away from the
 * task and is freed with it, while a global hash costs a lookup with a shared
 * bucket lock on every syscall. Kernels without task storage for tracing
 * programs (5.10) get that hash all the same (bpf/thread.h).
 */
#include "hist.h"
#include "overflow.h"
#include "syscall_tail.h"
#include "thread.h"

/* task->seccomp.mode values (include/linux/seccomp.h); named in userspace. */
#define SECCOMP_MODE_MAX 3

/* Set by userspace before load. */
const volatile __u32 sample_every = 1;       /* 1: time every syscall */
const volatile __u32 sample_below = 0;       /* else time it when a random u32 is below this (2^32 / N) */
const volatile bool containers_only = false; /* only cgroups userspace put in `tracked` */
const volatile bool per_syscall = false;     /* also count per {cgroup, syscall nr} */

struct start {
	__u64 ts;    /* bpf_ktime_get_ns at a timed sys_enter; 0 = none pending */
	__u64 calls; /* sys_exits not yet added to the histogram entry */
	__u32 nr;
	__u32 mode;  /* task->seccomp.mode of those sys_exits */
};

/* starts: task storage, or starts_tid, a hash by thread id, where the kernel
 * has no task storage for tracing programs (5.10; bpf/thread.h). */
THREAD_STATE(starts, struct start)

struct hist_key {
	__u64 cgroup_id;
	__u32 mode; /* task->seccomp.mode at sys_exit */
	__u32 _pad;
};

/* hist.aux counts every syscall (timed or not); the buckets hold timed ones.
 * Per-CPU: each CPU increments its own copy without atomics or bucket locks
 * contended by other CPUs; userspace sums the copies on scrape. The hash (not an
 * array indexed by a slot) keeps the hot path at one lookup with no slot table. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 2048); /* resized by userspace */
	__type(key, struct hist_key);
	__type(value, struct hist);
} latency_hist SEC(".maps");

/* Container cgroups, filled by userspace when containers_only is set. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u8);
} tracked SEC(".maps");

struct syscall_key {
	__u64 cgroup_id;
	__u32 nr;
	__u32 _pad;
};

struct syscall_stat {
	__u64 count;
	__u64 sum_ns;
};

/* LRU: the least recently used {cgroup, syscall} pairs give way, so the map
 * stays bounded without userspace pruning; userspace keeps only the top N. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct syscall_key);
	__type(value, struct syscall_stat);
} syscall_stats SEC(".maps");

/* Filled by userspace with other sensors' tp_btf programs, by syscall number. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, SYSCALL_TAILS);
	__type(key, __u32);
	__type(value, __u32);
} sys_enter_tails SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, SYSCALL_TAILS);
	__type(key, __u32);
	__type(value, __u32);
} sys_exit_tails SEC(".maps");

/* Initial value for new histogram entries: too large for the BPF stack. */
const struct hist zero_hist = {};

/* Referenced so that bpf2go generates the Go mirrors. */
const struct syscall_key *unused_syscall_key __attribute__((unused));
const struct syscall_stat *unused_syscall_stat __attribute__((unused));

static __always_inline void on_enter(long nr)
{
	/* A compare: bpf_get_prandom_u32() % N would divide on every syscall. */
	if (sample_every > 1 && bpf_get_prandom_u32() >= sample_below)
		return;
	if (containers_only) {
		__u64 cg = bpf_get_current_cgroup_id();
		if (!bpf_map_lookup_elem(&tracked, &cg))
			return;
	}
	struct start *s = starts_get(true);
	if (!s)
		return;
	s->nr = (__u32)nr;
	s->ts = bpf_ktime_get_ns();
}

static __always_inline void count_syscall(__u64 cgroup_id, __u32 nr, __u64 d)
{
	struct syscall_key k = { .cgroup_id = cgroup_id, .nr = nr };
	struct syscall_stat *v = bpf_map_lookup_elem(&syscall_stats, &k);

	if (!v) {
		struct syscall_stat init = { .count = 1, .sum_ns = d };
		if (!bpf_map_update_elem(&syscall_stats, &k, &init, BPF_NOEXIST))
			return;
		v = bpf_map_lookup_elem(&syscall_stats, &k); /* lost a race with another CPU */
		if (!v) {
			count_overflow(OVERFLOW_SYSCALL_FULL);
			return;
		}
	}
	v->count++;
	v->sum_ns += d;
}

/* The current task's histogram entry, created on first use. */
static __always_inline struct hist *hist_for(__u64 cgroup_id, __u32 mode)
{
	struct hist_key k = {
		.cgroup_id = cgroup_id,
		.mode = mode > SECCOMP_MODE_MAX ? SECCOMP_MODE_MAX : mode,
	};
	struct hist *h = bpf_map_lookup_elem(&latency_hist, &k);
	if (h)
		return h;
	bpf_map_update_elem(&latency_hist, &k, &zero_hist, BPF_NOEXIST);
	h = bpf_map_lookup_elem(&latency_hist, &k);
	if (!h)
		count_overflow(OVERFLOW_HIST_FULL);
	return h;
}

/* Adds a thread's pending syscall count to its histogram entry. */
static __always_inline void flush_calls(struct start *s, __u64 cgroup_id)
{
	if (containers_only && !bpf_map_lookup_elem(&tracked, &cgroup_id))
		return;
	struct hist *h = hist_for(cgroup_id, s->mode);
	if (!h)
		return; /* the calls stay with the thread for a later try */
	h->aux += s->calls;
	s->calls = 0;
}

static __always_inline void on_exit(__u32 mode)
{
	/* Created here too: the thread's untimed syscalls are counted from its first. */
	struct start *s = starts_get(true);
	if (!s)
		return;
	if (mode != s->mode) { /* rare: prctl(PR_SET_SECCOMP), seccomp(2) */
		if (s->calls)
			flush_calls(s, bpf_get_current_cgroup_id());
		s->mode = mode;
	}
	s->calls++;
	if (!s->ts)
		return;
	__u64 d = bpf_ktime_get_ns() - s->ts;
	__u32 nr = s->nr;
	s->ts = 0;

	__u64 cgroup_id = bpf_get_current_cgroup_id();
	struct hist *h = hist_for(cgroup_id, mode);
	if (!h)
		return; /* the calls stay with the thread for a later try */
	hist_add(h, d);
	h->aux += s->calls;
	s->calls = 0;
	if (per_syscall)
		count_syscall(cgroup_id, nr, d);
}

/* A thread's last syscalls since its last timed one, counted as it exits (in
 * its own context: sched_process_exit runs in the exiting thread). */
static __always_inline void on_thread_exit(void)
{
	struct start *s = starts_get(false);
	if (s && s->calls)
		flush_calls(s, bpf_get_current_cgroup_id());
	starts_forget();
}

/* The tail calls come after the sensor's own work, whatever it did (sampling
 * and containers-only return early): the callees see every syscall. A tail
 * call that finds no program returns here. */
SEC("tp_btf/sys_enter")
int BPF_PROG(lat_enter_btf, struct pt_regs *regs, long id)
{
	on_enter(id);
	if ((unsigned long)id < SYSCALL_TAILS)
		bpf_tail_call(ctx, &sys_enter_tails, (__u32)id);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(lat_exit_btf, struct pt_regs *regs, long ret)
{
	on_exit(current_task_read(seccomp.mode));
	unsigned long nr = syscall_nr_at_exit(regs);
	if (nr < SYSCALL_TAILS)
		bpf_tail_call(ctx, &sys_exit_tails, (__u32)nr);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(lat_thread_exit_btf)
{
	on_thread_exit();
	return 0;
}

SEC("raw_tracepoint/sys_enter")
int lat_enter_raw(struct bpf_raw_tracepoint_args *ctx)
{
	on_enter((long)ctx->args[1]);
	return 0;
}

SEC("raw_tracepoint/sys_exit")
int lat_exit_raw(struct bpf_raw_tracepoint_args *ctx)
{
	on_exit(current_task_read(seccomp.mode));
	return 0;
}

SEC("raw_tracepoint/sched_process_exit")
int lat_thread_exit_raw(struct bpf_raw_tracepoint_args *ctx)
{
	on_thread_exit();
	return 0;
}
