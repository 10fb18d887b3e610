/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The DNS class (DNS_EVENTS) and packet.bpf.c's own structs; mirror:
 * bpf/abi-dns.ts.
 * bpf/events.h includes it after the common part (the header, the kinds,
 * the task info); programs include events.h, never this on its own.
 */
#ifndef PICKET_EVENTS_DNS_H
#define PICKET_EVENTS_DNS_H

#ifndef PICKET_EVENTS_H
#error "include events.h: it includes this after the common part"
#endif

/*
 * packet.bpf.c's ICMPv6 errors are network records, in NET_EVENTS: struct
 * picket_net_event (kind PICKET_EV_NET_ICMP6) in the shape of
 * PICKET_EV_NET_ICMP: r* is the offending packet's source (the prober), l*
 * its destination (this host), protocol its next header (UDP or TCP, else 0
 * and no ports), direction INBOUND, icmp_type/icmp_code the ICMPv6 ones,
 * reason PICKET_RST_REASON_UNKNOWN. pid, tgid and comm are 0: the kernel
 * answers, no process does.
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
	/*
	 * A response: the boot_ns of its query, the last message with QR = 0 on
	 * this socket with the same remote address, ports and transaction id
	 * (0 when none was seen). The join is made here, not in the decoder:
	 * decode workers have no affinity, so a query and its answer are often
	 * decoded by different threads. 0 for a query.
	 */
	__u64 query_ns;
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

#endif /* PICKET_EVENTS_DNS_H */
