// SPDX-License-Identifier: GPL-2.0-only
/*
 * Picket packet capture: what no tracepoint on this kernel carries, read from
 * the packets themselves at the cgroup v2 root's socket hooks. Two signals:
 *
 * DNS. Resolvers are user-space code (glibc, systemd-resolved, dig's libisc,
 * Go's own resolver), so only the packets are common to them all; and
 * without kprobes there is no udp_sendmsg/udp_recvmsg hook. cgroup_skb sees
 * every packet a local socket sends (egress: ip{,6}_finish_output) or
 * receives (ingress: sk_filter on the receiving socket), on every interface,
 * with the socket in hand:
 *
 *   glibc getaddrinfo:  socket(UDP) -> connect(53) [cgroup/connect4|6]
 *                       -> sendmmsg -> egress skb      [cgroup_skb/egress]
 *                       <- answer   <- ingress skb     [cgroup_skb/ingress]
 *   dig, sendto():      sendmsg(53)                    [cgroup/sendmsg4|6]
 *
 * The skb programs run in softirq as often as not (TCP, loopback delivery),
 * so the current task says nothing; the sock_addr hooks run in the caller's
 * syscall and remember socket cookie -> process in sock_owner, and the skb
 * programs read the process from there.
 *
 * A host's own lookups are reported once each: a query when it leaves
 * (egress, to port 53, QR=0), an answer when it arrives (ingress, from port
 * 53, QR=1). On loopback a local stub resolver's traffic crosses both hooks
 * twice (client egress, server ingress, server egress, client ingress); the
 * QR bit and the port keep it at two records. cfg.dns_server_side adds the
 * server's half (queries arriving at port 53, answers leaving it).
 *
 * TCP/53: a message starts with a 2-byte length. Per socket and direction,
 * tcp_streams remembers where the next message starts (seq + 2 + length), so
 * continuation segments and retransmissions of a start are skipped; the
 * first data segment of a stream is taken as a start.
 *
 * ICMPv6 destination unreachable. icmp:icmp_send is IPv4 only and nothing
 * traces icmp6_send, so `nmap -6 -sU` leaves no trace in net.bpf.c. The
 * kernel sends the answer through its own ICMPv6 socket, created at boot in
 * the root cgroup, and that socket's packets pass cgroup_skb egress at the
 * root like any other (test/bpf/icmp6-capture.test.ts). The record is the
 * offending packet as embedded in the error, in the shape of
 * PICKET_EV_NET_ICMP, written to NET_EVENTS (which the loader may share with
 * net.bpf.o).
 *
 * Only packet bytes are read (bpf_skb_load_bytes), never kernel structs: no
 * BTF needed. Both skb programs always return 1 (pass) and the sock_addr
 * hooks always 1 (allow): Picket observes, it never filters.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "events.h"
#include "picket.bpf.h"

#define AF_INET 2
#define AF_INET6 10
#define DNS_PORT 53
#define DNS_HDR_LEN 12
#define DNS_QR 0x80
#define ICMPV6_DEST_UNREACH 1
#define IP_OFFSET_MASK 0x1fff
#define MAX_EXT_HDRS 4

char LICENSE[] SEC("license") = "GPL";

const volatile struct picket_pkt_config cfg = {};

PICKET_RINGBUF(DNS_EVENTS, 8 << 20);
/* ICMPv6 records; the loader may point this at net.bpf.o's ring instead. */
PICKET_RINGBUF(NET_EVENTS, 1 << 20);
PICKET_COUNTERS(PICKET_PKT_CNT_MAX)

/* socket cookie -> the process that last sent to port 53 on it */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct picket_sock_owner);
} sock_owner SEC(".maps");

/* a DNS exchange: the socket, the other end, both ports and the message id */
struct xact_key {
	__u64 cookie;
	__u8 raddr[16];
	__u16 lport;
	__u16 rport;
	__u16 id;
	__u16 pad;
};

/* a query's boot_ns until its response (or LRU eviction): the response
 * record carries it as query_ns */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct xact_key);
	__type(value, __u64);
} dns_queries SEC(".maps");

struct stream_key {
	__u64 cookie;
	__u32 dir;
	__u32 pad;
};

