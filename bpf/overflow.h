/* SPDX-License-Identifier: GPL-2.0 */
/* What the aggregating sensors (latency, seccomp) could not record, counted by
 * reason in a per-CPU array that userspace sums (tracer/latency.go). */
#pragma once

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

/* Why a syscall or filter run was not recorded. */
enum overflow_reason {
	OVERFLOW_HIST_FULL = 0,  /* histogram map full: a new cgroup was not tracked */
	OVERFLOW_STORAGE = 1,    /* per-thread start time could not be stored */
	OVERFLOW_SYSCALL_FULL = 2, /* per-syscall map update failed */
	OVERFLOW_FILTER_UNMATCHED = 3, /* seccomp: a filter exit without its entry, or the reverse */
	OVERFLOW_FILTER_SLEPT = 4, /* seccomp: the task slept in the filter call (notifier, tracer) */
	OVERFLOW_REASONS = 5,      /* how many; bpf2go emits the enum for tracer/ */
};

/* Referenced so that bpf2go can generate the Go enum. */
const enum overflow_reason *unused_overflow_reason __attribute__((unused));

/* Indexed by overflow_reason. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, OVERFLOW_REASONS);
	__type(key, __u32);
	__type(value, __u64);
} overflow SEC(".maps");

static __always_inline void count_overflow(__u32 reason)
{
	__u64 *n = bpf_map_lookup_elem(&overflow, &reason);
	if (n)
		(*n)++;
}
