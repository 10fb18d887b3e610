/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The one definition of every ring-buffer record Picket's BPF programs emit,
 * and of the read-only configuration the loader writes before load.
 *
 * Rules: fixed-size little-endian structs of __u8..__u64 and fixed arrays;
 * every padding byte is a named field; every record starts with
 * struct picket_event_header, whose kind names the struct that follows.
 * Each event class has its own kinds, its own record struct(s) and its own
 * ring buffer, so each ring can have a consumer of its own:
 *
 *   class    kinds   record                            ring         written by
 *   network  1..4    struct picket_net_event           NET_EVENTS   net.bpf.c; packet.bpf.c (4)
 *   dns      5       struct picket_dns_event           DNS_EVENTS   packet.bpf.c
 *   process  16..18  struct picket_{exec,fork,exit}_event PROC_EVENTS proc.bpf.c
 *   file     32..36  struct picket_file_event          FILE_EVENTS  file.bpf.c
 *
 * A new class takes the next free block of 16 kinds (48..63) and a ring of
 * its own. The TypeScript mirror is bpf/abi.ts (this common part and the
 * network class) with one file per other class (bpf/abi-packet.ts,
 * bpf/abi-proc.ts, bpf/abi-file.ts); test/bpf/layout.test.ts checks every
 * number in them against bpf/layout-print.c, compiled against this header.
 */
#ifndef PICKET_EVENTS_H
#define PICKET_EVENTS_H

#include <linux/types.h>

#define PICKET_ABI_VERSION 1
#define PICKET_COMM_LEN 16

/* ---- Common to every class ---- */

/* Record kinds (picket_event_header.kind), by class. */
enum picket_event_kind {
	PICKET_EV_NET_STATE = 1,    /* network: sock:inet_sock_set_state */
	PICKET_EV_NET_RESET = 2,    /* network: tcp:tcp_send_reset */
	PICKET_EV_NET_ICMP = 3,     /* network: icmp:icmp_send */
	PICKET_EV_NET_ICMP6 = 4,    /* network: packet.bpf.c, an ICMPv6 destination unreachable leaving this host */
	PICKET_EV_DNS = 5,          /* dns: packet.bpf.c, one DNS message */
	PICKET_EV_PROC_EXEC = 16,   /* process: sched:sched_process_exec, argv from sys_enter_execve(at) */
	PICKET_EV_PROC_FORK = 17,   /* process: task:task_newtask */
	PICKET_EV_PROC_EXIT = 18,   /* process: sched:sched_process_exit */
	PICKET_EV_FILE_OPEN = 32,   /* file: openat, openat2, open, creat with write intent */
	PICKET_EV_FILE_UNLINK = 33, /* file: unlinkat, unlink, rmdir */
	PICKET_EV_FILE_RENAME = 34, /* file: renameat2, renameat, rename */
	PICKET_EV_FILE_CHMOD = 35,  /* file: fchmodat, fchmodat2, chmod */
	PICKET_EV_FILE_MEMFD = 36,  /* file: memfd_create */
};

struct picket_event_header {
	__u16 kind;      /* enum picket_event_kind */
	__u16 size;      /* whole record in bytes, header included */
	__u32 cpu;       /* CPU the program ran on */
	__u64 boot_ns;   /* bpf_ktime_get_boot_ns(): CLOCK_BOOTTIME */
	__u32 pid;       /* kernel pid = user-space thread id; 0 in softirq context */
	__u32 tgid;      /* kernel tgid = user-space process id */
	__u8 comm[PICKET_COMM_LEN];
};

/*
 * Who did it, beside the header's pid/tgid/comm: process and file records
 * carry it right after the header. (Network records predate it; DNS records
 * carry cgroup_id and uid of the socket's owner in their own fields.)
 */
struct picket_task_info {
	__u64 cgroup_id; /* bpf_get_current_cgroup_id(): the cgroup v2 inode */
	__u32 uid;       /* real uid and gid (bpf_get_current_uid_gid) */
	__u32 gid;
};

/*
 * Tracepoint field offsets, parsed from tracefs at load time and written into
 * .rodata before load (const volatile). PICKET_OFF_ABSENT marks a field the
 * running kernel's format does not have.
 */
#define PICKET_OFF_ABSENT 0xffff

/* The syscall and sched tracepoint records proc.bpf.c and file.bpf.c read
 * are small; each is copied whole to a stack buffer of this size before its
 * fields are read (picket.bpf.h). */
#define PICKET_SYS_TP_MAX 64

#define PICKET_PATH_MAX 256 /* bytes kept of a path, NUL included (process and file records) */

/* ---- Network class: NET_EVENTS (net.bpf.c; packet.bpf.c's ICMPv6) ---- */

