// SPDX-License-Identifier: GPL-2.0
/* veth sensor: veth pairs created (veth_newlink) and deleted (veth_dellink), with
 * the process that asked, so that a veth left behind names its creator. The
 * authoritative state (peer, namespace, bridge) comes from rtnetlink in userspace.
 *
 *   fentry: fexit/veth_newlink (ifindex is known only once it returned),
 *           fentry/veth_dellink
 *   kprobe: kprobe+kretprobe/veth_newlink, kprobe/veth_dellink
 *
 * veth_newlink's signature changed in 6.15 (struct rtnl_newlink_params):
 *   <= 6.14: (struct net *src_net, struct net_device *dev, struct nlattr *tb[],
 *             struct nlattr *data[], struct netlink_ext_ack *extack)
 *   >= 6.15: (struct net_device *dev, struct rtnl_newlink_params *params,
 *             struct netlink_ext_ack *extack)
 * bpf_core_type_exists picks the argument slot at load time. veth is a module on
 * Debian's 6.1 and 6.12; its functions are then found in /sys/kernel/btf/veth.
 *
 * Each record also names the peer (struct veth_priv's RCU pointer `peer`, set
 * once veth_newlink succeeded and cleared only inside veth_dellink) and says
 * whether a kernel thread made the call: when a network namespace dies,
 * cleanup_net deletes its veths from a kworker, so the header then names the
 * kworker and the peer is the host-side device that went away with it.
 */
#include "common.h"
#include "arch.h"

#define IFNAMSIZ 16
#define NETDEV_ALIGN 32
#define PF_KTHREAD 0x00200000

struct veth_event {
	struct event_header hdr;
	__s32 ifindex;
	__s32 ret;
	__u32 dev_netns; /* inode of the device's network namespace */
	__u32 kthread;   /* 1: the current task is a kernel thread (PF_KTHREAD) */
	char name[IFNAMSIZ];
	__s32 peer_ifindex; /* 0: no peer (already gone) */
	__u32 peer_netns;
	char peer_name[IFNAMSIZ];
};
/* Referenced so that bpf2go can generate the Go mirror of the record. */
const struct veth_event *unused_veth_event __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} inflight SEC(".maps");

/* 6.12+ declares the private area as a flexible array at the end of
 * struct net_device (u8 priv[]); before, netdev_priv() was
 * dev + ALIGN(sizeof(struct net_device), NETDEV_ALIGN). */
struct net_device___priv {
	u8 priv[0];
} __attribute__((preserve_access_index));

/* veth_priv's first member is `struct net_device __rcu *peer` in every kernel
 * since veth was written; veth_priv lives in the module's BTF, which CO-RE
 * does not search here, so it is read at offset 0 of netdev_priv(dev). */
static __always_inline struct net_device *veth_peer(struct net_device *dev)
{
	__u64 off;
	if (bpf_core_field_exists(struct net_device___priv, priv))
		off = bpf_core_field_offset(struct net_device___priv, priv);
	else
		off = (bpf_core_type_size(struct net_device) + NETDEV_ALIGN - 1) &
		      ~(__u64)(NETDEV_ALIGN - 1);
	struct net_device *peer = NULL;
	bpf_probe_read_kernel(&peer, sizeof(peer), (void *)dev + off);
	return peer;
}

static __always_inline void emit(__u16 type, struct net_device *dev, long ret)
{
	struct veth_event *e = reserve_event(sizeof(*e));
	if (!e)
		return;
	fill_header(&e->hdr, type);
	e->ifindex = BPF_CORE_READ(dev, ifindex);
	e->ret = ret;
	e->dev_netns = BPF_CORE_READ(dev, nd_net.net, ns.inum);
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	e->kthread = (BPF_CORE_READ(task, flags) & PF_KTHREAD) ? 1 : 0;
	bpf_probe_read_kernel_str(e->name, sizeof(e->name), dev->name);
	struct net_device *peer = veth_peer(dev);
	if (peer) {
		e->peer_ifindex = BPF_CORE_READ(peer, ifindex);
		e->peer_netns = BPF_CORE_READ(peer, nd_net.net, ns.inum);
		bpf_probe_read_kernel_str(e->peer_name, sizeof(e->peer_name), peer->name);
	} else {
		e->peer_ifindex = 0;
		e->peer_netns = 0;
		e->peer_name[0] = 0;
	}
	submit_event(e);
}

static __always_inline int newlink_params_api(void)
{
	return bpf_core_type_exists(struct rtnl_newlink_params);
}

/* fentry mode */
SEC("fexit/veth_newlink")
int veth_newlink_fexit(__u64 *ctx)
{
	/* bpf_get_func_arg checks the index at run time: a direct ctx[i] read of an
	 * argument the other signature lacks would be refused by the verifier. */
	__u64 dev = 0, ret = 0;
	if (bpf_get_func_arg(ctx, newlink_params_api() ? 0 : 1, &dev) < 0)
		return 0;
	if (bpf_get_func_ret(ctx, &ret) < 0)
		return 0;
	if ((int)ret == 0)
		emit(EVENT_VETH_CREATE, (struct net_device *)dev, 0);
	return 0;
}

SEC("fentry/veth_dellink")
int BPF_PROG(veth_dellink_fentry, struct net_device *dev, struct list_head *head)
{
	emit(EVENT_VETH_DELETE, dev, 0);
	return 0;
}

/* kprobe mode */
SEC("kprobe/veth_newlink")
int veth_newlink_kprobe(struct pt_regs *ctx)
{
	/* Both reads happen at fixed offsets: the verifier refuses a ctx pointer
	 * moved by a computed offset, which clang would make of a conditional read. */
	__u64 arg0 = PT_REGS_PARM1(ctx);
	__u64 arg1 = PT_REGS_PARM2(ctx);
	barrier_var(arg0);
	barrier_var(arg1);
	__u64 dev = newlink_params_api() ? arg0 : arg1;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	bpf_map_update_elem(&inflight, &tid, &dev, BPF_ANY);
	return 0;
}

SEC("kretprobe/veth_newlink")
int BPF_KRETPROBE(veth_newlink_kretprobe, int ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 *dev = bpf_map_lookup_elem(&inflight, &tid);
	if (!dev)
		return 0;
	if (ret == 0)
		emit(EVENT_VETH_CREATE, (struct net_device *)*dev, ret);
	bpf_map_delete_elem(&inflight, &tid);
	return 0;
}

SEC("kprobe/veth_dellink")
int BPF_KPROBE(veth_dellink_kprobe, struct net_device *dev)
{
	emit(EVENT_VETH_DELETE, dev, 0);
	return 0;
}
