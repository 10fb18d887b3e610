// Prints sizeof/offsetof of every struct in events.h as JSON, so a test can
// compare them with the TypeScript mirror (bpf/abi.ts).
#include <stddef.h>
#include <stdio.h>
#include "events.h"

#define F(s, f) printf("%s\"%s\":%zu", first ? "" : ",", #f, offsetof(struct s, f)), first = 0
#define SZ(s) printf("%s\"SIZEOF\":%zu", first ? "" : ",", sizeof(struct s)), first = 0

/* packet.bpf.c's records and configuration, then the closing brace */
static void print_packet(void)
{
	int first;

	printf(",\"dns_event\":{");
	first = 1;
	F(picket_dns_event, laddr); F(picket_dns_event, raddr); F(picket_dns_event, cookie);
	F(picket_dns_event, cgroup_id); F(picket_dns_event, ifindex); F(picket_dns_event, uid);
	F(picket_dns_event, lport); F(picket_dns_event, rport); F(picket_dns_event, family);
	F(picket_dns_event, protocol); F(picket_dns_event, skb_dir); F(picket_dns_event, dns_len);
	F(picket_dns_event, captured); F(picket_dns_event, attributed); F(picket_dns_event, payload);
	SZ(picket_dns_event);
	printf("},\"pkt_config\":{");
	first = 1;
	F(picket_pkt_config, dns_wakeup_bytes); F(picket_pkt_config, net_wakeup_bytes);
	F(picket_pkt_config, enable_dns); F(picket_pkt_config, enable_icmp6); F(picket_pkt_config, dns_server_side);
	SZ(picket_pkt_config);
	printf("},\"pkt_constants\":{\"PICKET_EV_NET_ICMP6\":%d,\"PICKET_EV_DNS\":%d,\"PICKET_DNS_SNAP\":%d,"
	       "\"PICKET_SKB_INGRESS\":%d,\"PICKET_SKB_EGRESS\":%d,"
	       "\"PICKET_PKT_CNT_DNS_MATCHED\":%d,\"PICKET_PKT_CNT_DNS_RESERVE_FAIL\":%d,\"PICKET_PKT_CNT_DNS_UNATTRIBUTED\":%d,"
	       "\"PICKET_PKT_CNT_ICMP6_MATCHED\":%d,\"PICKET_PKT_CNT_ICMP6_RESERVE_FAIL\":%d,\"PICKET_PKT_CNT_MAX\":%d}}\n",
	       PICKET_EV_NET_ICMP6, PICKET_EV_DNS, PICKET_DNS_SNAP, PICKET_SKB_INGRESS, PICKET_SKB_EGRESS,
	       PICKET_PKT_CNT_DNS_MATCHED, PICKET_PKT_CNT_DNS_RESERVE_FAIL, PICKET_PKT_CNT_DNS_UNATTRIBUTED,
	       PICKET_PKT_CNT_ICMP6_MATCHED, PICKET_PKT_CNT_ICMP6_RESERVE_FAIL, PICKET_PKT_CNT_MAX);
}

int main(void)
{
	int first;

	printf("{\"header\":{");
	first = 1;
	F(picket_event_header, kind); F(picket_event_header, size); F(picket_event_header, cpu);
	F(picket_event_header, boot_ns); F(picket_event_header, pid); F(picket_event_header, tgid);
	F(picket_event_header, comm); SZ(picket_event_header);
	printf(",\"COMM_LEN\":%d},\"net_event\":{", PICKET_COMM_LEN);
	first = 1;
	F(picket_net_event, laddr); F(picket_net_event, raddr); F(picket_net_event, lport);
	F(picket_net_event, rport); F(picket_net_event, family); F(picket_net_event, protocol);
	F(picket_net_event, direction); F(picket_net_event, oldstate); F(picket_net_event, newstate);
	F(picket_net_event, icmp_type); F(picket_net_event, icmp_code); F(picket_net_event, reason);
	F(picket_net_event, sock); F(picket_net_event, duration_ns); SZ(picket_net_event);
	printf("},\"tp_layout\":{");
	first = 1;
	F(picket_tp_layout, record_size); F(picket_tp_layout, addr_mode); F(picket_tp_layout, skaddr);
	F(picket_tp_layout, oldstate); F(picket_tp_layout, newstate); F(picket_tp_layout, protocol);
	F(picket_tp_layout, family); F(picket_tp_layout, sport); F(picket_tp_layout, dport);
	F(picket_tp_layout, saddr); F(picket_tp_layout, daddr); F(picket_tp_layout, saddr_v6);
	F(picket_tp_layout, daddr_v6); F(picket_tp_layout, reason); F(picket_tp_layout, type);
	F(picket_tp_layout, code); F(picket_tp_layout, state_size); F(picket_tp_layout, pad0);
	SZ(picket_tp_layout);
	printf("},\"net_config\":{");
	first = 1;
	F(picket_net_config, state); F(picket_net_config, reset); F(picket_net_config, icmp);
	F(picket_net_config, wakeup_bytes); F(picket_net_config, ignore_tgid);
	F(picket_net_config, enable_state); F(picket_net_config, enable_reset);
	F(picket_net_config, enable_icmp); SZ(picket_net_config);
	printf("},\"constants\":{\"PICKET_EV_NET_STATE\":%d,\"PICKET_EV_NET_RESET\":%d,\"PICKET_EV_NET_ICMP\":%d,"
	       "\"PICKET_CNT_MAX\":%d,\"PICKET_OFF_ABSENT\":%d,\"PICKET_TP_MAX\":%d,\"PICKET_RST_REASON_UNKNOWN\":%u,"
	       "\"PICKET_DIR_INBOUND\":%d,\"PICKET_DIR_OUTBOUND\":%d,\"PICKET_DIR_LOCAL\":%d,"
	       "\"PICKET_ADDR_SPLIT\":%d,\"PICKET_ADDR_SOCKADDR\":%d,"
	       "\"PICKET_CNT_STATE_MATCHED\":%d,\"PICKET_CNT_STATE_RESERVE_FAIL\":%d,\"PICKET_CNT_RESET_MATCHED\":%d,"
	       "\"PICKET_CNT_RESET_RESERVE_FAIL\":%d,\"PICKET_CNT_ICMP_MATCHED\":%d,\"PICKET_CNT_ICMP_RESERVE_FAIL\":%d,"
	       "\"PICKET_CNT_READ_FAIL\":%d}",
	       PICKET_EV_NET_STATE, PICKET_EV_NET_RESET, PICKET_EV_NET_ICMP, PICKET_CNT_MAX, PICKET_OFF_ABSENT,
	       PICKET_TP_MAX, PICKET_RST_REASON_UNKNOWN, PICKET_DIR_INBOUND, PICKET_DIR_OUTBOUND, PICKET_DIR_LOCAL,
	       PICKET_ADDR_SPLIT, PICKET_ADDR_SOCKADDR,
	       PICKET_CNT_STATE_MATCHED, PICKET_CNT_STATE_RESERVE_FAIL, PICKET_CNT_RESET_MATCHED,
	       PICKET_CNT_RESET_RESERVE_FAIL, PICKET_CNT_ICMP_MATCHED, PICKET_CNT_ICMP_RESERVE_FAIL, PICKET_CNT_READ_FAIL);
	print_packet();
	return 0;
}