/* TCP/53: sequence number where the stream's next DNS message starts */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct stream_key);
	__type(value, __u32);
} tcp_streams SEC(".maps");

/* DNS records are variable length: built here, then copied into the ring.
 * One slot per nesting level (process context, softirq, spares). */
#define SCRATCH_SLOTS 4

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SCRATCH_SLOTS);
	__type(key, __u32);
	__type(value, struct picket_dns_event);
} dns_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} scratch_depth SEC(".maps");

struct pkt {
	__u8 saddr[16];
	__u8 daddr[16];
	__u32 l4off; /* offset of the transport header from the network header */
	__u16 family;
	__u8 proto;
	__u8 pad;
};

/* An IPv6 header at off, then up to MAX_EXT_HDRS hop-by-hop, routing or
 * destination options headers. A fragment header ends the walk: only the
 * first fragment has a transport header, and it is rare enough to skip. */
static __always_inline int parse_ip6(struct __sk_buff *skb, __u32 off, struct pkt *p)
{
	struct ipv6hdr ip6;
	__u8 ext[2];
	__u8 nh;

	if (bpf_skb_load_bytes(skb, off, &ip6, sizeof(ip6)))
		return -1;
	__builtin_memcpy(p->saddr, &ip6.saddr, 16);
	__builtin_memcpy(p->daddr, &ip6.daddr, 16);
	nh = ip6.nexthdr;
	off += sizeof(ip6);
#pragma unroll
	for (int i = 0; i < MAX_EXT_HDRS; i++) {
		if (nh != IPPROTO_HOPOPTS && nh != IPPROTO_ROUTING && nh != IPPROTO_DSTOPTS)
			break;
		if (bpf_skb_load_bytes(skb, off, ext, sizeof(ext)))
			return -1;
		nh = ext[0];
		off += (ext[1] + 1) * 8;
	}
	p->family = AF_INET6;
	p->proto = nh;
	p->l4off = off;
	return 0;
}

/* cgroup_skb data starts at the network header, in both directions. */
static __always_inline int parse_ip(struct __sk_buff *skb, struct pkt *p)
{
	struct iphdr ip;

	if (skb->protocol == bpf_htons(0x86dd))
		return parse_ip6(skb, 0, p);
	if (skb->protocol != bpf_htons(0x0800))
		return -1;
	if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
		return -1;
	if (ip.frag_off & bpf_htons(IP_OFFSET_MASK))
		return -1; /* a later fragment carries no transport header */
	__builtin_memcpy(p->saddr, &ip.saddr, 4);
	__builtin_memcpy(p->daddr, &ip.daddr, 4);
	p->family = AF_INET;
	p->proto = ip.protocol;
	p->l4off = ip.ihl * 4;
	return 0;
}

/*
 * TCP: is the payload at `seq` the start of a DNS message? Remembers where
 * the next one starts. The first data seen on a stream counts as a start.
 */
static __always_inline int tcp_message_start(__u64 cookie, __u8 dir, __u32 seq, __u16 msg_len)
{
	struct stream_key k = { .cookie = cookie, .dir = dir };
	__u32 next = seq + 2 + msg_len;
	__u32 *want = bpf_map_lookup_elem(&tcp_streams, &k);

	if (want && *want != seq)
		return 0;
	if (want)
		*want = next;
	else
		bpf_map_update_elem(&tcp_streams, &k, &next, BPF_ANY);
	return 1;
}

static __always_inline int dns_wanted(__u8 dir, __u16 sport, __u16 dport, int query)
{
	if (dir == PICKET_SKB_EGRESS ? dport == DNS_PORT && query : sport == DNS_PORT && !query)
		return 1;
	if (!cfg.dns_server_side)
		return 0;
	return dir == PICKET_SKB_INGRESS ? dport == DNS_PORT && query : sport == DNS_PORT && !query;
}

struct dns_msg {
	__u64 cookie;
	__u32 off;      /* offset of the DNS header */
	__u32 captured; /* bytes to copy */
	__u16 dns_len;
	__u16 sport;
	__u16 dport;
	__u16 id;
	__u8 qr;
};

