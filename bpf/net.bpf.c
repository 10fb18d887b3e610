// SPDX-License-Identifier: GPL-2.0-only
/*
 * Picket network capture: three tracepoints, one ring buffer (NET_EVENTS).
 *
 * Why these hooks. A port scan mostly never creates a socket:
 *
 *   SYN/FIN/NULL/Xmas probe to a closed port
 *     tcp_v{4,6}_rcv -> no socket -> tcp_v4_send_reset(NULL, skb)
 *       -> trace_tcp_send_reset(sk=NULL, reason=NO_SOCKET)     [tcp:tcp_send_reset]
 *   UDP probe to a closed port
 *     __udp4_lib_rcv -> no socket -> icmp_send(ICMP_DEST_UNREACH, ICMP_PORT_UNREACH)
 *       -> trace_icmp_send(type 3, code 3)                      [icmp:icmp_send]
 *   full handshake to an open port (connect scan, real clients)
 *     tcp_rcv_state_process: SYN_RECV -> ESTABLISHED            [sock:inet_sock_set_state]
 *
 * SYN_RECV itself is set while the child socket is being cloned, before its
 * addresses are filled in, so an inbound connection is reported at the
 * SYN_RECV -> ESTABLISHED transition, where its 4-tuple is complete.
 *
 * No BTF and no compiled-in offsets: the loader parses each tracepoint's
 * format file from tracefs and writes the offsets into `cfg` (.rodata) before
 * load. The verifier refuses ctx dereferences at offsets taken from read-only
 * data ("dereference of modified ctx ptr"), so each handler copies the raw
 * record to the stack once and reads fields from the copy.
 *
 * Wakeups are what cost the monitored host most: records are submitted with
 * BPF_RB_NO_WAKEUP and user space drains on a short timer while records flow;
 * a wakeup is forced only when the ring holds more than cfg.wakeup_bytes, or
 * for the first record into an empty ring (picket_wakeup in picket.bpf.h).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "events.h"
#include "picket.bpf.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17

#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_SYN_RECV 3
#define TCP_CLOSE 7
#define TCP_LISTEN 10

char LICENSE[] SEC("license") = "GPL";

const volatile struct picket_net_config cfg = {};

PICKET_RINGBUF(NET_EVENTS, 8 << 20);
PICKET_COUNTERS(PICKET_CNT_MAX)

/* Direction and establishment time of established sockets, so CLOSE can say
 * which way the connection went and how long it lived. LRU: never full, never
 * leaks (a socket that closes while the agent is down just ages out). */
struct sock_info {
	__u64 open_ns;
	__u8 direction;
	__u8 pad[7];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct sock_info);
} socks SEC(".maps");

/* Field readers over the stack copy. Offsets come from .rodata, which the
 * verifier sees as constants, so every bounds check below is resolved at load. */
static __always_inline __u32 rd_u32(const __u8 *buf, __u16 off, __u16 size)
{
	__u32 v = 0;

	if (off > PICKET_TP_MAX - 4)
		return 0;
	if (size == 1)
		return buf[off];
	if (size == 2) {
		__u16 h;
		__builtin_memcpy(&h, buf + off, 2);
		return h;
	}
	__builtin_memcpy(&v, buf + off, 4);
	return v;
}

static __always_inline __u16 rd_u16(const __u8 *buf, __u16 off)
{
	__u16 v = 0;

	if (off > PICKET_TP_MAX - 2)
		return 0;
	__builtin_memcpy(&v, buf + off, 2);
	return v;
}

static __always_inline __u64 rd_u64(const __u8 *buf, __u16 off)
{
	__u64 v = 0;

	if (off > PICKET_TP_MAX - 8)
		return 0;
	__builtin_memcpy(&v, buf + off, 8);
	return v;
}

static __always_inline void rd_bytes(__u8 *dst, const __u8 *buf, __u16 off, __u32 n)
{
	if (off > PICKET_TP_MAX - 16)
		return;
	if (n == 4)
		__builtin_memcpy(dst, buf + off, 4);
	else
		__builtin_memcpy(dst, buf + off, 16);
}

