// SPDX-License-Identifier: GPL-2.0
/* signal sensor: fatal-by-default signals generated for watched daemons
 * (dockerd, containerd, ...) and the exit of those daemons.
 *
 *   tp_btf:     tp_btf/signal_generate + tp_btf/sched_process_exit; reads the
 *               target's signal disposition from its sighand.
 *   tracepoint: signal/signal_generate + sched/sched_process_exit; the classic
 *               record has no task pointer, so the disposition is only known
 *               when the kernel reports the signal as ignored.
 */
#include "common.h"

/* An enum, so that bpf2go emits it for tracer/signal.go. */
enum watch_size {
	MAX_WATCH = 16,
};
const enum watch_size *unused_watch_size __attribute__((unused));

/* Signals whose default action terminates the process: everything except
 * SIGCHLD(17), SIGCONT(18), SIGSTOP(19), SIGTSTP(20), SIGTTIN(21), SIGTTOU(22),
 * SIGURG(23) and SIGWINCH(28). Bit n-1 stands for signal n; RT signals 32..64 kill too. */
#define FATAL_MASK (~((1ULL << 16) | (1ULL << 17) | (1ULL << 18) | (1ULL << 19) | (1ULL << 20) | \
		      (1ULL << 21) | (1ULL << 22) | (1ULL << 27)))

enum disposition {
	DISP_UNKNOWN = 0,
	DISP_DEFAULT = 1,
	DISP_IGNORED = 2,
	DISP_HANDLED = 3,
};
/* Referenced so that bpf2go can generate the Go enum. */
const enum disposition *unused_disposition __attribute__((unused));

#define TRACE_SIGNAL_IGNORED 1

struct comm_pattern {
	char comm[TASK_COMM_LEN];
	__u32 len;    /* bytes to compare */
	__u32 prefix; /* 1: match comm starting with comm[0:len] */
};

/* Set by userspace before load (--watch-comm). */
const volatile struct comm_pattern watch[MAX_WATCH] = {};
const volatile __u32 watch_count = 0;

struct signal_event {
	struct event_header hdr;
	__s32 signo;
	__s32 result;
	__u32 target_pid;
	__u32 target_tgid;
	__u32 disposition;
	__u32 group;
	char target_comm[TASK_COMM_LEN];
};
/* Referenced so that bpf2go can generate the Go mirror of the record. */
const struct signal_event *unused_signal_event __attribute__((unused));


struct exit_event {
	struct event_header hdr;
	__s32 exit_code; /* raw wait status: (code << 8) | signal | 0x80 if core dumped */
	__u32 _pad;
};
/* Referenced so that bpf2go can generate the Go mirror of the record. */
const struct exit_event *unused_exit_event __attribute__((unused));


static __always_inline bool watched(const char *comm)
{
	for (__u32 i = 0; i < MAX_WATCH; i++) {
		if (i >= watch_count)
			return false;
		__u32 len = watch[i].len;
		bool match = true;
		for (__u32 j = 0; j < TASK_COMM_LEN; j++) {
			if (j >= len)
				break;
			if (comm[j] != watch[i].comm[j]) {
				match = false;
				break;
			}
		}
		/* An exact pattern must also end where the comm ends. */
		if (match && !watch[i].prefix && len < TASK_COMM_LEN && comm[len] != 0)
			match = false;
		if (match)
			return true;
	}
	return false;
}

static __always_inline bool fatal_by_default(int sig)
{
	return sig >= 1 && sig <= 64 && (FATAL_MASK & (1ULL << (sig - 1)));
}

static __always_inline void emit_signal(int sig, int result, int group, __u32 target_pid,
					__u32 target_tgid, const char *target_comm, __u32 disposition)
{
	struct signal_event *e = reserve_event(sizeof(*e));
	if (!e)
		return;
	fill_header(&e->hdr, EVENT_SIGNAL);
	e->signo = sig;
	e->result = result;
	e->group = group;
	e->target_pid = target_pid;
	e->target_tgid = target_tgid;
	e->disposition = disposition;
	__builtin_memcpy(e->target_comm, target_comm, TASK_COMM_LEN);
	submit_event(e);
}

