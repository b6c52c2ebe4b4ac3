// SPDX-License-Identifier: GPL-2.0
/* Benchmark only: syscall hooks that do one piece of the latency sensor's work
 * each, so `make bench` can show where the sensor's cost goes. `part` is set
 * before load; the verifier drops the branches not taken. */
#include "hist.h"

enum part {
	PART_EMPTY = 0,   /* the floor: enabling the hooks alone forces the slow path */
	PART_CLOCK = 1,   /* bpf_ktime_get_ns at each end, kept in a per-CPU slot */
	PART_JIFFIES = 2, /* a helper call at each end that reads no clocksource */
	PART_STORAGE = 3, /* task storage get at each end */
	PART_HIST = 4,    /* cgroup id + per-CPU hash lookup + histogram add at exit */
};

const volatile __u32 part = PART_EMPTY;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} clock_slot SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} bench_storage SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, struct hist);
} bench_hist SEC(".maps");

const struct hist bench_zero_hist = {};

/* What PART_CLOCK and PART_JIFFIES read at each end. */
static __always_inline __u64 stamp(void)
{
	return part == PART_CLOCK ? bpf_ktime_get_ns() : bpf_jiffies64();
}

SEC("tp_btf/sys_enter")
int BPF_PROG(floor_enter)
{
	__u32 zero = 0;
	__u64 *t;

	switch (part) {
	case PART_CLOCK:
	case PART_JIFFIES:
		t = bpf_map_lookup_elem(&clock_slot, &zero);
		if (t)
			*t = stamp();
		break;
	case PART_STORAGE:
		t = bpf_task_storage_get(&bench_storage, bpf_get_current_task_btf(), 0,
					 BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (t)
			*t = 1;
		break;
	}
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(floor_exit)
{
	__u32 zero = 0;
	__u64 *t;

	switch (part) {
	case PART_CLOCK:
	case PART_JIFFIES:
		t = bpf_map_lookup_elem(&clock_slot, &zero);
		if (t)
			*t = stamp() - *t;
		break;
	case PART_STORAGE:
		t = bpf_task_storage_get(&bench_storage, bpf_get_current_task_btf(), 0, 0);
		if (t)
			*t = 0;
		break;
	case PART_HIST: {
		__u64 cg = bpf_get_current_cgroup_id();
		struct hist *h = bpf_map_lookup_elem(&bench_hist, &cg);
		if (!h) {
			bpf_map_update_elem(&bench_hist, &cg, &bench_zero_hist, BPF_NOEXIST);
			h = bpf_map_lookup_elem(&bench_hist, &cg);
		}
		if (h)
			hist_add(h, 300);
		break;
	}
	}
	return 0;
}

/* The floor of the seccomp sensor: empty fentry/fexit on the filter call
 * (make bench-vm; this host refuses fentry). */
SEC("fentry/__seccomp_filter")
int BPF_PROG(floor_seccomp_entry)
{
	return 0;
}

SEC("fexit/__seccomp_filter")
int BPF_PROG(floor_seccomp_exit)
{
	return 0;
}