static __always_inline __u16 bswap16(__u16 v)
{
	return (v << 8) | (v >> 8);
}

/* A sockaddr_in / sockaddr_in6 as the 6.10+ tcp_send_reset stores it. */
static __always_inline __u16 rd_sockaddr(const __u8 *buf, __u16 off, __u8 *addr, __u16 *port)
{
	__u16 family;

	if (off > PICKET_TP_MAX - 28)
		return 0;
	family = rd_u16(buf, off);
	*port = bswap16(rd_u16(buf, off + 2));
	if (family == AF_INET)
		__builtin_memcpy(addr, buf + off + 4, 4);
	else if (family == AF_INET6)
		__builtin_memcpy(addr, buf + off + 8, 16);
	return family;
}

static __always_inline void fill_header(struct picket_net_event *e, __u16 kind)
{
	picket_fill_header(&e->hdr, kind, sizeof(*e));
}

/*
 * Folding. A storm of one flow (a client hammering one closed port, a
 * service reconnecting in a loop) is one record per window, not one per
 * event: the first event of a key in a window goes out at once, its repeats
 * within the window only bump a counter here, and a summary record (count,
 * start_ns, the last repeat's time) goes out when the window has closed:
 * from picket_fold_sweep, which user space runs on a timer, or from the next
 * event of the key, whichever comes first. Both take the repeats with one
 * atomic exchange, so every event is in exactly one record.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct picket_fold_key);
	__type(value, struct picket_fold_value);
} folds SEC(".maps");

/* The event being built: too big for the stack beside the tracepoint copy,
 * and in this shape it can go into `folds` as it is. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct picket_fold_value);
} scratch SEC(".maps");

static __always_inline struct picket_net_event *new_event(void)
{
	__u32 zero = 0;
	struct picket_fold_value *v = bpf_map_lookup_elem(&scratch, &zero);

	if (!v)
		return 0;
	__builtin_memset(v, 0, sizeof(*v));
	return &v->ev;
}

/* Emit the repeats f holds as one summary record, if there are any. */
static __always_inline void summarise(struct picket_fold_value *f)
{
	struct picket_net_event *r;
	__u64 n = __sync_lock_test_and_set(&f->repeats, 0);

	if (!n)
		return;
	/* a summary is a record like any other: kinds 1, 2, 3 (state, reset,
	 * icmp) count their records at 0, 2, 4 and their drops at 1, 3, 5 */
	count(2 * f->ev.hdr.kind - 2);
	r = bpf_ringbuf_reserve(&NET_EVENTS, sizeof(*r), 0);
	if (!r) {
		count(2 * f->ev.hdr.kind - 1);
		return;
	}
	__builtin_memcpy(r, &f->ev, sizeof(*r));
	r->hdr.boot_ns = f->last_ns;
	r->start_ns = f->first_ns;
	r->count = n;
	f->first_ns = 0;
	bpf_ringbuf_submit(r, picket_wakeup(&NET_EVENTS, cfg.wakeup_bytes, sizeof(*r)));
}

static __always_inline void fold_key(struct picket_fold_key *k, const struct picket_net_event *e)
{
	__builtin_memcpy(k->laddr, e->laddr, 16);
	__builtin_memcpy(k->raddr, e->raddr, 16);
	k->kind = e->hdr.kind;
	k->family = e->family;
	k->protocol = e->protocol;
	k->direction = e->direction;
	k->oldstate = e->oldstate;
	k->newstate = e->newstate;
	k->icmp_type = e->icmp_type;
	k->icmp_code = e->icmp_code;
	k->reason = e->reason;
	if (e->direction == PICKET_DIR_OUTBOUND) {
		k->port = e->rport;
		if (e->newstate == TCP_SYN_SENT || e->oldstate == TCP_SYN_SENT)
			k->tgid = e->hdr.tgid;
	} else if (e->direction == PICKET_DIR_UNKNOWN) {
		k->port = e->lport;
		k->other_port = e->rport;
	} else {
		k->port = e->lport;
	}
}