SEC("tp_btf/signal_generate")
int BPF_PROG(signal_generate_btf, int sig, struct kernel_siginfo *info, struct task_struct *task,
	     int group, int result)
{
	char comm[TASK_COMM_LEN];

	if (!fatal_by_default(sig))
		return 0;
	BPF_CORE_READ_STR_INTO(&comm, task, comm);
	if (!watched(comm))
		return 0;

	__u32 disposition = DISP_UNKNOWN;
	struct sighand_struct *sighand = BPF_CORE_READ(task, sighand);
	unsigned long handler;
	__u32 idx = (sig - 1) & 63;
	if (sighand && !bpf_core_read(&handler, sizeof(handler), &sighand->action[idx].sa.sa_handler)) {
		if (handler == 0)
			disposition = DISP_DEFAULT;
		else if (handler == 1)
			disposition = DISP_IGNORED;
		else
			disposition = DISP_HANDLED;
	}
	emit_signal(sig, result, group, BPF_CORE_READ(task, pid), BPF_CORE_READ(task, tgid), comm,
		    disposition);
	return 0;
}

SEC("tracepoint/signal/signal_generate")
int signal_generate_tp(struct trace_event_raw_signal_generate *ctx)
{
	char comm[TASK_COMM_LEN];
	int sig = ctx->sig;

	if (!fatal_by_default(sig))
		return 0;
	/* The verifier forbids loads through an offset ctx pointer; copy with a helper. */
	bpf_probe_read_kernel(comm, sizeof(comm), ctx->comm);
	if (!watched(comm))
		return 0;
	emit_signal(sig, ctx->result, ctx->group, ctx->pid, 0, comm,
		    ctx->result == TRACE_SIGNAL_IGNORED ? DISP_IGNORED : DISP_UNKNOWN);
	return 0;
}

/* include/linux/sched/signal.h; the value has not changed since 2.6. */
#define SIGNAL_GROUP_EXIT 0x00000004

struct exit_key {
	__u64 leader_start_ns; /* with the tgid, names one process even across pid reuse */
	__u32 tgid;
	__u32 _pad;
};

/* Processes already reported. Threads of a group exit concurrently and each
 * may see live == 0 (a thread that decremented first can reach the
 * tracepoint after the last one did); the first insert wins. LRU keeps it
 * bounded; only watched daemons are ever inserted. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 256);
	__type(key, struct exit_key);
	__type(value, __u8);
} exit_reported SEC(".maps");

/* The exiting task is current. A process dies when its last thread exits, not
 * when its leader does: a leader may exit first (pthread_exit) while the other
 * threads run on, and a non-leader exec kills the old leader in de_thread.
 * do_exit decrements signal->live before trace_sched_process_exit (6.1, 6.12
 * and 6.18 alike: the tests check it), so live == 0 here means the group is dead. */
static __always_inline void exit_current(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct signal_struct *sig = BPF_CORE_READ(task, signal);
	char comm[TASK_COMM_LEN];

	if (!sig || BPF_CORE_READ(sig, live.counter) != 0)
		return;
	/* The process name is the leader's: a thread may have renamed itself. */
	struct task_struct *leader = BPF_CORE_READ(task, group_leader);
	BPF_CORE_READ_STR_INTO(&comm, leader, comm);
	if (!watched(comm))
		return;
	struct exit_key key = {
		.leader_start_ns = BPF_CORE_READ(leader, start_time),
		.tgid = BPF_CORE_READ(task, tgid),
	};
	__u8 one = 1;
	if (bpf_map_update_elem(&exit_reported, &key, &one, BPF_NOEXIST))
		return; /* another thread of this process reported it */
	struct exit_event *e = reserve_event(sizeof(*e));
	if (!e)
		return;
	fill_header(&e->hdr, EVENT_DAEMON_EXIT);
	__builtin_memcpy(e->hdr.comm, comm, TASK_COMM_LEN);
	/* What wait() reports to the parent (wait_task_zombie): the group's code
	 * after exit_group or a fatal signal, else the leader's own exit code. */
	if (BPF_CORE_READ(sig, flags) & SIGNAL_GROUP_EXIT)
		e->exit_code = BPF_CORE_READ(sig, group_exit_code);
	else
		e->exit_code = BPF_CORE_READ(leader, exit_code);
	e->_pad = 0;
	submit_event(e);
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(process_exit_btf)
{
	exit_current();
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int process_exit_tp(void *ctx)
{
	exit_current();
	return 0;
}
