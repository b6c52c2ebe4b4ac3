// SPDX-License-Identifier: GPL-2.0
/* cgroup sensor: cgroup v2 directories created and removed, so that userspace can
 * keep a cgroup id -> path index without reading /proc for each event.
 *
 *   tp_btf:     tp_btf/cgroup_{mkdir,rmdir}
 *   tracepoint: cgroup/cgroup_{mkdir,rmdir}
 * Only the default (v2) hierarchy, id 0, matters: bpf_get_current_cgroup_id()
 * reports a cgroup of that hierarchy, also on hybrid v1+v2 hosts.
 */
#include "common.h"

#define CGROUP_PATH_LEN 512

struct cgroup_event {
	struct event_header hdr;
	__u64 id;
	char path[CGROUP_PATH_LEN];
};
/* Referenced so that bpf2go can generate the Go mirror of the record. */
const struct cgroup_event *unused_cgroup_event __attribute__((unused));


static __always_inline void emit(__u16 type, __u64 id, const char *path)
{
	struct cgroup_event *e = reserve_event(sizeof(*e));
	if (!e)
		return;
	fill_header(&e->hdr, type);
	e->id = id;
	bpf_probe_read_kernel_str(e->path, sizeof(e->path), path);
	submit_event(e);
}

static __always_inline void emit_btf(__u16 type, struct cgroup *cgrp, const char *path)
{
	if (BPF_CORE_READ(cgrp, root, hierarchy_id) != 0)
		return;
	emit(type, BPF_CORE_READ(cgrp, kn, id), path);
}

static __always_inline void emit_tp(__u16 type, struct trace_event_raw_cgroup *ctx)
{
	if (ctx->root != 0)
		return;
	/* __data_loc: low 16 bits are the offset of the string from the record start. */
	emit(type, ctx->id, (const char *)ctx + (ctx->__data_loc_path & 0xffff));
}

SEC("tp_btf/cgroup_mkdir")
int BPF_PROG(cgroup_mkdir_btf, struct cgroup *cgrp, const char *path)
{
	emit_btf(EVENT_CGROUP_MKDIR, cgrp, path);
	return 0;
}

SEC("tp_btf/cgroup_rmdir")
int BPF_PROG(cgroup_rmdir_btf, struct cgroup *cgrp, const char *path)
{
	emit_btf(EVENT_CGROUP_RMDIR, cgrp, path);
	return 0;
}

SEC("tracepoint/cgroup/cgroup_mkdir")
int cgroup_mkdir_tp(struct trace_event_raw_cgroup *ctx)
{
	emit_tp(EVENT_CGROUP_MKDIR, ctx);
	return 0;
}

SEC("tracepoint/cgroup/cgroup_rmdir")
int cgroup_rmdir_tp(struct trace_event_raw_cgroup *ctx)
{
	emit_tp(EVENT_CGROUP_RMDIR, ctx);
	return 0;
}
