// SPDX-License-Identifier: GPL-2.0
/* sem sensor: System V semaphore arrays created by semget(2) and removed by
 * semctl(2, IPC_RMID), so that a leaked array can be traced to its creator
 * (/proc/sysvipc/sem has no creator pid).
 *
 *   tracepoint: syscalls/sys_{enter,exit}_semget and sys_{enter,exit}_semctl.
 *
 * The entry hook keeps the arguments per thread; the exit hook emits a record
 * only for calls that succeeded. semget without IPC_CREAT only looks an array
 * up and is not reported; with IPC_CREAT but without IPC_EXCL it may return an
 * existing array, which userspace tells apart by the semid it already knows.
 */
#include "common.h"

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
	__s32 _pad;
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

static __always_inline void emit(__u16 type, __s32 semid, __s32 key, __s32 nsems, __s32 flags)
{
	struct sem_event *e = reserve_event(sizeof(*e));
	if (!e)
		return;
	fill_header(&e->hdr, type);
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	e->semid = semid;
	e->key = key;
	e->nsems = nsems;
	e->flags = flags;
	e->start_boottime = BPF_CORE_READ(task, group_leader, start_boottime);
	bpf_ringbuf_submit(e, 0);
}

SEC("tracepoint/syscalls/sys_enter_semget")
int semget_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct semget_args a = {
		.key = (__s32)ctx->args[0],
		.nsems = (__s32)ctx->args[1],
		.flags = (__s32)ctx->args[2],
	};
	if (a.key != IPC_PRIVATE && !(a.flags & IPC_CREAT))
		return 0; /* a lookup: creates nothing */
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_update_elem(&inflight_get, &tid, &a, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_semget")
int semget_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct semget_args *a = bpf_map_lookup_elem(&inflight_get, &tid);
	if (!a)
		return 0;
	if (ctx->ret >= 0)
		emit(EVENT_SEM_CREATE, (__s32)ctx->ret, a->key, a->nsems, a->flags);
	bpf_map_delete_elem(&inflight_get, &tid);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_semctl")
int semctl_enter(struct trace_event_raw_sys_enter *ctx)
{
	int cmd = (int)ctx->args[2] & ~IPC_64;
	if (cmd != IPC_RMID)
		return 0;
	__s32 semid = (__s32)ctx->args[0];
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_update_elem(&inflight_rmid, &tid, &semid, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_semctl")
int semctl_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__s32 *semid = bpf_map_lookup_elem(&inflight_rmid, &tid);
	if (!semid)
		return 0;
	if (ctx->ret == 0)
		emit(EVENT_SEM_REMOVE, *semid, 0, 0, 0);
	bpf_map_delete_elem(&inflight_rmid, &tid);
	return 0;
}
