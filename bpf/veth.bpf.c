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
 */
#include "common.h"

#define IFNAMSIZ 16

struct veth_event {
	struct event_header hdr;
	__s32 ifindex;
	__s32 ret;
	__u32 dev_netns; /* inode of the device's network namespace */
	__u32 _pad;
	char name[IFNAMSIZ];
};
/* Referenced so that bpf2go can generate the Go mirror of the record. */
const struct veth_event *unused_veth_event __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} inflight SEC(".maps");

static __always_inline void emit(__u16 type, struct net_device *dev, long ret)
{
	struct veth_event *e = reserve_event(sizeof(*e));
	if (!e)
		return;
	fill_header(&e->hdr, type);
	e->ifindex = BPF_CORE_READ(dev, ifindex);
	e->ret = ret;
	e->dev_netns = BPF_CORE_READ(dev, nd_net.net, ns.inum);
	e->_pad = 0;
	bpf_probe_read_kernel_str(e->name, sizeof(e->name), dev->name);
	bpf_ringbuf_submit(e, 0);
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
