/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What every Picket BPF program does alike: count, fill the common header,
 * pick the ring wakeup, and read fields of a tracepoint record copied to the
 * stack. Include after <bpf/bpf_helpers.h> and "events.h".
 */
#ifndef PICKET_BPF_H
#define PICKET_BPF_H

/* A ring (max_entries resized by the loader) and the per-CPU counters
 * every program keeps, indexed by its enum picket_*counter, with count(idx)
 * to bump one. */
#define PICKET_RINGBUF(name, bytes)                      \
	struct {                                         \
		__uint(type, BPF_MAP_TYPE_RINGBUF);      \
		__uint(max_entries, bytes);              \
	} name SEC(".maps")

#define PICKET_COUNTERS(n)                               \
	struct {                                         \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); \
		__uint(max_entries, n);                  \
		__type(key, __u32);                      \
		__type(value, __u64);                    \
	} counters SEC(".maps");                         \
	static __always_inline void count(__u32 idx)     \
	{                                                \
		picket_count(&counters, idx);            \
	}

static __always_inline void picket_count(void *counters, __u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(counters, &idx);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline void picket_fill_header(struct picket_event_header *h, __u16 kind, __u16 size)
{
	__u64 id = bpf_get_current_pid_tgid();

	h->kind = kind;
	h->size = size;
	h->cpu = bpf_get_smp_processor_id();
	h->boot_ns = bpf_ktime_get_boot_ns();
	h->pid = (__u32)id;
	h->tgid = id >> 32;
	bpf_get_current_comm(&h->comm, sizeof(h->comm));
}

static __always_inline void picket_fill_task(struct picket_task_info *t)
{
	__u64 ug = bpf_get_current_uid_gid();

	t->cgroup_id = bpf_get_current_cgroup_id();
	t->uid = (__u32)ug;
	t->gid = ug >> 32;
}

/* Wakeups are what cost the monitored host most: none per record, one once
 * the ring holds wakeup_bytes, and one for the first record into an empty
 * ring. That one lets an idle consumer sleep in epoll until there is work
 * (instead of draining an empty ring on a timer); a busy consumer drains on
 * its timer and is not waiting in epoll, so a storm costs a wakeup per drain,
 * not per record. `self` is the bytes this record already holds in the ring:
 * its size after bpf_ringbuf_reserve (the ring counts it, with its 8-byte
 * header, rounded to 8), 0 before bpf_ringbuf_output. */
static __always_inline __u64 picket_wakeup(void *ring, __u32 wakeup_bytes, __u32 self)
{
	__u64 avail = bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA);
	__u64 own = self ? (self + 8 + 7) & ~7ULL : 0;

	return avail >= wakeup_bytes || avail <= own ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

/* Is the current task in the process the loader asked to leave out? */
static __always_inline int picket_ignored(__u32 ignore_tgid)
{
	return ignore_tgid && (bpf_get_current_pid_tgid() >> 32) == ignore_tgid;
}

/*
 * Small tracepoint records (syscall and sched tracepoints): copied whole to a
 * PICKET_SYS_TP_MAX stack buffer, because the verifier refuses ctx loads at
 * offsets from .rodata. Those offsets are frozen constants, so every bound
 * below is decided at load.
 */
static __always_inline int picket_copy_small(__u8 *buf, __u16 size, void *ctx, void *counters, __u32 read_fail)
{
	if (size == 0 || size > PICKET_SYS_TP_MAX)
		return 0;
	if (bpf_probe_read_kernel(buf, size, ctx)) {
		picket_count(counters, read_fail);
		return 0;
	}
	return 1;
}

static __always_inline __u64 sys_u64(const __u8 *buf, __u16 off)
{
	__u64 v = 0;

	if (off <= PICKET_SYS_TP_MAX - 8)
		__builtin_memcpy(&v, buf + off, 8);
	return v;
}

static __always_inline __u32 sys_u32(const __u8 *buf, __u16 off)
{
	__u32 v = 0;

	if (off <= PICKET_SYS_TP_MAX - 4)
		__builtin_memcpy(&v, buf + off, 4);
	return v;
}

static __always_inline __u8 sys_u8(const __u8 *buf, __u16 off)
{
	return off < PICKET_SYS_TP_MAX ? buf[off] : 0;
}

/*
 * A `__data_loc char[]` field: a u32 whose low 16 bits are the string's
 * offset from the start of the record and high 16 bits its length. Copies
 * the string into dst (cap bytes) and returns its strlen; *cut is set when
 * the string did not fit.
 */
static __always_inline __u16 picket_read_loc_str(void *ctx, const __u8 *buf, __u16 loc_off, __u8 *dst, __u32 cap, int *cut)
{
	__u32 loc = sys_u32(buf, loc_off);
	long n;

	*cut = (loc >> 16) > cap;
	n = bpf_probe_read_kernel_str(dst, cap, (char *)ctx + (loc & 0xffff));
	if (n <= 0) {
		dst[0] = 0;
		return 0;
	}
	return n - 1;
}

/* Was the user string at src longer than the n - 1 bytes read_user_str kept? */
static __always_inline int picket_user_str_cut(const void *src, __u32 n)
{
	char c = 0;

	return bpf_probe_read_user(&c, 1, (const char *)src + n - 1) == 0 && c != 0;
}

#endif /* PICKET_BPF_H */
