/* SPDX-License-Identifier: GPL-2.0 */
/* In-kernel log2 latency histograms, shared by the latency and seccomp sensors.
 * Nothing travels per call: programs add to per-CPU histograms that userspace
 * sums on scrape. Bucket i counts durations d with 2^i <= d < 2^(i+1) ns (bucket 0
 * also holds 0 and 1 ns); the last bucket holds everything longer. */
#pragma once

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "license.h"

enum hist_size {
	HIST_BUCKETS = 40, /* 2^39 ns is about 9 minutes */
};
/* Referenced so that bpf2go can generate the Go enum. */
const enum hist_size *unused_hist_size __attribute__((unused));

struct hist {
	__u64 buckets[HIST_BUCKETS];
	__u64 sum_ns;
	__u64 aux; /* sensor-specific (seccomp: filters attached when last seen) */
};

/* log2 without __builtin_clzll, which older clang cannot lower for BPF. */
static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r = 0, s;

	s = (v > 0xFFFFFFFFULL) << 5; v >>= s; r |= s;
	s = (v > 0xFFFF) << 4; v >>= s; r |= s;
	s = (v > 0xFF) << 3; v >>= s; r |= s;
	s = (v > 0xF) << 2; v >>= s; r |= s;
	s = (v > 0x3) << 1; v >>= s; r |= s;
	r |= (v >> 1);
	return r;
}

static __always_inline void hist_add(struct hist *h, __u64 ns)
{
	__u32 b = log2_u64(ns);

	if (b >= HIST_BUCKETS)
		b = HIST_BUCKETS - 1;
	h->buckets[b]++;
	h->sum_ns += ns;
}

