/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The one definition of every ring-buffer record Picket's BPF programs emit,
 * and of the read-only configuration the loader writes before load.
 *
 * Rules: fixed-size little-endian structs of __u8..__u64 and fixed arrays;
 * every padding byte is a named field; every record starts with
 * struct picket_event_header. Its TypeScript mirror is bpf/abi.ts (the
 * record codec built on it: bpf/records.ts); test/bpf/layout.test.ts checks
 * the mirror against bpf/layout-print.c, compiled against this header.
 */
#ifndef PICKET_EVENTS_H
#define PICKET_EVENTS_H

#include <linux/types.h>

#define PICKET_ABI_VERSION 1
#define PICKET_COMM_LEN 16

/* Record kinds (picket_event_header.kind). */
enum picket_event_kind {
	PICKET_EV_NET_STATE = 1, /* sock:inet_sock_set_state */
	PICKET_EV_NET_RESET = 2, /* tcp:tcp_send_reset */
	PICKET_EV_NET_ICMP = 3,  /* icmp:icmp_send */
	PICKET_EV_NET_ICMP6 = 4, /* packet.bpf.c: an ICMPv6 destination unreachable leaving this host */
	PICKET_EV_DNS = 5,       /* packet.bpf.c: struct picket_dns_event */
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

/*
 * Tracepoint field offsets, parsed from tracefs at load time and written into
 * .rodata before load (const volatile). PICKET_OFF_ABSENT marks a field the
 * running kernel's format does not have.
 */
#define PICKET_OFF_ABSENT 0xffff

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

/* ---- packet capture (packet.bpf.c): cgroup_skb and cgroup sock_addr ---- */

/*
 * ICMPv6 errors reuse struct picket_net_event (kind PICKET_EV_NET_ICMP6) in
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

#endif /* PICKET_EVENTS_H */
