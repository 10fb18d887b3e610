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
 * This file holds the common part and the network class; each other class
 * has a header of its own, included at the end (events-dns.h, events-proc.h,
 * events-file.h). A new class takes the next free block of 16 kinds (48..63),
 * a ring and a header of its own. The TypeScript mirror follows the same
 * split: bpf/abi.ts, abi-dns.ts, abi-proc.ts, abi-file.ts;
 * test/bpf/layout.test.ts checks every number in them against
 * bpf/layout-print.c, compiled against this header.
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
	__u32 count;      /* events this record stands for: 0 = itself alone; more = a fold summary */
	__u32 pad2;
	__u64 start_ns;   /* fold summary: boot_ns of its first repeat (hdr.boot_ns is the last's) */
};

#define PICKET_RST_REASON_UNKNOWN 0xffffffffu
#define PICKET_RST_REASON_NO_SOCKET 1u

/* Kernel-side counters: a per-CPU array indexed by enum picket_counter. */
enum picket_counter {
	PICKET_CNT_STATE_MATCHED = 0,  /* records that passed the filter and should be emitted */
	PICKET_CNT_STATE_RESERVE_FAIL, /* ... of which ring reservation failed (dropped) */
	PICKET_CNT_RESET_MATCHED,
	PICKET_CNT_RESET_RESERVE_FAIL,
	PICKET_CNT_ICMP_MATCHED,
	PICKET_CNT_ICMP_RESERVE_FAIL,
	PICKET_CNT_READ_FAIL,          /* bpf_probe_read_kernel of the tracepoint record failed */
	PICKET_CNT_FOLDED,             /* events folded into a summary record instead of a record of their own.
	                                * *_MATCHED and *_RESERVE_FAIL count records, summaries included:
	                                * matched = received + dropped holds with folding on */
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
	__u8 pad1;
	__u32 fold_window_ms; /* fold repeats of a flow key within this window; 0 = never fold */
};

/*
 * Folding (net.bpf.c): what makes two network events repeats of one another.
 * Only the server side's port is kept, so a client's changing ephemeral port
 * does not split a flow; every distinct probe of a scan (another port,
 * another address, another outcome) is a key of its own.
 */
struct picket_fold_key {
	__u8 laddr[16];
	__u8 raddr[16];
	__u16 kind;
	__u16 port;       /* the server side's port */
	__u16 other_port; /* the other port, only when no side is known to be the server */
	__u16 family;
	__u8 protocol;
	__u8 direction;
	__u8 oldstate;
	__u8 newstate;
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 pad[2];
	__u32 reason;
	__u32 tgid;       /* outbound connects only: the process is part of the flow */
};

/* A key's window: its first event (emitted at once, the summary's template)
 * and the repeats folded since. */
struct picket_fold_value {
	struct picket_net_event ev;
	__u64 window_ns;  /* boot_ns the window opened at */
	__u64 first_ns;   /* boot_ns of the first repeat not yet summarised */
	__u64 last_ns;
	__u64 repeats;    /* repeats not yet summarised: taken atomically by whoever summarises */
};

/* ---- The other classes, one header each ---- */

#include "events-dns.h"
#include "events-proc.h"
#include "events-file.h"

#endif /* PICKET_EVENTS_H */
