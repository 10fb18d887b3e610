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