/* Direction as the kernel side can tell it (picket_net_event.direction). */
enum picket_direction {
	PICKET_DIR_UNKNOWN = 0,
	PICKET_DIR_INBOUND = 1,  /* the peer initiated */
	PICKET_DIR_OUTBOUND = 2, /* this host initiated */
	PICKET_DIR_LOCAL = 4,    /* no peer: a listening socket */
};

/*
 * One record shape for all three network tracepoints. Addresses are always
 * from this host's point of view: l* is the local end, r* the remote peer,
 * whichever way the packet that fired the tracepoint travelled.
 */
struct picket_net_event {
	struct picket_event_header hdr;
	__u8 laddr[16];   /* IPv4 in the first 4 bytes (network order), rest zero */
	__u8 raddr[16];
	__u16 lport;      /* host byte order */
	__u16 rport;
	__u16 family;     /* AF_INET (2) or AF_INET6 (10) */
	__u8 protocol;    /* IPPROTO_TCP (6) or IPPROTO_UDP (17) */
	__u8 direction;   /* enum picket_direction */
	__u8 oldstate;    /* TCP state before (state events), socket state (reset) */
	__u8 newstate;    /* TCP state after (state events) */
	__u8 icmp_type;
	__u8 icmp_code;
	__u32 reason;     /* enum sk_rst_reason for resets; PICKET_RST_REASON_UNKNOWN if absent */
	__u64 sock;       /* kernel socket address: correlates records of one socket */
	__u64 duration_ns;/* for CLOSE: time since the connection was established; 0 if unknown */
};

#define PICKET_RST_REASON_UNKNOWN 0xffffffffu
#define PICKET_RST_REASON_NO_SOCKET 1u

/* Kernel-side counters: a per-CPU array indexed by enum picket_counter. */
enum picket_counter {
	PICKET_CNT_STATE_MATCHED = 0,  /* events that passed the filter and should be emitted */
	PICKET_CNT_STATE_RESERVE_FAIL, /* ... of which ring reservation failed (dropped) */
	PICKET_CNT_RESET_MATCHED,
	PICKET_CNT_RESET_RESERVE_FAIL,
	PICKET_CNT_ICMP_MATCHED,
	PICKET_CNT_ICMP_RESERVE_FAIL,
	PICKET_CNT_READ_FAIL,          /* bpf_probe_read_kernel of the tracepoint record failed */
	PICKET_CNT_MAX,
};


/* How a tracepoint carries its addresses. */
enum picket_addr_mode {
	PICKET_ADDR_NONE = 0,
	PICKET_ADDR_SPLIT = 1,    /* sport, dport, family, saddr[4], daddr[4], saddr_v6[16], daddr_v6[16] */
	PICKET_ADDR_SOCKADDR = 2, /* saddr[28], daddr[28] holding sockaddr_in / sockaddr_in6 (6.10+) */
};

struct picket_tp_layout {
	__u16 record_size;  /* bytes to copy from the tracepoint record (<= PICKET_TP_MAX) */
	__u16 addr_mode;    /* enum picket_addr_mode */
	__u16 skaddr;
	__u16 oldstate;     /* state event: oldstate; reset: state */
	__u16 newstate;
	__u16 protocol;
	__u16 family;
	__u16 sport;
	__u16 dport;
	__u16 saddr;        /* SPLIT: __u8[4]; SOCKADDR: __u8[28] */
	__u16 daddr;
	__u16 saddr_v6;
	__u16 daddr_v6;
	__u16 reason;
	__u16 type;         /* icmp */
	__u16 code;         /* icmp */
	__u16 state_size;   /* size in bytes of the oldstate/state field (4 on 6.x; 4 if absent) */
	__u16 pad0;
};

#define PICKET_TP_MAX 128

struct picket_net_config {
	struct picket_tp_layout state;
	struct picket_tp_layout reset;
	struct picket_tp_layout icmp;
	__u32 wakeup_bytes;  /* force a wakeup once this many bytes wait in the ring */
	__u32 ignore_tgid;   /* don't report this process's own sockets (0 = report all) */
	__u8 enable_state;
	__u8 enable_reset;
	__u8 enable_icmp;
	__u8 pad1[5];
};

/* ---- DNS class: DNS_EVENTS, and packet.bpf.c (cgroup_skb and cgroup sock_addr) ---- */

/*
 * packet.bpf.c's ICMPv6 errors are network records, in NET_EVENTS: they reuse struct picket_net_event (kind PICKET_EV_NET_ICMP6) in
 * the shape of PICKET_EV_NET_ICMP: r* is the offending packet's source (the
 * prober), l* its destination (this host), protocol its next header (UDP or
 * TCP, else 0 and no ports), direction INBOUND, icmp_type/icmp_code the
 * ICMPv6 ones, reason PICKET_RST_REASON_UNKNOWN. pid, tgid and comm are 0:
 * the kernel answers, no process does.
 */

