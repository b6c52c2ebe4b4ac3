/* SPDX-License-Identifier: GPL-2.0 */
/* Shared by every sensor: the event header, the ring buffer and the lost-event
 * counter. Each sensor is its own BPF object, so each gets its own copy of these
 * maps; userspace sums the per-CPU lost counter on scrape. */
#pragma once

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "license.h"

#define TASK_COMM_LEN 16

/* The record type in event_header.type; bpf2go emits it for tracer/ (-type event_type). */
enum event_type {
	EVENT_RENAME_EXDEV = 1,
	EVENT_SIGNAL = 2,
	EVENT_DAEMON_EXIT = 3,
	EVENT_CGROUP_MKDIR = 4,
	EVENT_CGROUP_RMDIR = 5,
	EVENT_SEM_CREATE = 6,
	EVENT_SEM_REMOVE = 7,
	EVENT_VETH_CREATE = 8,
	EVENT_VETH_DELETE = 9,
	EVENT_COPY_UP = 10,
};

/* Referenced so that bpf2go can generate the Go enum. */
const enum event_type *unused_event_type __attribute__((unused));

struct event_header {
	__u64 ts_boot_ns; /* bpf_ktime_get_boot_ns: survives suspend, converted to wall time in userspace */
	__u64 cgroup_id;  /* cgroup v2 id of the current task */
	__u32 pid;        /* tgid */
	__u32 tid;
	__u32 mnt_ns;
	__u32 ipc_ns;
	__u32 net_ns;
	__u16 type;
	__u16 _pad;
	char comm[TASK_COMM_LEN];
};

/* Userspace may resize it before load. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* Ring-buffer reservations that failed: the event is gone, the count is not. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} events_lost SEC(".maps");

static __always_inline void count_lost(void)
{
	__u32 zero = 0;
	__u64 *lost = bpf_map_lookup_elem(&events_lost, &zero);
	if (lost)
		(*lost)++;
}

static __always_inline void *reserve_event(__u64 size)
{
	void *e = bpf_ringbuf_reserve(&events, size, 0);
	if (!e)
		count_lost();
	return e;
}

/* Wakeups are most of what a record costs the reader (a thread woken,
 * goroutines handed events across CPUs), so the reader picks how records wake
 * it, and switches while loaded (tracer/wakeup.go):
 * - reader_polling == 0, at low rates: the kernel's default, a record wakes the
 *   reader when the reader has read everything before it (it may be asleep), so
 *   each event reaches userspace at once;
 * - reader_polling != 0, at high rates: the reader reads the ring on a timer,
 *   and a record wakes it only once the ring holds wake_watermark bytes, so that
 *   a burst cannot fill the ring between two reads.
 * A record whose program read the old value when the reader switched back to
 * waking is drained by the reader's next timed read. */
volatile __u32 reader_polling;

/* Set before load from the ring's size (tracer/sensor.go). */
const volatile __u64 wake_watermark = 64 * 1024;

static __always_inline __u64 wake_flags(void)
{
	if (!reader_polling)
		return 0;
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wake_watermark)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

/* submit_event commits a record made with reserve_event. */
static __always_inline void submit_event(void *e)
{
	bpf_ringbuf_submit(e, wake_flags());
}

/* output_event copies the first size bytes of e into the ring, as one record:
 * for records whose size is known only once they are made (size must be
 * bounded by e's object for the verifier). */
static __always_inline void output_event(void *e, __u64 size)
{
	if (bpf_ringbuf_output(&events, e, size, wake_flags()) < 0)
		count_lost();
}

/* fill_header describes the current task: the one whose action the event reports. */
static __always_inline void fill_header(struct event_header *h, __u16 type)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 id = bpf_get_current_pid_tgid();

	h->ts_boot_ns = bpf_ktime_get_boot_ns();
	h->cgroup_id = bpf_get_current_cgroup_id();
	h->pid = id >> 32;
	h->tid = (__u32)id;
	/* nsproxy is NULL once a task has passed exit_task_namespaces; the reads then yield 0. */
	h->mnt_ns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	h->ipc_ns = BPF_CORE_READ(task, nsproxy, ipc_ns, ns.inum);
	h->net_ns = BPF_CORE_READ(task, nsproxy, net_ns, ns.inum);
	h->type = type;
	h->_pad = 0;
	bpf_get_current_comm(h->comm, sizeof(h->comm));
}