/* Is e a repeat within its key's window (counted, not to be emitted)? */
static __always_inline int fold(struct picket_net_event *e)
{
	struct picket_fold_key k = {};
	struct picket_fold_value *f;
	__u64 now = e->hdr.boot_ns;

	if (!cfg.fold_window_ms)
		return 0;
	fold_key(&k, e);
	f = bpf_map_lookup_elem(&folds, &k);
	if (!f) {
		struct picket_fold_value *v = (void *)e; /* ev is the first member of the scratch value */

		v->window_ns = now;
		bpf_map_update_elem(&folds, &k, v, BPF_ANY);
		return 0;
	}
	if ((__s64)(now - f->window_ns) < (__s64)cfg.fold_window_ms * 1000000) {
		if (!f->first_ns)
			f->first_ns = now;
		f->last_ns = now;
		__sync_fetch_and_add(&f->repeats, 1);
		return 1;
	}
	summarise(f);
	__builtin_memcpy(&f->ev, e, sizeof(*e));
	f->window_ns = now;
	return 0;
}

static __always_inline void emit(struct picket_net_event *e, __u32 matched, __u32 failed)
{
	if (fold(e)) {
		count(PICKET_CNT_FOLDED);
		return;
	}
	count(matched);
	if (bpf_ringbuf_output(&NET_EVENTS, e, sizeof(*e), picket_wakeup(&NET_EVENTS, cfg.wakeup_bytes, 0)))
		count(failed);
}

struct bpf_map;

struct sweep_ctx {
	__u64 now;
	__u64 all; /* summarise every window, closed or not (the probe is stopping) */
};

/* Summarise every key whose window has closed; forget keys quiet for two
 * windows. */
static long sweep_one(struct bpf_map *map, struct picket_fold_key *k, struct picket_fold_value *f, struct sweep_ctx *c)
{
	__s64 age = c->now - f->window_ns;
	__s64 window = (__s64)cfg.fold_window_ms * 1000000;

	if (age < window && !c->all)
		return 0;
	summarise(f);
	if (age >= 2 * window && !f->repeats)
		bpf_map_delete_elem(map, k);
	return 0;
}

/* Run by user space (BPF_PROG_RUN): on a timer, and once more when it stops. */
SEC("syscall")
int picket_fold_sweep(void *ctx)
{
	struct sweep_ctx c = { .now = bpf_ktime_get_boot_ns() };

	if (cfg.fold_window_ms)
		bpf_for_each_map_elem(&folds, sweep_one, &c, 0);
	return 0;
}

SEC("syscall")
int picket_fold_flush(void *ctx)
{
	struct sweep_ctx c = { .now = bpf_ktime_get_boot_ns(), .all = 1 };

	if (cfg.fold_window_ms)
		bpf_for_each_map_elem(&folds, sweep_one, &c, 0);
	return 0;
}

/* Copy the tracepoint record to the stack: n is a verifier-known constant. */
#define COPY_CTX(buf, layout, ctx)                                        \
	({                                                                 \
		__u32 __n = (layout).record_size;                          \
		int __ok = 1;                                              \
		if (__n == 0 || __n > PICKET_TP_MAX) {                     \
			__ok = 0;                                          \
		} else if (bpf_probe_read_kernel(buf, __n, ctx)) {         \
			count(PICKET_CNT_READ_FAIL);                       \
			__ok = 0;                                          \
		}                                                          \
		__ok;                                                      \
	})

