// Prints sizeof/offsetof of every struct in events.h as JSON, so a test can
// compare them with the TypeScript mirror (bpf/abi.ts, bpf/packet-layout.ts,
// bpf/abi-proc.ts). Configuration fields print as [offset, size].
#include <stddef.h>
#include <stdio.h>
#include "events.h"

#define F(s, f) printf("%s\"%s\":%zu", first ? "" : ",", #f, offsetof(struct s, f)), first = 0
#define FS(s, f) printf("%s\"%s\":[%zu,%zu]", first ? "" : ",", #f, offsetof(struct s, f), sizeof(((struct s *)0)->f)), first = 0
#define SZ(s) printf("%s\"SIZEOF\":%zu", first ? "" : ",", sizeof(struct s)), first = 0

#define C(name) printf("%s\"%s\":%lld", first ? "" : ",", #name, (long long)(name)), first = 0

/* packet.bpf.c's records and configuration */
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
	       "\"PICKET_PKT_CNT_ICMP6_MATCHED\":%d,\"PICKET_PKT_CNT_ICMP6_RESERVE_FAIL\":%d,\"PICKET_PKT_CNT_MAX\":%d}",
	       PICKET_EV_NET_ICMP6, PICKET_EV_DNS, PICKET_DNS_SNAP, PICKET_SKB_INGRESS, PICKET_SKB_EGRESS,
	       PICKET_PKT_CNT_DNS_MATCHED, PICKET_PKT_CNT_DNS_RESERVE_FAIL, PICKET_PKT_CNT_DNS_UNATTRIBUTED,
	       PICKET_PKT_CNT_ICMP6_MATCHED, PICKET_PKT_CNT_ICMP6_RESERVE_FAIL, PICKET_PKT_CNT_MAX);
}

