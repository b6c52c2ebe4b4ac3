// SPDX-License-Identifier: GPL-2.0
/* sem sensor: System V semaphore arrays created by semget(2) and removed by
 * semctl(2, IPC_RMID) or with their IPC namespace, so that a leaked array can be
 * traced to its creator (/proc/sysvipc/sem has no creator pid).
 *
 *   fentry:     fexit/newary and fentry/freeary (ipc/sem.c)
 *   kprobe:     kprobe+kretprobe/newary and kprobe/freeary
 *   tail_call:  tail-called by the latency sensor's tp_btf sys_enter/sys_exit
 *               programs for semget and semctl (syscall_tail.h)
 *   tracepoint: syscalls/sys_{enter,exit}_semget and sys_{enter,exit}_semctl
 *
 * newary(ns, params) makes an array and returns its id; semget reaches it only
 * when it creates one. freeary(ns, ipcp) removes one, both for IPC_RMID
 * (semctl_down) and when the namespace dies (free_ipc_ns -> sem_exit_ns ->
 * free_ipcs, run by a kworker after the last task of a container left it).
 * Same prototypes on 6.1 and 6.12, both static, not inlined and in vmlinux BTF.
 * These hooks cost nothing outside semget/semctl, whereas enabling any syscall
 * tracepoint moves every syscall of every task onto the slow path; and only they
 * see namespace teardown. The record's ipc_ns is the ns argument's, not the
 * current task's: the kworker that tears a namespace down is not in it.
 *
 * Tracepoint and tail_call modes: the entry hook keeps the arguments per thread; the exit hook
 * emits a record only for calls that succeeded. semget without IPC_CREAT only
 * looks an array up and is not reported; with IPC_CREAT but without IPC_EXCL it
 * may return an existing array, which userspace tells apart by the semid it
 * already knows. Arrays freed with their namespace are not seen in these modes.
 */
#include "common.h"
#include "syscall_tail.h"

#define IPC_PRIVATE 0
#define IPC_CREAT 00001000
#define IPC_RMID 0
#define IPC_64 0x0100

struct sem_event {
	struct event_header hdr;
	__s32 semid;
	__s32 key;
	__s32 nsems;
	__s32 flags;            /* semget's semflg (permissions in the low 9 bits) */
	__u64 start_boottime;   /* the calling process's start, ns since boot: tells pid reuse apart */
};
/* Referenced so that bpf2go can generate the Go mirror of the record. */
const struct sem_event *unused_sem_event __attribute__((unused));

struct semget_args {
	__s32 key;
	__s32 nsems;
	__s32 flags;
	__u32 ipc_ns; /* kprobe mode: newary's namespace; 0 in tracepoint mode */
};

/* LRU so that an entry whose exit hook never ran cannot pin a slot. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct semget_args);
} inflight_get SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __s32);
} inflight_rmid SEC(".maps");

/* ipc_ns: the array's namespace, or 0 for the current task's (syscall hooks). */
static __always_inline __u32 ns_inum(struct ipc_namespace *ns)
{
	return BPF_CORE_READ(ns, ns.inum);
}

static __always_inline void emit(__u16 type, __u32 ipc_ns, __s32 semid, __s32 key, __s32 nsems, __s32 flags)
{
	struct sem_event *e = reserve_event(sizeof(*e));
	if (!e)
		return;
	fill_header(&e->hdr, type);
	if (ipc_ns)
		e->hdr.ipc_ns = ipc_ns;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	e->semid = semid;
	e->key = key;
	e->nsems = nsems;
	e->flags = flags;
	e->start_boottime = BPF_CORE_READ(task, group_leader, start_boottime);
	submit_event(e);
}

/* The syscall modes (tracepoint, tail_call): args are the syscall's arguments. */
static __always_inline void enter_semget(const unsigned long *args)
{
	struct semget_args a = {
		.key = (__s32)args[0],
		.nsems = (__s32)args[1],
		.flags = (__s32)args[2],
	};
	if (a.key != IPC_PRIVATE && !(a.flags & IPC_CREAT))
		return; /* a lookup: creates nothing */
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_update_elem(&inflight_get, &tid, &a, BPF_ANY);
}

static __always_inline void exit_semget(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct semget_args *a = bpf_map_lookup_elem(&inflight_get, &tid);
	if (!a)
		return;
	if (ret >= 0)
		emit(EVENT_SEM_CREATE, 0, (__s32)ret, a->key, a->nsems, a->flags);
	bpf_map_delete_elem(&inflight_get, &tid);
}

static __always_inline void enter_semctl(const unsigned long *args)
{
	int cmd = (int)args[2] & ~IPC_64;
	if (cmd != IPC_RMID)
		return;
	__s32 semid = (__s32)args[0];
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_update_elem(&inflight_rmid, &tid, &semid, BPF_ANY);
}

static __always_inline void exit_semctl(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__s32 *semid = bpf_map_lookup_elem(&inflight_rmid, &tid);
	if (!semid)
		return;
	if (ret == 0)
		emit(EVENT_SEM_REMOVE, 0, *semid, 0, 0, 0);
	bpf_map_delete_elem(&inflight_rmid, &tid);
}

/* tracepoint and tail_call modes (syscall_tail.h) */
SYSCALL_PROGRAMS(semget, enter_semget, exit_semget)
SYSCALL_PROGRAMS(semctl, enter_semctl, exit_semctl)

/* fentry mode */
SEC("fexit/newary")
int BPF_PROG(newary_fexit, struct ipc_namespace *ns, const struct ipc_params *params, int ret)
{
	if (ret < 0)
		return 0;
	emit(EVENT_SEM_CREATE, ns_inum(ns), ret, BPF_CORE_READ(params, key), BPF_CORE_READ(params, u.nsems),
	     BPF_CORE_READ(params, flg));
	return 0;
}

SEC("fentry/freeary")
int BPF_PROG(freeary_fentry, struct ipc_namespace *ns, struct kern_ipc_perm *ipcp)
{
	emit(EVENT_SEM_REMOVE, ns_inum(ns), BPF_CORE_READ(ipcp, id), 0, 0, 0);
	return 0;
}

/* kprobe mode: kretprobes lose the arguments, so the entry keeps them per thread. */
SEC("kprobe/newary")
int BPF_KPROBE(newary_kprobe, struct ipc_namespace *ns, const struct ipc_params *params)
{
	struct semget_args a = {
		.key = BPF_CORE_READ(params, key),
		.nsems = BPF_CORE_READ(params, u.nsems),
		.flags = BPF_CORE_READ(params, flg),
		.ipc_ns = ns_inum(ns),
	};
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_update_elem(&inflight_get, &tid, &a, BPF_ANY);
	return 0;
}

SEC("kretprobe/newary")
int BPF_KRETPROBE(newary_kretprobe, int ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct semget_args *a = bpf_map_lookup_elem(&inflight_get, &tid);
	if (!a)
		return 0;
	if (ret >= 0)
		emit(EVENT_SEM_CREATE, a->ipc_ns, ret, a->key, a->nsems, a->flags);
	bpf_map_delete_elem(&inflight_get, &tid);
	return 0;
}

SEC("kprobe/freeary")
int BPF_KPROBE(freeary_kprobe, struct ipc_namespace *ns, struct kern_ipc_perm *ipcp)
{
	emit(EVENT_SEM_REMOVE, ns_inum(ns), BPF_CORE_READ(ipcp, id), 0, 0, 0);
	return 0;
}
