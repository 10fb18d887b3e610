// SPDX-License-Identifier: GPL-2.0-only
/*
 * Picket file telemetry: opens with write intent, unlink (and rmdir), rename,
 * chmod and memfd_create into one ring (FILE_EVENTS), from syscall tracepoints only
 * (no kprobes, no BTF: offsets from tracefs through cfg).
 *
 * Why enter and exit. The outcome (an fd, or -errno) exists only at exit,
 * and a path is read best at exit too: the kernel has just copied it
 * (getname), so its page is present, whereas at enter a path in a page not
 * yet touched cannot be read from a tracepoint, which may not fault. So the
 * enter handler filters and parks the user pointers per thread, the exit
 * handler reads them and emits:
 *
 *   openat(dfd, path, flags, mode)   [sys_enter_openat]  read-only? done. else pending[tid] = args
 *   ...                              [sys_exit_openat]   pending[tid] + ret -> record
 *
 * One exit program serves every sys_exit_* tracepoint (their layout is one);
 * the parked __syscall_nr must match the exit's, so an entry left over from
 * another call is never taken for this one. The loader attaches the exits
 * before the enters, so no call is parked without its exit being watched.
 *
 * Filtering happens here, not in user space: opens without write intent
 * (O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_APPEND) are left at enter, the bulk
 * of all opens. openat2 hides its flags in a struct that is read at exit.
 *
 * Path rules (FILE_PREFIXES, an LPM trie the loader fills after load):
 *   - a rule is a byte prefix of an absolute path with an action, EMIT or
 *     DROP; the longest rule that prefixes the path decides; a rule ending in
 *     NUL matches that one exact path; with no rule matching, path_default;
 *   - only the first PICKET_PREFIX_MAX bytes of a path take part;
 *   - paths are compared as the process passed them, unresolved: a relative
 *     path (resolved against dirfd or the cwd only in user space) and a path
 *     that could not be read are always emitted, so a rule can only hide what
 *     it can see;
 *   - a rename is emitted when either of its paths is; a memfd name is not a
 *     path and is always emitted.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "events.h"
#include "picket.bpf.h"

#define O_WRONLY 01
#define O_RDWR 02
#define O_CREAT 0100
#define O_TRUNC 01000
#define O_APPEND 02000
#define WRITE_INTENT (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND)
#define AT_REMOVEDIR 0x200

char LICENSE[] SEC("license") = "GPL";

const volatile struct picket_file_config cfg = {};

PICKET_RINGBUF(FILE_EVENTS, 4 << 20);
PICKET_COUNTERS(PICKET_FCNT_MAX)

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct picket_path_key);
	__type(value, __u32); /* enum picket_path_action */
} FILE_PREFIXES SEC(".maps");

/* A call between enter and exit. */
struct file_args {
	__u64 path;
	__u64 path2;
	__u64 how;
	__u64 flags;
	__s32 dfd;
	__s32 dfd2;
	__u32 mode;
	__u32 nr;
	__u32 syscall;
	__u32 pad;
};

/* Parked calls by thread id: a thread is in one syscall at a time. LRU so
 * that an entry whose exit never came (the probe detached in between) ages
 * out instead of leaking. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct file_args);
} pending SEC(".maps");

/* Where a record is built: too large for the stack, and emitted with only
 * the bytes its paths use. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct picket_file_event);
} scratch SEC(".maps");

/* struct open_how (include/uapi/linux/openat2.h) */
struct open_how {
	__u64 flags;
	__u64 mode;
	__u64 resolve;
};

static __always_inline __u64 arg(const __u8 *buf, __u16 off)
{
	return off == PICKET_OFF_ABSENT ? 0 : sys_u64(buf, off);
}

/* Syscall arguments are longs in the record; an int (a dirfd) is the low
 * half, which on the little-endian targets we build for comes first. */