/* Process and file telemetry, under "proc". */
static void print_proc(void)
{
	int first;

	printf(",\"proc\":{\"task_info\":{");
	first = 1;
	F(picket_task_info, cgroup_id); F(picket_task_info, uid); F(picket_task_info, gid); SZ(picket_task_info);
	printf("},\"exec_event\":{");
	first = 1;
	F(picket_exec_event, task); F(picket_exec_event, old_pid); F(picket_exec_event, argc);
	F(picket_exec_event, args_len); F(picket_exec_event, filename_len); F(picket_exec_event, interp_len);
	F(picket_exec_event, flags); F(picket_exec_event, pad0); F(picket_exec_event, filename);
	F(picket_exec_event, interp); F(picket_exec_event, args); SZ(picket_exec_event);
	printf("},\"fork_event\":{");
	first = 1;
	F(picket_fork_event, task); F(picket_fork_event, clone_flags); F(picket_fork_event, child_pid);
	F(picket_fork_event, child_tgid); F(picket_fork_event, thread); F(picket_fork_event, pad0); SZ(picket_fork_event);
	printf("},\"exit_event\":{");
	first = 1;
	F(picket_exit_event, task); F(picket_exit_event, exit_code); F(picket_exit_event, exit_signal);
	F(picket_exit_event, source); F(picket_exit_event, group_dead); F(picket_exit_event, pad0); SZ(picket_exit_event);
	printf("},\"file_event\":{");
	first = 1;
	F(picket_file_event, task); F(picket_file_event, ret); F(picket_file_event, flags); F(picket_file_event, dirfd);
	F(picket_file_event, dirfd2); F(picket_file_event, mode); F(picket_file_event, path_len);
	F(picket_file_event, path2_len); F(picket_file_event, syscall); F(picket_file_event, path_flags);
	F(picket_file_event, pad0); F(picket_file_event, path); F(picket_file_event, path2); SZ(picket_file_event);
	printf("},\"path_key\":{");
	first = 1;
	F(picket_path_key, prefixlen); F(picket_path_key, data); SZ(picket_path_key);
	printf("},\"proc_config\":{");
	first = 1;
	FS(picket_proc_config, exec_size); FS(picket_proc_config, exec_filename); FS(picket_proc_config, exec_old_pid);
	FS(picket_proc_config, prepare_size); FS(picket_proc_config, prepare_interp); FS(picket_proc_config, execve_size);
	FS(picket_proc_config, execve_argv); FS(picket_proc_config, execveat_size); FS(picket_proc_config, execveat_argv);
	FS(picket_proc_config, execve_exit_size); FS(picket_proc_config, execve_exit_ret);
	FS(picket_proc_config, newtask_size); FS(picket_proc_config, newtask_pid); FS(picket_proc_config, newtask_clone_flags);
	FS(picket_proc_config, exit_size); FS(picket_proc_config, exit_group_dead); FS(picket_proc_config, exit_group_size);
	FS(picket_proc_config, exit_group_code); FS(picket_proc_config, signal_size); FS(picket_proc_config, signal_sig);
	FS(picket_proc_config, signal_handler); FS(picket_proc_config, pad0); FS(picket_proc_config, wakeup_bytes);
	FS(picket_proc_config, ignore_tgid); FS(picket_proc_config, enable_exec); FS(picket_proc_config, enable_fork);
	FS(picket_proc_config, enable_exit); FS(picket_proc_config, threads); SZ(picket_proc_config);
	printf("},\"sys_tp\":{");
	first = 1;
	FS(picket_sys_tp, record_size); FS(picket_sys_tp, nr); FS(picket_sys_tp, dfd); FS(picket_sys_tp, path);
	FS(picket_sys_tp, dfd2); FS(picket_sys_tp, path2); FS(picket_sys_tp, flags); FS(picket_sys_tp, mode);
	FS(picket_sys_tp, how); FS(picket_sys_tp, pad0); SZ(picket_sys_tp);
	printf("},\"file_config\":{");
	first = 1;
	FS(picket_file_config, sys); FS(picket_file_config, exit_size); FS(picket_file_config, exit_nr);
	FS(picket_file_config, exit_ret); FS(picket_file_config, pad0); FS(picket_file_config, wakeup_bytes);
	FS(picket_file_config, ignore_tgid); FS(picket_file_config, path_default); FS(picket_file_config, pad1);
	SZ(picket_file_config);
	printf("},\"constants\":{");
	first = 1;
	C(PICKET_EV_PROC_EXEC); C(PICKET_EV_PROC_FORK); C(PICKET_EV_PROC_EXIT); C(PICKET_EV_FILE_OPEN);
	C(PICKET_EV_FILE_UNLINK); C(PICKET_EV_FILE_RENAME); C(PICKET_EV_FILE_CHMOD); C(PICKET_EV_FILE_MEMFD);
	C(PICKET_SYS_TP_MAX); C(PICKET_PATH_MAX); C(PICKET_ARGC_MAX); C(PICKET_ARGS_MAX); C(PICKET_ARG_MAX);
	C(PICKET_PREFIX_MAX); C(PICKET_AT_FDCWD);
	C(PICKET_EXEC_ARGC_TRUNCATED); C(PICKET_EXEC_ARGS_TRUNCATED); C(PICKET_EXEC_NO_ARGS); C(PICKET_EXEC_ARGV_FAULT);
	C(PICKET_EXEC_FILENAME_TRUNCATED); C(PICKET_EXEC_EXECVEAT);
	C(PICKET_EXIT_UNKNOWN); C(PICKET_EXIT_GROUP); C(PICKET_EXIT_SIGNAL);
	C(PICKET_PCNT_EXEC_MATCHED); C(PICKET_PCNT_EXEC_RESERVE_FAIL); C(PICKET_PCNT_FORK_MATCHED);
	C(PICKET_PCNT_FORK_RESERVE_FAIL); C(PICKET_PCNT_EXIT_MATCHED); C(PICKET_PCNT_EXIT_RESERVE_FAIL);
	C(PICKET_PCNT_EXEC_NO_ARGS); C(PICKET_PCNT_READ_FAIL); C(PICKET_PCNT_MAX);
	C(PICKET_FSYS_OPENAT); C(PICKET_FSYS_OPENAT2); C(PICKET_FSYS_OPEN); C(PICKET_FSYS_CREAT);
	C(PICKET_FSYS_UNLINKAT); C(PICKET_FSYS_UNLINK); C(PICKET_FSYS_RMDIR);
	C(PICKET_FSYS_RENAMEAT2); C(PICKET_FSYS_RENAMEAT);
	C(PICKET_FSYS_RENAME); C(PICKET_FSYS_FCHMODAT); C(PICKET_FSYS_FCHMODAT2); C(PICKET_FSYS_CHMOD);
	C(PICKET_FSYS_MEMFD_CREATE); C(PICKET_FSYS_MAX);
	C(PICKET_FILE_PATH_TRUNCATED); C(PICKET_FILE_PATH2_TRUNCATED); C(PICKET_FILE_PATH_FAULT);
	C(PICKET_FCNT_MATCHED); C(PICKET_FCNT_RESERVE_FAIL); C(PICKET_FCNT_FILTERED); C(PICKET_FCNT_PENDING_FAIL);
	C(PICKET_FCNT_READ_FAIL); C(PICKET_FCNT_MAX);
	C(PICKET_PATH_EMIT); C(PICKET_PATH_DROP);
	printf("}}}\n");
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
	print_proc();
	return 0;
}
