/* SPDX-License-Identifier: GPL-2.0 */
/* The current task, on kernels with and without bpf_get_current_task_btf. */
#pragma once

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

/* bpf_get_current_task_btf (5.11+) gives a pointer the program may dereference;
 * before it, bpf_get_current_task and probe reads. Decided at load time from the
 * kernel's own BTF (its enum bpf_func_id), not from a version. */
#define have_task_btf() bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf)

/* A field of the current task, read the cheapest way the kernel allows. */
#define current_task_read(field)                                                           \
	({                                                                                 \
		typeof(((struct task_struct *)0)->field) __v;                              \
		if (have_task_btf())                                                       \
			__v = bpf_get_current_task_btf()->field;                           \
		else                                                                       \
			__v = BPF_CORE_READ((struct task_struct *)bpf_get_current_task(), field); \
		__v;                                                                       \
	})