/* Is this packet a DNS message we report? Fills m when it is. */
static __always_inline int dns_match(struct __sk_buff *skb, struct pkt *p, __u8 dir, struct dns_msg *m)
{
	__be16 ports[2];
	__u32 avail;
	__u8 hdr[3];

	if (p->proto != IPPROTO_UDP && p->proto != IPPROTO_TCP)
		return 0;
	if (bpf_skb_load_bytes(skb, p->l4off, ports, sizeof(ports)))
		return 0;
	m->sport = bpf_ntohs(ports[0]);
	m->dport = bpf_ntohs(ports[1]);
	if (m->sport != DNS_PORT && m->dport != DNS_PORT)
		return 0;
	m->cookie = bpf_get_socket_cookie(skb);
	if (p->proto == IPPROTO_UDP) {
		struct udphdr uh;

		if (bpf_skb_load_bytes(skb, p->l4off, &uh, sizeof(uh)) || bpf_ntohs(uh.len) < sizeof(uh))
			return 0;
		m->dns_len = bpf_ntohs(uh.len) - sizeof(uh);
		m->off = p->l4off + sizeof(uh);
	} else {
		struct tcphdr th;
		__be16 prefix;

		if (bpf_skb_load_bytes(skb, p->l4off, &th, sizeof(th)))
			return 0;
		m->off = p->l4off + th.doff * 4;
		if (skb->len < m->off + 2 + DNS_HDR_LEN)
			return 0; /* no payload (handshake, ACK, FIN) or too little to be a message start */
		if (bpf_skb_load_bytes(skb, m->off, &prefix, sizeof(prefix)))
			return 0;
		m->dns_len = bpf_ntohs(prefix);
		if (!tcp_message_start(m->cookie, dir, bpf_ntohl(th.seq), m->dns_len))
			return 0;
		m->off += 2;
	}
	if (m->dns_len < DNS_HDR_LEN || bpf_skb_load_bytes(skb, m->off, hdr, sizeof(hdr)))
		return 0;
	m->id = (__u16)hdr[0] << 8 | hdr[1];
	m->qr = !!(hdr[2] & DNS_QR);
	if (!dns_wanted(dir, m->sport, m->dport, !m->qr))
		return 0;
	avail = skb->len > m->off ? skb->len - m->off : 0;
	m->captured = m->dns_len < avail ? m->dns_len : avail;
	if (m->captured > PICKET_DNS_SNAP)
		m->captured = PICKET_DNS_SNAP;
	return m->captured >= DNS_HDR_LEN;
}

/* A query: remember its time. A response: its query's time, or 0. */
static __always_inline __u64 xact(struct dns_msg *m, struct picket_dns_event *e)
{
	struct xact_key k = {};
	__u64 *t, ns;

	k.cookie = m->cookie;
	__builtin_memcpy(k.raddr, e->raddr, 16);
	k.lport = e->lport;
	k.rport = e->rport;
	k.id = m->id;
	if (!m->qr) {
		ns = e->hdr.boot_ns;
		bpf_map_update_elem(&dns_queries, &k, &ns, BPF_ANY);
		return 0;
	}
	t = bpf_map_lookup_elem(&dns_queries, &k);
	if (!t)
		return 0;
	ns = *t;
	bpf_map_delete_elem(&dns_queries, &k);
	return ns;
}

