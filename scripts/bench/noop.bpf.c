// SPDX-License-Identifier: GPL-2.0-only
// The floor of the kproc benchmark: a program that does nothing, attached
// to every tracepoint the process and file probes use, so the cost of the
// tracepoints themselves is told from the cost of what the probes do.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tracepoint")
int picket_noop(void *ctx)
{
	return 0;
}

// The dns benchmark's floor: the same do-nothing, one per cgroup hook the
// packet probe attaches to (scripts/bench/lib/floor.ts attachCgroupFloor).
// 1 lets every packet and every connect/sendmsg through.
SEC("cgroup_skb/egress")
int picket_noop_skb_egress(struct __sk_buff *skb) { return 1; }

SEC("cgroup_skb/ingress")
int picket_noop_skb_ingress(struct __sk_buff *skb) { return 1; }

SEC("cgroup/connect4")
int picket_noop_connect4(struct bpf_sock_addr *ctx) { return 1; }

SEC("cgroup/connect6")
int picket_noop_connect6(struct bpf_sock_addr *ctx) { return 1; }

SEC("cgroup/sendmsg4")
int picket_noop_sendmsg4(struct bpf_sock_addr *ctx) { return 1; }

SEC("cgroup/sendmsg6")
int picket_noop_sendmsg6(struct bpf_sock_addr *ctx) { return 1; }
