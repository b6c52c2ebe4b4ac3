/* SPDX-License-Identifier: GPL-2.0 */
/* The tail_call attach mode: the latency sensor's tp_btf sys_enter/sys_exit
 * programs are the only probes on those tracepoints and, after their own work,
 * tail-call a per-syscall program from these prog arrays, indexed by syscall
 * number. Other sensors (rename, sem) put their tp_btf programs there (see
 * tracer/tailcall.go) instead of enabling syscall tracepoints of their own: a
 * tracepoint with one probe calls it directly, with two or more it loops over
 * them with indirect calls (retpolines), which costs more than the probes.
 *
 * The kernel refuses tail calls between tracing programs attached to different
 * hooks (since ~6.10), so callees are declared SEC("tp_btf/sys_enter") or
 * SEC("tp_btf/sys_exit"), like their caller. They get the caller's context:
 * the user registers and the syscall number (sys_enter) or return value
 * (sys_exit). The readers below give both syscall modes (tracepoint and
 * tail_call) the arguments as one array, so their logic is shared. */
#pragma once

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "arch.h"
#include "task.h"

/* Syscall numbers are below SYSCALL_TAILS on x86-64 and arm64 (about 470 today;
 * tracer/tailcall_test.go checks both tables); larger ones (x32 syscalls, -1
 * for none) are never tail-called. An enum, so that bpf2go emits it for
 * tracer/tailcall.go (-type syscall_tail_size). */
enum syscall_tail_size {
	SYSCALL_TAILS = 512,
};
const enum syscall_tail_size *unused_syscall_tail_size __attribute__((unused));

/* syscall_args (arch.h) from a syscall tracepoint's record, into a stack copy:
 * the verifier refuses loads through a ctx pointer moved to args[]. */
static __always_inline void tracepoint_args(struct trace_event_raw_sys_enter *ctx, unsigned long args[6])
{
	args[0] = ctx->args[0];
	args[1] = ctx->args[1];
	args[2] = ctx->args[2];
	args[3] = ctx->args[3];
	args[4] = ctx->args[4];
	args[5] = ctx->args[5];
}

/* A sensor's four programs for one syscall, around its handlers
 * void enter(const unsigned long args[6]) and void exit(long ret):
 * <name>_enter and <name>_exit on syscalls/sys_{enter,exit}_<name> (tracepoint
 * mode), <name>_tail_enter and <name>_tail_exit (tail_call mode: the tracer
 * puts them in the slots of the syscall's number). */
#define SYSCALL_PROGRAMS(name, enter, exit)                                  \
	SEC("tracepoint/syscalls/sys_enter_" #name)                          \
	int name##_enter(struct trace_event_raw_sys_enter *ctx)              \
	{                                                                    \
		unsigned long args[6];                                       \
		tracepoint_args(ctx, args);                                  \
		enter(args);                                                 \
		return 0;                                                    \
	}                                                                    \
	SEC("tracepoint/syscalls/sys_exit_" #name)                           \
	int name##_exit(struct trace_event_raw_sys_exit *ctx)                \
	{                                                                    \
		exit(ctx->ret);                                              \
		return 0;                                                    \
	}                                                                    \
	SEC("tp_btf/sys_enter")                                              \
	int BPF_PROG(name##_tail_enter, struct pt_regs *regs, long id)       \
	{                                                                    \
		unsigned long args[6];                                       \
		if (compat_syscall())                                        \
			return 0;                                            \
		syscall_args(regs, args);                                    \
		enter(args);                                                 \
		return 0;                                                    \
	}                                                                    \
	SEC("tp_btf/sys_exit")                                               \
	int BPF_PROG(name##_tail_exit, struct pt_regs *regs, long ret)       \
	{                                                                    \
		if (compat_syscall())                                        \
			return 0;                                            \
		exit(ret);                                                   \
		return 0;                                                    \
	}