/* Build the record in this nesting level's scratch slot and copy it out. */
static __always_inline void dns_fill(struct __sk_buff *skb, struct pkt *p, __u8 dir, struct dns_msg *m, struct picket_dns_event *e)
{
	struct picket_sock_owner *owner;
	__u32 captured = m->captured, size;

	if (captured > PICKET_DNS_SNAP || captured < DNS_HDR_LEN)
		return;
	/* zero the bytes that round the record up to 8, so no earlier record's
	 * payload leaks into this one */
	if (captured < PICKET_DNS_SNAP)
		__builtin_memset(e->payload + (captured & (PICKET_DNS_SNAP - 8)), 0, 8);
	count(PICKET_PKT_CNT_DNS_MATCHED);
	if (bpf_skb_load_bytes(skb, m->off, e->payload, captured)) {
		count(PICKET_PKT_CNT_DNS_RESERVE_FAIL); /* cannot happen: the bytes were checked */
		return;
	}
	size = __builtin_offsetof(struct picket_dns_event, payload) + ((captured + 7) & ~7u);
	/* clang would fold the bound below into one on `captured`, which the
	 * verifier does not carry over to `size` */
	barrier_var(size);
	if (size > sizeof(*e))
		return;
	e->hdr.kind = PICKET_EV_DNS;
	e->hdr.size = size;
	e->hdr.cpu = bpf_get_smp_processor_id();
	e->hdr.boot_ns = bpf_ktime_get_boot_ns();
	owner = m->cookie ? bpf_map_lookup_elem(&sock_owner, &m->cookie) : 0;
	if (owner) {
		e->hdr.pid = owner->pid;
		e->hdr.tgid = owner->tgid;
		__builtin_memcpy(e->hdr.comm, owner->comm, PICKET_COMM_LEN);
		e->uid = owner->uid;
		e->attributed = 1;
	} else {
		count(PICKET_PKT_CNT_DNS_UNATTRIBUTED);
		e->hdr.pid = 0;
		e->hdr.tgid = 0;
		__builtin_memset(e->hdr.comm, 0, PICKET_COMM_LEN);
		e->uid = 0;
		e->attributed = 0;
	}
	/* l* is this host's end: the source of what leaves, the destination of
	 * what arrives */
	if (dir == PICKET_SKB_EGRESS) {
		__builtin_memcpy(e->laddr, p->saddr, 16);
		__builtin_memcpy(e->raddr, p->daddr, 16);
		e->lport = m->sport;
		e->rport = m->dport;
	} else {
		__builtin_memcpy(e->laddr, p->daddr, 16);
		__builtin_memcpy(e->raddr, p->saddr, 16);
		e->lport = m->dport;
		e->rport = m->sport;
	}
	e->cookie = m->cookie;
	e->cgroup_id = bpf_skb_cgroup_id(skb);
	e->ifindex = skb->ifindex;
	e->family = p->family;
	e->protocol = p->proto;
	e->skb_dir = dir;
	e->dns_len = m->dns_len;
	e->captured = captured;
	__builtin_memset(e->pad, 0, sizeof(e->pad));
	e->query_ns = xact(m, e);
	if (bpf_ringbuf_output(&DNS_EVENTS, e, size, picket_wakeup(&DNS_EVENTS, cfg.dns_wakeup_bytes, 0)))
		count(PICKET_PKT_CNT_DNS_RESERVE_FAIL);
}

/*
 * The scratch record is per CPU, and a softirq can run the ingress or egress
 * program on top of an egress program running in process context on the same
 * CPU (TCP sends from process context with bottom halves enabled). Each
 * nesting level takes its own slot; a level is restored before the
 * interrupted program resumes, so the unlocked counter is enough.
 */
static __always_inline void dns(struct __sk_buff *skb, struct pkt *p, __u8 dir)
{
	struct picket_dns_event *e;
	struct dns_msg m = {};
	__u32 zero = 0, slot, *depth;

	if (!dns_match(skb, p, dir, &m))
		return;
	depth = bpf_map_lookup_elem(&scratch_depth, &zero);
	if (!depth)
		return;
	slot = *depth;
	e = slot < SCRATCH_SLOTS ? bpf_map_lookup_elem(&dns_scratch, &slot) : 0;
	if (!e) {
		count(PICKET_PKT_CNT_DNS_MATCHED);
		count(PICKET_PKT_CNT_DNS_RESERVE_FAIL);
		return;
	}
	*depth = slot + 1;
	dns_fill(skb, p, dir, &m, e);
	*depth = slot;
}

/* An ICMPv6 destination unreachable leaving this host: report the packet it
 * refuses, which the error carries after its 8-byte header. */
