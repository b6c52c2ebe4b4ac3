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
