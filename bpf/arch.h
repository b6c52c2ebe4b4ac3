/* SPDX-License-Identifier: GPL-2.0 */
/* What the programs know about the CPU architecture, in one place: where a
 * syscall's arguments and number are in the user registers (struct pt_regs),
 * how a 32-bit (compat) task is told apart, and where an old kernel keeps a
 * task's user registers. bpf2go defines __TARGET_ARCH_<arch> from its -target
 * (x86 for amd64, arm64 for arm64; tracer/gen.go builds both).
 *
 * vmlinux.h is x86-64's. Its struct pt_regs is x86's, and the arm64 types the
 * programs read are declared below instead: CO-RE matches them by name (the
 * ___ suffix is a flavour, ignored) and field names against the running
 * kernel's BTF, so only their names and meaning must be right, not their
 * layout. The syscall tracepoints' records (trace_event_raw_sys_enter/exit)
 * are the same on both. */
#pragma once

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "task.h"

#if defined(__TARGET_ARCH_x86)

/* x86-64 syscall ABI: arguments in di, si, dx, r10, r8, r9 (r10, not the
 * function ABI's cx: syscall clobbers cx); the number in orig_ax (ax holds the
 * return value by sys_exit). Direct loads from the tp_btf context's pt_regs:
 * libbpf's PT_REGS_PARMn_CORE_SYSCALL would probe-read each one, and libbpf
 * 1.1 (Debian 12) has no PARM6. */
#define ARCH_SYSCALL_ARGS(regs, args)                                              \
	do {                                                                       \
		(args)[0] = (regs)->di;                                            \
		(args)[1] = (regs)->si;                                            \
		(args)[2] = (regs)->dx;                                            \
		(args)[3] = (regs)->r10;                                           \
		(args)[4] = (regs)->r8;                                            \
		(args)[5] = (regs)->r9;                                            \
	} while (0)
#define ARCH_SYSCALL_NR(regs) ((regs)->orig_ax)
#define ARCH_SYSCALL_NR_CORE(regs) BPF_CORE_READ((regs), orig_ax)

/* TS_COMPAT in arch/x86/include/asm/thread_info.h: a 32-bit syscall is
 * running (set per syscall: a 64-bit task may make int 0x80 calls). */
#define TS_COMPAT 0x0002
#define arch_compat_syscall() (current_task_read(thread_info.status) & TS_COMPAT)

/* Before bpf_task_pt_regs (5.15): the user registers sit at the top of the
 * kernel stack (task_pt_regs: stack + THREAD_SIZE - TOP_OF_KERNEL_STACK_PADDING,
 * which is 0 on x86-64), THREAD_SIZE being 16 KiB without KASAN. __USER_CS
 * tells a 64-bit user frame from a misplaced guess. NULL when it is not one. */
#define ARCH_THREAD_SIZE (4096 << 2)
#define X86_USER_CS 0x33
static __always_inline struct pt_regs *arch_stack_user_regs(struct task_struct *task)
{
	struct pt_regs *regs = (struct pt_regs *)((void *)BPF_CORE_READ(task, stack) + ARCH_THREAD_SIZE) - 1;
	if (BPF_CORE_READ(regs, cs) != X86_USER_CS)
		return NULL;
	return regs;
}

#elif defined(__TARGET_ARCH_arm64)

/* arch/arm64/include/uapi/asm/ptrace.h. UAPI, so its layout is fixed: libbpf's
 * PT_REGS_PARMn (the BPF_KPROBE macros) cast a kprobe's context to it and load
 * from it directly. */
struct user_pt_regs {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
	__u64 pstate;
};

/* arch/arm64/include/asm/ptrace.h: the fields read here. Not named
 * pt_regs___arm64: bpf_tracing.h declares that one (orig_x0 only). */
struct pt_regs___a64 {
	union {
		struct user_pt_regs user_regs;
		struct {
			__u64 regs[31];
			__u64 sp;
			__u64 pc;
			__u64 pstate;
		};
	};
	__u64 orig_x0;
	__s32 syscallno;
} __attribute__((preserve_access_index));

/* arm64 syscall ABI: arguments in x0-x5, the number in x8, copied to
 * syscallno on entry. x0 is also the return register, so the first argument is
 * read from orig_x0 (as libbpf's PT_REGS_PARM1_CORE_SYSCALL does). syscallno
 * is signed (-1: no syscall) and sign-extends past every slot. */
#define ARCH_SYSCALL_ARGS(regs, args)                                              \
	do {                                                                       \
		struct pt_regs___a64 *__r = (void *)(regs);                        \
		(args)[0] = __r->orig_x0;                                          \
		(args)[1] = __r->regs[1];                                          \
		(args)[2] = __r->regs[2];                                          \
		(args)[3] = __r->regs[3];                                          \
		(args)[4] = __r->regs[4];                                          \
		(args)[5] = __r->regs[5];                                          \
	} while (0)
#define ARCH_SYSCALL_NR(regs) (((struct pt_regs___a64 *)(void *)(regs))->syscallno)
#define ARCH_SYSCALL_NR_CORE(regs) BPF_CORE_READ((struct pt_regs___a64 *)(void *)(regs), syscallno)

/* TIF_32BIT in arch/arm64/include/asm/thread_info.h (22 since arm64's first
 * compat support): an AArch32 task, whose syscalls use arm's numbers. Unlike
 * x86 it is per task, not per syscall: an AArch64 task cannot make AArch32
 * syscalls. Kernels without CONFIG_COMPAT never set it. */
#define ARM64_TIF_32BIT 22
#define arch_compat_syscall() ((current_task_read(thread_info.flags) >> ARM64_TIF_32BIT) & 1)

/* Before bpf_task_pt_regs (5.15): task_pt_regs is THREAD_SIZE above the
 * stack's base, minus the kernel's own sizeof(struct pt_regs) (which grew
 * across versions: CO-RE gives it). THREAD_SIZE is 16 KiB with 4 KiB pages and
 * no KASAN (Debian's). A user frame is AArch64 EL0t: pstate's mode bits
 * (PSR_MODE_MASK 0x0f, PSR_MODE32_BIT 0x10) all clear; a zeroed guess has pc 0. */
#define ARCH_THREAD_SIZE (4096 << 2)
static __always_inline struct pt_regs *arch_stack_user_regs(struct task_struct *task)
{
	void *top = (void *)BPF_CORE_READ(task, stack) + ARCH_THREAD_SIZE;
	struct pt_regs___a64 *regs = top - bpf_core_type_size(struct pt_regs___a64);
	if ((BPF_CORE_READ(regs, pstate) & 0x1f) != 0 || BPF_CORE_READ(regs, pc) == 0)
		return NULL;
	return (struct pt_regs *)regs;
}

#else
#error "bpf/arch.h: no register layout for this __TARGET_ARCH (tracer/gen.go's -target)"
#endif

/* A syscall's six arguments from its user registers (tp_btf sys_enter). */
static __always_inline void syscall_args(struct pt_regs *regs, unsigned long args[6])
{
	ARCH_SYSCALL_ARGS(regs, args);
}

/* The number of the syscall a tp_btf sys_exit program returns from. */
static __always_inline unsigned long syscall_nr_at_exit(struct pt_regs *regs)
{
	return ARCH_SYSCALL_NR(regs);
}

/* A 32-bit task's syscall numbers index another table: programs keyed by
 * 64-bit numbers would misread them. The syscall tracepoints skip them too. */
static __always_inline bool compat_syscall(void)
{
	return arch_compat_syscall();
}
