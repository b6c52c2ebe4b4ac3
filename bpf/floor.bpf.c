// SPDX-License-Identifier: GPL-2.0
/* Benchmark only: empty syscall hooks. Their cost is the floor any syscall
 * sensor pays, since enabling the hooks alone moves syscalls onto the slow path. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

SEC("tp_btf/sys_enter")
int BPF_PROG(floor_enter)
{
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(floor_exit)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

/* The floor plus what any duration measurement needs: a clock read at each end
 * and a per-CPU slot to keep it in. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} clock_slot SEC(".maps");

SEC("tp_btf/sys_enter")
int BPF_PROG(clock_enter)
{
	__u32 zero = 0;
	__u64 *t = bpf_map_lookup_elem(&clock_slot, &zero);
	if (t)
		*t = bpf_ktime_get_ns();
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(clock_exit)
{
	__u32 zero = 0;
	__u64 *t = bpf_map_lookup_elem(&clock_slot, &zero);
	if (t)
		*t = bpf_ktime_get_ns() - *t;
	return 0;
}