/*
 * Bytes of DNS message copied: 512 is the classic UDP limit (RFC 1035) and
 * always covers the header and question (a name is at most 255 bytes); longer
 * EDNS0 or TCP answers are cut, dns_len says by how much.
 */
#define PICKET_DNS_SNAP 512

/* Which way the packet was going (picket_dns_event.skb_dir). */
enum picket_skb_dir {
	PICKET_SKB_INGRESS = 1,
	PICKET_SKB_EGRESS = 2,
};

/*
 * One DNS message, seen at a socket of this host. The record is variable
 * length: hdr.size = offsetof(payload) + captured rounded up to 8. The
 * header's pid/tgid/comm (and uid) are the process that last connect()ed or
 * sendmsg()ed to port 53 on this socket (attributed = 1), not whatever task
 * the packet interrupted; all zero when no hook saw the socket.
 */
struct picket_dns_event {
	struct picket_event_header hdr;
	__u8 laddr[16];   /* this host's end; IPv4 in the first 4 bytes */
	__u8 raddr[16];
	__u64 cookie;     /* bpf_get_socket_cookie(): the socket, stable for its life */
	__u64 cgroup_id;  /* cgroup v2 id of the socket */
	__u32 ifindex;    /* the packet's interface */
	__u32 uid;        /* valid when attributed */
	__u16 lport;      /* host byte order */
	__u16 rport;
	__u16 family;     /* AF_INET or AF_INET6 */
	__u8 protocol;    /* IPPROTO_UDP, or IPPROTO_TCP (length prefix stripped) */
	__u8 skb_dir;     /* enum picket_skb_dir */
	__u16 dns_len;    /* the whole DNS message's length as the packet declares it */
	__u16 captured;   /* valid bytes of payload: min(dns_len, bytes in this packet, PICKET_DNS_SNAP) */
	__u8 attributed;  /* 1: hdr pid/tgid/comm and uid come from the socket's connect/sendmsg */
	__u8 pad[3];
	__u8 payload[PICKET_DNS_SNAP]; /* the DNS message from its header on */
};

/* Per-socket owner, written by the sock_addr hooks (map sock_owner). */
struct picket_sock_owner {
	__u32 pid;
	__u32 tgid;
	__u32 uid;
	__u32 pad0;
	__u8 comm[PICKET_COMM_LEN];
};

/* Counters of packet.bpf.c: a per-CPU array of its own. */
enum picket_pkt_counter {
	PICKET_PKT_CNT_DNS_MATCHED = 0,  /* DNS messages that should be emitted */
	PICKET_PKT_CNT_DNS_RESERVE_FAIL, /* ... of which the ring had no room (dropped) */
	PICKET_PKT_CNT_DNS_UNATTRIBUTED, /* ... of which no hook had seen the socket */
	PICKET_PKT_CNT_ICMP6_MATCHED,
	PICKET_PKT_CNT_ICMP6_RESERVE_FAIL,
	PICKET_PKT_CNT_MAX,
};

struct picket_pkt_config {
	__u32 dns_wakeup_bytes; /* force a wakeup once this many bytes wait in DNS_EVENTS */
	__u32 net_wakeup_bytes; /* ... in NET_EVENTS (ICMPv6 records) */
	__u8 enable_dns;
	__u8 enable_icmp6;
	__u8 dns_server_side;   /* also report queries arriving and answers leaving (a DNS server's side) */
	__u8 pad0[5];
};

/* ---- Process class: PROC_EVENTS (proc.bpf.c) ---- */

#define PICKET_ARGC_MAX 20    /* exec arguments kept */
#define PICKET_ARGS_MAX 1024  /* bytes of argv kept, the NUL after each argument included */
#define PICKET_ARG_MAX 256    /* bytes kept of one argument, NUL included */

/* picket_exec_event.flags */
#define PICKET_EXEC_ARGC_TRUNCATED 0x01 /* more than PICKET_ARGC_MAX arguments */
#define PICKET_EXEC_ARGS_TRUNCATED 0x02 /* an argument was cut (PICKET_ARG_MAX), or the total (PICKET_ARGS_MAX) */
#define PICKET_EXEC_NO_ARGS 0x04        /* argv not captured: the exec began before attach, or its entry was lost */
#define PICKET_EXEC_ARGV_FAULT 0x08     /* reading argv from user memory failed part way */
#define PICKET_EXEC_FILENAME_TRUNCATED 0x10
#define PICKET_EXEC_EXECVEAT 0x20       /* the call was execveat */