static __always_inline __s32 dirfd_arg(const __u8 *buf, __u16 off)
{
	return off == PICKET_OFF_ABSENT ? PICKET_AT_FDCWD : (__s32)sys_u32(buf, off);
}

static __always_inline int file_enter(void *ctx, const __u32 sys)
{
	const volatile struct picket_sys_tp *l = &cfg.sys[sys];
	__u8 buf[PICKET_SYS_TP_MAX] = {};
	struct file_args a = {};
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	if (picket_ignored(cfg.ignore_tgid) ||
	    !picket_copy_small(buf, l->record_size, ctx, &counters, PICKET_FCNT_READ_FAIL))
		return 0;
	a.flags = arg(buf, l->flags);
	if ((sys == PICKET_FSYS_OPENAT || sys == PICKET_FSYS_OPEN) && !(a.flags & WRITE_INTENT))
		return 0;
	/* the legacy calls' implied flags, as their *at successors spell them */
	if (sys == PICKET_FSYS_CREAT)
		a.flags = O_CREAT | O_WRONLY | O_TRUNC;
	if (sys == PICKET_FSYS_RMDIR)
		a.flags = AT_REMOVEDIR;
	a.path = arg(buf, l->path);
	a.path2 = arg(buf, l->path2);
	a.how = arg(buf, l->how);
	a.dfd = dirfd_arg(buf, l->dfd);
	a.dfd2 = dirfd_arg(buf, l->dfd2);
	a.mode = arg(buf, l->mode);
	a.nr = sys_u32(buf, l->nr);
	a.syscall = sys;
	if (bpf_map_update_elem(&pending, &tid, &a, BPF_ANY))
		count(PICKET_FCNT_PENDING_FAIL);
	return 0;
}