SEC("tracepoint/sock/inet_sock_set_state")
int picket_state(void *ctx)
{
	__u8 buf[PICKET_TP_MAX] = {};
	struct picket_net_event *e;
	struct sock_info si = {}, *found;
	__u32 oldstate, newstate;
	__u8 dir = PICKET_DIR_UNKNOWN;
	__u64 sk, now, duration = 0;
	__u16 family;

	if (!cfg.enable_state || !COPY_CTX(buf, cfg.state, ctx))
		return 0;
	if (rd_u32(buf, cfg.state.protocol, 2) != IPPROTO_TCP)
		return 0;
	newstate = rd_u32(buf, cfg.state.newstate, cfg.state.state_size);
	oldstate = rd_u32(buf, cfg.state.oldstate, cfg.state.state_size);
	sk = rd_u64(buf, cfg.state.skaddr);
	now = bpf_ktime_get_boot_ns();

	/* Socket tracking (direction and lifetime for CLOSE) only for connections
	 * that got established: a refused connect, the bulk of a storm or a scan,
	 * never touches the map, because SYN_SENT -> CLOSE says all there is. */
	switch (newstate) {
	case TCP_SYN_SENT:
		dir = PICKET_DIR_OUTBOUND;
		break;
	case TCP_ESTABLISHED:
		if (oldstate == TCP_SYN_RECV) {
			dir = PICKET_DIR_INBOUND;
		} else if (oldstate == TCP_SYN_SENT) {
			dir = PICKET_DIR_OUTBOUND;
		} else {
			return 0;
		}
		si.open_ns = now;
		si.direction = dir;
		bpf_map_update_elem(&socks, &sk, &si, BPF_ANY);
		if (dir == PICKET_DIR_OUTBOUND)
			return 0; /* already reported at SYN_SENT */
		break;
	case TCP_LISTEN:
		dir = PICKET_DIR_LOCAL;
		break;
	case TCP_CLOSE:
		if (oldstate == TCP_SYN_SENT) {
			dir = PICKET_DIR_OUTBOUND; /* connect failed or was refused */
		} else if (oldstate == TCP_LISTEN) {
			dir = PICKET_DIR_LOCAL;
		} else {
			found = bpf_map_lookup_elem(&socks, &sk);
			if (found) {
				dir = found->direction;
				duration = now - found->open_ns;
				bpf_map_delete_elem(&socks, &sk);
			}
		}
		break;
	default:
		return 0;
	}
	/* Only connect() and listen() run in the owning task; every other
	 * transition may run in softirq on top of whatever task was interrupted,
	 * so filtering those by tgid would drop other processes' events. */
	if (cfg.ignore_tgid && (newstate == TCP_SYN_SENT || newstate == TCP_LISTEN) &&
	    (bpf_get_current_pid_tgid() >> 32) == cfg.ignore_tgid)
		return 0;

	e = new_event();
	if (!e)
		return 0;
	fill_header(e, PICKET_EV_NET_STATE);
	family = rd_u16(buf, cfg.state.family);
	e->family = family;
	e->protocol = IPPROTO_TCP;
	e->direction = dir;
	e->oldstate = oldstate;
	e->newstate = newstate;
	e->lport = rd_u16(buf, cfg.state.sport);
	e->rport = rd_u16(buf, cfg.state.dport);
	if (family == AF_INET6) {
		rd_bytes(e->laddr, buf, cfg.state.saddr_v6, 16);
		rd_bytes(e->raddr, buf, cfg.state.daddr_v6, 16);
	} else {
		rd_bytes(e->laddr, buf, cfg.state.saddr, 4);
		rd_bytes(e->raddr, buf, cfg.state.daddr, 4);
	}
	e->reason = PICKET_RST_REASON_UNKNOWN;
	e->sock = sk;
	e->duration_ns = duration;
	emit(e, PICKET_CNT_STATE_MATCHED, PICKET_CNT_STATE_RESERVE_FAIL);
	return 0;
}