static __always_inline void icmp6(struct __sk_buff *skb, struct pkt *p)
{
	struct picket_net_event *e;
	struct pkt orig = {};
	__u8 ih[2];
	__be16 ports[2] = {};
	__u8 proto;

	if (p->family != AF_INET6 || p->proto != IPPROTO_ICMPV6)
		return;
	if (bpf_skb_load_bytes(skb, p->l4off, ih, sizeof(ih)) || ih[0] != ICMPV6_DEST_UNREACH)
		return;
	if (parse_ip6(skb, p->l4off + 8, &orig))
		return;
	proto = orig.proto == IPPROTO_UDP || orig.proto == IPPROTO_TCP ? orig.proto : 0;
	if (proto && bpf_skb_load_bytes(skb, orig.l4off, ports, sizeof(ports)))
		return;

	count(PICKET_PKT_CNT_ICMP6_MATCHED);
	e = bpf_ringbuf_reserve(&NET_EVENTS, sizeof(*e), 0);
	if (!e) {
		count(PICKET_PKT_CNT_ICMP6_RESERVE_FAIL);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->hdr.kind = PICKET_EV_NET_ICMP6;
	e->hdr.size = sizeof(*e);
	e->hdr.cpu = bpf_get_smp_processor_id();
	e->hdr.boot_ns = bpf_ktime_get_boot_ns();
	__builtin_memcpy(e->raddr, orig.saddr, 16);
	__builtin_memcpy(e->laddr, orig.daddr, 16);
	e->rport = bpf_ntohs(ports[0]);
	e->lport = bpf_ntohs(ports[1]);
	e->family = AF_INET6;
	e->protocol = proto;
	e->direction = PICKET_DIR_INBOUND;
	e->icmp_type = ih[0];
	e->icmp_code = ih[1];
	e->reason = PICKET_RST_REASON_UNKNOWN;
	bpf_ringbuf_submit(e, picket_wakeup(&NET_EVENTS, cfg.net_wakeup_bytes, sizeof(*e)));
}

SEC("cgroup_skb/egress")
int picket_skb_egress(struct __sk_buff *skb)
{
	struct pkt p = {};

	if (parse_ip(skb, &p))
		return 1;
	if (cfg.enable_dns)
		dns(skb, &p, PICKET_SKB_EGRESS);
	if (cfg.enable_icmp6)
		icmp6(skb, &p);
	return 1;
}

SEC("cgroup_skb/ingress")
int picket_skb_ingress(struct __sk_buff *skb)
{
	struct pkt p = {};

	if (cfg.enable_dns && !parse_ip(skb, &p))
		dns(skb, &p, PICKET_SKB_INGRESS);
	return 1;
}

/* Remember who talks to port 53 on this socket (or, for the server side,
 * answers from it); skip the write when the same thread already owns it, so
 * a busy resolver does not churn the LRU. */
static __always_inline void own(struct bpf_sock_addr *ctx)
{
	struct picket_sock_owner o = {}, *cur;
	struct bpf_sock *sk;
	__u64 id, cookie;

	if (ctx->user_port != bpf_htons(DNS_PORT)) {
		if (!cfg.dns_server_side)
			return;
		sk = ctx->sk;
		if (!sk || sk->src_port != DNS_PORT)
			return;
	}
	id = bpf_get_current_pid_tgid();
	cookie = bpf_get_socket_cookie(ctx);
	cur = bpf_map_lookup_elem(&sock_owner, &cookie);
	if (cur && cur->pid == (__u32)id)
		return;
	o.pid = (__u32)id;
	o.tgid = id >> 32;
	o.uid = (__u32)bpf_get_current_uid_gid();
	bpf_get_current_comm(o.comm, sizeof(o.comm));
	bpf_map_update_elem(&sock_owner, &cookie, &o, BPF_ANY);
}

SEC("cgroup/connect4")
int picket_connect4(struct bpf_sock_addr *ctx)
{
	own(ctx);
	return 1;
}

SEC("cgroup/connect6")
int picket_connect6(struct bpf_sock_addr *ctx)
{
	own(ctx);
	return 1;
}

SEC("cgroup/sendmsg4")
int picket_sendmsg4(struct bpf_sock_addr *ctx)
{
	own(ctx);
	return 1;
}

SEC("cgroup/sendmsg6")
int picket_sendmsg6(struct bpf_sock_addr *ctx)
{
	own(ctx);
	return 1;
}
