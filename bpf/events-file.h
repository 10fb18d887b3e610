/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The file class (FILE_EVENTS, file.bpf.c); mirror: bpf/abi-file.ts.
 * bpf/events.h includes it after the common part (the header, the kinds,
 * the task info); programs include events.h, never this on its own.
 */
#ifndef PICKET_EVENTS_FILE_H
#define PICKET_EVENTS_FILE_H

#ifndef PICKET_EVENTS_H
#error "include events.h: it includes this after the common part"
#endif

/* The syscalls file.bpf.c hooks: picket_file_event.syscall, and the index
 * into picket_file_config.sys. */
enum picket_file_syscall {
	PICKET_FSYS_OPENAT = 0,
	PICKET_FSYS_OPENAT2,
	PICKET_FSYS_OPEN,         /* the legacy calls exist on x86_64, not on arm64 */
	PICKET_FSYS_CREAT,
	PICKET_FSYS_UNLINKAT,
	PICKET_FSYS_UNLINK,
	PICKET_FSYS_RMDIR,        /* an unlink record with flags AT_REMOVEDIR */
	PICKET_FSYS_RENAMEAT2,
	PICKET_FSYS_RENAMEAT,
	PICKET_FSYS_RENAME,
	PICKET_FSYS_FCHMODAT,
	PICKET_FSYS_FCHMODAT2,    /* 6.6+ */
	PICKET_FSYS_CHMOD,
	PICKET_FSYS_MEMFD_CREATE,
	PICKET_FSYS_MAX,
};

/* picket_file_event.path_flags */
#define PICKET_FILE_PATH_TRUNCATED 0x01
#define PICKET_FILE_PATH2_TRUNCATED 0x02
#define PICKET_FILE_PATH_FAULT 0x04   /* a path pointer could not be read (the call likely failed with EFAULT) */

#define PICKET_AT_FDCWD (-100)

/*
 * One file operation, emitted at syscall exit. Paths are as the process
 * passed them: a relative one is relative to dirfd (AT_FDCWD: the cwd), for
 * user space to resolve. Records are variable-sized: hdr.size ends after
 * path (path2 for a rename) and its NUL, rounded up to 8.
 */
struct picket_file_event {
	struct picket_event_header hdr;
	struct picket_task_info task;
	__s64 ret;           /* the syscall's return: an fd, 0, or -errno */
	__u64 flags;         /* open flags (openat2's how.flags; creat's implied ones); unlinkat (rmdir: AT_REMOVEDIR), renameat2, fchmodat2, memfd_create flags */
	__s32 dirfd;         /* PICKET_AT_FDCWD for calls without one */
	__s32 dirfd2;        /* rename: the new name's dirfd */
	__u32 mode;          /* open/creat (with O_CREAT) and chmod mode */
	__u16 path_len;      /* strlen(path) */
	__u16 path2_len;     /* strlen(path2): rename only */
	__u8 syscall;        /* enum picket_file_syscall */
	__u8 path_flags;     /* PICKET_FILE_PATH_* */
	__u8 pad0[6];
	__u8 path[PICKET_PATH_MAX];  /* memfd_create: the name */
	__u8 path2[PICKET_PATH_MAX]; /* rename: the new name */
};

enum picket_file_counter {
	PICKET_FCNT_MATCHED = 0,    /* passed every filter and should be emitted */
	PICKET_FCNT_RESERVE_FAIL,   /* ... of which the ring had no room (dropped) */
	PICKET_FCNT_FILTERED,       /* dropped by the path prefix rules */
	PICKET_FCNT_PENDING_FAIL,   /* the enter handler could not park the arguments (map full) */
	PICKET_FCNT_READ_FAIL,      /* bpf_probe_read_kernel of a tracepoint record failed */
	PICKET_FCNT_MAX,
};

/* Offsets in one syscalls:sys_enter_* record; PICKET_OFF_ABSENT for
 * arguments the call does not take. record_size 0: not attached. */
struct picket_sys_tp {
	__u16 record_size;
	__u16 nr;        /* __syscall_nr */
	__u16 dfd;
	__u16 path;
	__u16 dfd2;
	__u16 path2;
	__u16 flags;
	__u16 mode;
	__u16 how;       /* openat2: struct open_how __user * */
	__u16 pad0;
};

/* What a path prefix rule does (FILE_PREFIXES values, path_default). */
enum picket_path_action {
	PICKET_PATH_EMIT = 1,
	PICKET_PATH_DROP = 2,
};

#define PICKET_PREFIX_MAX 64

/* FILE_PREFIXES key (an LPM trie): prefixlen is in bits. */
struct picket_path_key {
	__u32 prefixlen;
	__u8 data[PICKET_PREFIX_MAX];
};

struct picket_file_config {
	struct picket_sys_tp sys[PICKET_FSYS_MAX]; /* indexed by enum picket_file_syscall */
	__u16 exit_size;     /* syscalls:sys_exit_*: one layout for all */
	__u16 exit_nr;
	__u16 exit_ret;
	__u16 pad0;
	__u32 wakeup_bytes;
	__u32 ignore_tgid;   /* drop this process's own file operations */
	__u8 path_default;   /* enum picket_path_action for a path no rule matches */
	__u8 pad1[3];
};

#endif /* PICKET_EVENTS_FILE_H */