/*
 * A successful exec, emitted at sched:sched_process_exec. After the exec the
 * task is the thread-group leader: hdr.pid == hdr.tgid, hdr.comm is the new
 * comm. Records are variable-sized: hdr.size ends after args_len bytes of
 * args, rounded up to 8.
 */
struct picket_exec_event {
	struct picket_event_header hdr;
	struct picket_task_info task;
	__u32 old_pid;        /* thread id that called exec: != tgid when a non-leader thread exec'd */
	__u16 argc;           /* arguments kept in args */
	__u16 args_len;       /* bytes of args used */
	__u16 filename_len;   /* strlen(filename) */
	__u16 interp_len;     /* strlen(interp); 0 without sched:sched_prepare_exec (before 6.10) */
	__u16 flags;          /* PICKET_EXEC_* */
	__u16 pad0;
	__u8 filename[PICKET_PATH_MAX]; /* the path exec was given (bprm->filename; /dev/fd/N for fexecve) */
	__u8 interp[PICKET_PATH_MAX];   /* what the kernel runs: the script's interpreter for #!, else = filename */
	__u8 args[PICKET_ARGS_MAX];     /* argv, each argument NUL-terminated */
};

/* A new process (or, when the loader asks for threads, a new thread), at
 * task:task_newtask: the header is the parent thread. */
struct picket_fork_event {
	struct picket_event_header hdr;
	struct picket_task_info task;
	__u64 clone_flags;
	__u32 child_pid;   /* the new task's kernel pid (its thread id) */
	__u32 child_tgid;  /* == child_pid for a process; the parent's tgid for a thread */
	__u8 thread;       /* 1: CLONE_THREAD */
	__u8 pad0[7];
};

/* How the exit status was learnt (picket_exit_event.source). */
enum picket_exit_source {
	PICKET_EXIT_UNKNOWN = 0,    /* e.g. the last thread called exit(), not exit_group() */
	PICKET_EXIT_GROUP = 1,      /* syscalls:sys_enter_exit_group: exit_code holds its status & 0xff */
	PICKET_EXIT_SIGNAL = 2,     /* a fatal signal with the default action: exit_signal */
};

/* A process ending: emitted once, by the thread that finds the group dead
 * (or for every thread, group_dead 0, when the loader asks for threads). */
struct picket_exit_event {
	struct picket_event_header hdr;
	struct picket_task_info task;
	__u32 exit_code;
	__u32 exit_signal;
	__u8 source;       /* enum picket_exit_source */
	__u8 group_dead;
	__u8 pad0[6];
};

enum picket_proc_counter {
	PICKET_PCNT_EXEC_MATCHED = 0,
	PICKET_PCNT_EXEC_RESERVE_FAIL,
	PICKET_PCNT_FORK_MATCHED,
	PICKET_PCNT_FORK_RESERVE_FAIL,
	PICKET_PCNT_EXIT_MATCHED,
	PICKET_PCNT_EXIT_RESERVE_FAIL,
	PICKET_PCNT_EXEC_NO_ARGS,   /* exec records emitted without argv */
	PICKET_PCNT_READ_FAIL,      /* bpf_probe_read_kernel of a tracepoint record failed */
	PICKET_PCNT_MAX,
};

/* Tracepoint field offsets for proc.bpf.c (a *_size of 0: not attached). */
struct picket_proc_config {
	__u16 exec_size;          /* sched:sched_process_exec */
	__u16 exec_filename;      /*   __data_loc char[] */
	__u16 exec_old_pid;
	__u16 prepare_size;       /* sched:sched_prepare_exec (6.10+) */
	__u16 prepare_interp;     /*   __data_loc char[] */
	__u16 execve_size;        /* syscalls:sys_enter_execve */
	__u16 execve_argv;
	__u16 execveat_size;      /* syscalls:sys_enter_execveat */
	__u16 execveat_argv;
	__u16 execve_exit_size;   /* syscalls:sys_exit_execve and sys_exit_execveat */
	__u16 execve_exit_ret;
	__u16 newtask_size;       /* task:task_newtask */
	__u16 newtask_pid;
	__u16 newtask_clone_flags;
	__u16 exit_size;          /* sched:sched_process_exit */
	__u16 exit_group_dead;
	__u16 exit_group_size;    /* syscalls:sys_enter_exit_group */
	__u16 exit_group_code;
	__u16 signal_size;        /* signal:signal_deliver */
	__u16 signal_sig;
	__u16 signal_handler;
	__u16 pad0;
	__u32 wakeup_bytes;
	__u32 ignore_tgid;        /* drop records whose current task is in this process */
	__u8 enable_exec;
	__u8 enable_fork;
	__u8 enable_exit;
	__u8 threads;             /* also emit thread creation and thread exits, marked */
};

/* ---- File class: FILE_EVENTS (file.bpf.c) ---- */

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

#endif /* PICKET_EVENTS_H */