SEC("tracepoint/tcp/tcp_send_reset")
int picket_reset(void *ctx)
{
	__u8 buf[PICKET_TP_MAX] = {};
	struct picket_net_event *e;
	__u32 reason = PICKET_RST_REASON_UNKNOWN;
	__u64 sk;
	int no_socket;

	if (!cfg.enable_reset || !COPY_CTX(buf, cfg.reset, ctx))
		return 0;
	sk = rd_u64(buf, cfg.reset.skaddr);
	if (cfg.reset.reason != PICKET_OFF_ABSENT)
		reason = rd_u32(buf, cfg.reset.reason, 4);
	/* Kernels before 6.10 carry no reason: no socket means no listener. */
	no_socket = reason == PICKET_RST_REASON_UNKNOWN ? sk == 0 : reason == PICKET_RST_REASON_NO_SOCKET;

	e = new_event();
	if (!e)
		return 0;
	fill_header(e, PICKET_EV_NET_RESET);
	e->protocol = IPPROTO_TCP;
	e->direction = no_socket ? PICKET_DIR_INBOUND : PICKET_DIR_UNKNOWN;
	if (cfg.reset.oldstate != PICKET_OFF_ABSENT)
		e->oldstate = rd_u32(buf, cfg.reset.oldstate, cfg.reset.state_size);
	e->reason = reason;
	e->sock = sk;
	/* The tracepoint already reversed the 4-tuple of the offending packet:
	 * saddr is this host (the RST's source), daddr the peer. */
	if (cfg.reset.addr_mode == PICKET_ADDR_SOCKADDR) {
		e->family = rd_sockaddr(buf, cfg.reset.saddr, e->laddr, &e->lport);
		rd_sockaddr(buf, cfg.reset.daddr, e->raddr, &e->rport);
	} else if (cfg.reset.addr_mode == PICKET_ADDR_SPLIT) {
		e->family = rd_u16(buf, cfg.reset.family);
		e->lport = rd_u16(buf, cfg.reset.sport);
		e->rport = rd_u16(buf, cfg.reset.dport);
		if (e->family == AF_INET6) {
			rd_bytes(e->laddr, buf, cfg.reset.saddr_v6, 16);
			rd_bytes(e->raddr, buf, cfg.reset.daddr_v6, 16);
		} else {
			rd_bytes(e->laddr, buf, cfg.reset.saddr, 4);
			rd_bytes(e->raddr, buf, cfg.reset.daddr, 4);
		}
	}
	emit(e, PICKET_CNT_RESET_MATCHED, PICKET_CNT_RESET_RESERVE_FAIL);
	return 0;
}

SEC("tracepoint/icmp/icmp_send")
int picket_icmp(void *ctx)
{
	__u8 buf[PICKET_TP_MAX] = {};
	struct picket_net_event *e;
	__u32 type, code;

	if (!cfg.enable_icmp || !COPY_CTX(buf, cfg.icmp, ctx))
		return 0;
	type = rd_u32(buf, cfg.icmp.type, 4);
	if (type != 3) /* only destination unreachable answers a probe */
		return 0;
	code = rd_u32(buf, cfg.icmp.code, 4);

	e = new_event();
	if (!e)
		return 0;
	fill_header(e, PICKET_EV_NET_ICMP);
	e->family = AF_INET;
	e->direction = PICKET_DIR_INBOUND;
	e->icmp_type = type;
	e->icmp_code = code;
	e->reason = PICKET_RST_REASON_UNKNOWN;
	/* The tracepoint describes the offending datagram: its source is the
	 * prober, its destination this host; ports are 0 unless it was UDP. */
	rd_bytes(e->raddr, buf, cfg.icmp.saddr, 4);
	rd_bytes(e->laddr, buf, cfg.icmp.daddr, 4);
	e->rport = rd_u16(buf, cfg.icmp.sport);
	e->lport = rd_u16(buf, cfg.icmp.dport);
	e->protocol = (e->rport || e->lport) ? IPPROTO_UDP : 0;
	emit(e, PICKET_CNT_ICMP_MATCHED, PICKET_CNT_ICMP_RESERVE_FAIL);
	return 0;
}