#define ENTER(name, sys)                                   \
	SEC("tracepoint/syscalls/sys_enter_" #name)        \
	int picket_enter_##name(void *ctx)                 \
	{                                                  \
		return file_enter(ctx, sys);               \
	}

ENTER(openat, PICKET_FSYS_OPENAT)
ENTER(openat2, PICKET_FSYS_OPENAT2)
ENTER(open, PICKET_FSYS_OPEN)
ENTER(creat, PICKET_FSYS_CREAT)
ENTER(unlinkat, PICKET_FSYS_UNLINKAT)
ENTER(unlink, PICKET_FSYS_UNLINK)
ENTER(rmdir, PICKET_FSYS_RMDIR)
ENTER(renameat2, PICKET_FSYS_RENAMEAT2)
ENTER(renameat, PICKET_FSYS_RENAMEAT)
ENTER(rename, PICKET_FSYS_RENAME)
ENTER(fchmodat, PICKET_FSYS_FCHMODAT)
ENTER(fchmodat2, PICKET_FSYS_FCHMODAT2)
ENTER(chmod, PICKET_FSYS_CHMOD)
ENTER(memfd_create, PICKET_FSYS_MEMFD_CREATE)

static __always_inline __u16 read_path(__u8 *dst, __u64 src, __u8 *pflags, __u8 cut_bit)
{
	long n = bpf_probe_read_user_str(dst, PICKET_PATH_MAX, (const void *)src);

	if (n <= 0) {
		dst[0] = 0;
		*pflags |= PICKET_FILE_PATH_FAULT;
		return 0;
	}
	if (n == PICKET_PATH_MAX && picket_user_str_cut((const void *)src, PICKET_PATH_MAX))
		*pflags |= cut_bit;
	return n - 1;
}

static __always_inline int path_emitted(const __u8 *path, __u16 len)
{
	struct picket_path_key key;
	__u32 n = len + 1, *action, act;

	if (path[0] != '/')
		return 1;
	if (n > PICKET_PREFIX_MAX)
		n = PICKET_PREFIX_MAX;
	key.prefixlen = n * 8;
	__builtin_memcpy(key.data, path, PICKET_PREFIX_MAX);
	action = bpf_map_lookup_elem(&FILE_PREFIXES, &key);
	act = action ? *action : cfg.path_default;
	return act != PICKET_PATH_DROP;
}

static __always_inline __u16 kind_of(__u32 sys)
{
	switch (sys) {
	case PICKET_FSYS_UNLINKAT:
	case PICKET_FSYS_UNLINK:
	case PICKET_FSYS_RMDIR:
		return PICKET_EV_FILE_UNLINK;
	case PICKET_FSYS_RENAMEAT2:
	case PICKET_FSYS_RENAMEAT:
	case PICKET_FSYS_RENAME:
		return PICKET_EV_FILE_RENAME;
	case PICKET_FSYS_FCHMODAT:
	case PICKET_FSYS_FCHMODAT2:
	case PICKET_FSYS_CHMOD:
		return PICKET_EV_FILE_CHMOD;
	case PICKET_FSYS_MEMFD_CREATE:
		return PICKET_EV_FILE_MEMFD;
	default:
		return PICKET_EV_FILE_OPEN;
	}
}

/* The loader attaches this one program to the sys_exit_* of every hooked call. */
SEC("tracepoint/syscalls/sys_exit_openat")
int picket_file_exit(void *ctx)
{
	__u8 buf[PICKET_SYS_TP_MAX] = {};
	struct picket_file_event *e;
	struct file_args a, *p;
	struct open_how how;
	__u32 tid = (__u32)bpf_get_current_pid_tgid(), zero = 0, size;
	__u16 kind;
	int emitted;

	p = bpf_map_lookup_elem(&pending, &tid);
	if (!p)
		return 0;
	a = *p;
	bpf_map_delete_elem(&pending, &tid);
	if (!picket_copy_small(buf, cfg.exit_size, ctx, &counters, PICKET_FCNT_READ_FAIL) ||
	    sys_u32(buf, cfg.exit_nr) != a.nr)
		return 0;
	if (a.syscall == PICKET_FSYS_OPENAT2) {
		if (bpf_probe_read_user(&how, sizeof(how), (const void *)a.how) == 0) {
			a.flags = how.flags;
			a.mode = how.mode;
		}
		if (!(a.flags & WRITE_INTENT))
			return 0;
	}
	e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return 0;
	kind = kind_of(a.syscall);
	e->path_flags = 0;
	e->path_len = read_path(e->path, a.path, &e->path_flags, PICKET_FILE_PATH_TRUNCATED);
	if (kind == PICKET_EV_FILE_RENAME) {
		e->path2_len = read_path(e->path2, a.path2, &e->path_flags, PICKET_FILE_PATH2_TRUNCATED);
		emitted = path_emitted(e->path, e->path_len) || path_emitted(e->path2, e->path2_len);
		size = __builtin_offsetof(struct picket_file_event, path2) + ((e->path2_len + 8) & ~7u);
	} else {
		e->path2_len = 0;
		emitted = kind == PICKET_EV_FILE_MEMFD || path_emitted(e->path, e->path_len);
		size = __builtin_offsetof(struct picket_file_event, path) + ((e->path_len + 8) & ~7u);
	}
	if (!emitted) {
		count(PICKET_FCNT_FILTERED);
		return 0;
	}
	if (size > sizeof(*e))
		size = sizeof(*e);
	picket_fill_header(&e->hdr, kind, size);
	picket_fill_task(&e->task);
	e->ret = (__s64)sys_u64(buf, cfg.exit_ret);
	e->flags = a.flags;
	e->dirfd = a.dfd;
	e->dirfd2 = a.dfd2;
	e->mode = a.mode;
	e->syscall = a.syscall;
	__builtin_memset(e->pad0, 0, sizeof(e->pad0));
	count(PICKET_FCNT_MATCHED);
	if (bpf_ringbuf_output(&FILE_EVENTS, e, size, picket_wakeup(&FILE_EVENTS, cfg.wakeup_bytes, 0)))
		count(PICKET_FCNT_RESERVE_FAIL);
	return 0;
}
