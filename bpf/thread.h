/* SPDX-License-Identifier: GPL-2.0 */
/* Per-thread state of the aggregating sensors (latency, seccomp) on every kernel.
 *
 * Task storage (BPF_MAP_TYPE_TASK_STORAGE) is a pointer away from the task and is
 * freed with it; tracing programs may use it from 5.11. Where the kernel refuses
 * to create it (5.10: "invalid argument"), userspace sets tid_map before load
 * and the same programs keep their state in a preallocated hash keyed by thread
 * id instead: bounded by its size, cleaned by the sensor's sched_process_exit
 * hook, and a thread that finds it full is counted (OVERFLOW_STORAGE), never
 * dropped silently. The branch not taken is dead code the verifier never
 * checks: its map is created with one entry (tracer/threadstate.go).
 *
 * Only the current thread's state is ever looked up, so the thread id of
 * bpf_get_current_pid_tgid() is the key. */
#pragma once

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include "overflow.h"
#include "task.h"

/* Set by userspace before load: true where task storage cannot be created. */
const volatile bool tid_map = false;

/* THREAD_STATE(name, value type): a task storage map `name` and its stand-in
 * `name_tid`, and name_get(create), which returns the current thread's value
 * (zeroed when created) or NULL: none yet (create false), or none could be made,
 * counted as OVERFLOW_STORAGE; name_forget() drops it (thread exit). */
#define THREAD_STATE(name, vtype)                                                           \
	struct {                                                                           \
		__uint(type, BPF_MAP_TYPE_TASK_STORAGE);                                   \
		__uint(map_flags, BPF_F_NO_PREALLOC);                                      \
		__type(key, int);                                                          \
		__type(value, vtype);                                                       \
	} name SEC(".maps");                                                               \
	struct {                                                                           \
		__uint(type, BPF_MAP_TYPE_HASH);                                           \
		__uint(max_entries, 1); /* sized by userspace when used */                 \
		__type(key, __u32);                                                        \
		__type(value, vtype);                                                       \
	} name##_tid SEC(".maps");                                                         \
	static __always_inline vtype *name##_get(bool create)                               \
	{                                                                                  \
		vtype *v;                                                                   \
		if (!tid_map) {                                                            \
			v = bpf_task_storage_get(&name, bpf_get_current_task_btf(), 0,     \
						 create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0); \
			if (!v && create)                                                  \
				count_overflow(OVERFLOW_STORAGE);                          \
			return v;                                                          \
		}                                                                          \
		__u32 tid = (__u32)bpf_get_current_pid_tgid();                             \
		v = bpf_map_lookup_elem(&name##_tid, &tid);                                \
		if (v || !create)                                                          \
			return v;                                                          \
		vtype zero = {};                                                            \
		/* -EEXIST: another hook of this thread won a race; -E2BIG: full. */       \
		bpf_map_update_elem(&name##_tid, &tid, &zero, BPF_NOEXIST);                \
		v = bpf_map_lookup_elem(&name##_tid, &tid);                                \
		if (!v)                                                                    \
			count_overflow(OVERFLOW_STORAGE);                                  \
		return v;                                                                  \
	}                                                                                  \
	static __always_inline void name##_forget(void)                                    \
	{                                                                                  \
		if (tid_map) {                                                             \
			__u32 tid = (__u32)bpf_get_current_pid_tgid();                     \
			bpf_map_delete_elem(&name##_tid, &tid);                            \
		}                                                                          \
	}
