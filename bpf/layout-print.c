// Prints sizeof/offsetof of every struct in events.h, and its constants, as
// JSON: one object per class (common, network, dns, process, file), so
// test/bpf/layout.test.ts can compare them with the TypeScript mirror
// (bpf/abi.ts and its class files). Record fields print as their offset,
// configuration fields as [offset, size]; each class's kinds are among its
// constants.
#include <stddef.h>
#include <stdio.h>
#include "events.h"

static int first;

#define SEP() (first ? "" : ",")
#define OPEN(name) (printf("%s\"%s\":{", SEP(), name), first = 1)
#define CLOSE() (printf("}"), first = 0)
#define F(s, f) (printf("%s\"%s\":%zu", SEP(), #f, offsetof(struct s, f)), first = 0)
#define FS(s, f) (printf("%s\"%s\":[%zu,%zu]", SEP(), #f, offsetof(struct s, f), sizeof(((struct s *)0)->f)), first = 0)
#define SZ(s) (printf("%s\"SIZEOF\":%zu", SEP(), sizeof(struct s)), first = 0)
#define C(name) (printf("%s\"%s\":%lld", SEP(), #name, (long long)(name)), first = 0)

static void common(void)
{
	OPEN("common");
	OPEN("event_header");
	F(picket_event_header, kind); F(picket_event_header, size); F(picket_event_header, cpu);
	F(picket_event_header, boot_ns); F(picket_event_header, pid); F(picket_event_header, tgid);
	F(picket_event_header, comm); SZ(picket_event_header);
	CLOSE();
	OPEN("task_info");
	F(picket_task_info, cgroup_id); F(picket_task_info, uid); F(picket_task_info, gid); SZ(picket_task_info);
	CLOSE();
	OPEN("constants");
	C(PICKET_ABI_VERSION); C(PICKET_COMM_LEN); C(PICKET_OFF_ABSENT); C(PICKET_SYS_TP_MAX); C(PICKET_PATH_MAX);
	CLOSE();
	CLOSE();
}

static void network(void)
{
	OPEN("network");
	OPEN("net_event");
	F(picket_net_event, laddr); F(picket_net_event, raddr); F(picket_net_event, lport);
	F(picket_net_event, rport); F(picket_net_event, family); F(picket_net_event, protocol);
	F(picket_net_event, direction); F(picket_net_event, oldstate); F(picket_net_event, newstate);
	F(picket_net_event, icmp_type); F(picket_net_event, icmp_code); F(picket_net_event, reason);
	F(picket_net_event, sock); F(picket_net_event, duration_ns); F(picket_net_event, count);
	F(picket_net_event, pad2); F(picket_net_event, start_ns); SZ(picket_net_event);
	CLOSE();
	OPEN("tp_layout");
	FS(picket_tp_layout, record_size); FS(picket_tp_layout, addr_mode); FS(picket_tp_layout, skaddr);
	FS(picket_tp_layout, oldstate); FS(picket_tp_layout, newstate); FS(picket_tp_layout, protocol);
	FS(picket_tp_layout, family); FS(picket_tp_layout, sport); FS(picket_tp_layout, dport);
	FS(picket_tp_layout, saddr); FS(picket_tp_layout, daddr); FS(picket_tp_layout, saddr_v6);
	FS(picket_tp_layout, daddr_v6); FS(picket_tp_layout, reason); FS(picket_tp_layout, type);
	FS(picket_tp_layout, code); FS(picket_tp_layout, state_size); FS(picket_tp_layout, pad0);
	SZ(picket_tp_layout);
	CLOSE();
	OPEN("net_config");
	FS(picket_net_config, state); FS(picket_net_config, reset); FS(picket_net_config, icmp);
	FS(picket_net_config, wakeup_bytes); FS(picket_net_config, ignore_tgid);
	FS(picket_net_config, enable_state); FS(picket_net_config, enable_reset);
	FS(picket_net_config, enable_icmp); FS(picket_net_config, pad1); FS(picket_net_config, fold_window_ms);
	SZ(picket_net_config);
	CLOSE();
	OPEN("fold_key");
	F(picket_fold_key, laddr); F(picket_fold_key, raddr); F(picket_fold_key, kind); F(picket_fold_key, port);
	F(picket_fold_key, other_port); F(picket_fold_key, family); F(picket_fold_key, protocol);
	F(picket_fold_key, direction); F(picket_fold_key, oldstate); F(picket_fold_key, newstate);
	F(picket_fold_key, icmp_type); F(picket_fold_key, icmp_code); F(picket_fold_key, pad);
	F(picket_fold_key, reason); F(picket_fold_key, tgid); SZ(picket_fold_key);
	CLOSE();
	OPEN("fold_value");
	F(picket_fold_value, ev); F(picket_fold_value, window_ns); F(picket_fold_value, first_ns);
	F(picket_fold_value, last_ns); F(picket_fold_value, repeats); SZ(picket_fold_value);
	CLOSE();
	OPEN("constants");
	C(PICKET_EV_NET_STATE); C(PICKET_EV_NET_RESET); C(PICKET_EV_NET_ICMP); C(PICKET_EV_NET_ICMP6);
	C(PICKET_DIR_UNKNOWN); C(PICKET_DIR_INBOUND); C(PICKET_DIR_OUTBOUND); C(PICKET_DIR_LOCAL);
	C(PICKET_RST_REASON_UNKNOWN);
	C(PICKET_CNT_STATE_MATCHED); C(PICKET_CNT_STATE_RESERVE_FAIL); C(PICKET_CNT_RESET_MATCHED);
	C(PICKET_CNT_RESET_RESERVE_FAIL); C(PICKET_CNT_ICMP_MATCHED); C(PICKET_CNT_ICMP_RESERVE_FAIL);
	C(PICKET_CNT_READ_FAIL); C(PICKET_CNT_FOLDED); C(PICKET_CNT_MAX);
	C(PICKET_ADDR_NONE); C(PICKET_ADDR_SPLIT); C(PICKET_ADDR_SOCKADDR); C(PICKET_TP_MAX);
	CLOSE();
	CLOSE();
}

static void dns(void)
{
	OPEN("dns");
	OPEN("dns_event");
	F(picket_dns_event, laddr); F(picket_dns_event, raddr); F(picket_dns_event, cookie);
	F(picket_dns_event, cgroup_id); F(picket_dns_event, ifindex); F(picket_dns_event, uid);
	F(picket_dns_event, lport); F(picket_dns_event, rport); F(picket_dns_event, family);
	F(picket_dns_event, protocol); F(picket_dns_event, skb_dir); F(picket_dns_event, dns_len);
	F(picket_dns_event, captured); F(picket_dns_event, attributed); F(picket_dns_event, query_ns);
	F(picket_dns_event, payload);
	SZ(picket_dns_event);
	CLOSE();
	OPEN("sock_owner");
	F(picket_sock_owner, pid); F(picket_sock_owner, tgid); F(picket_sock_owner, uid);
	F(picket_sock_owner, pad0); F(picket_sock_owner, comm); SZ(picket_sock_owner);
	CLOSE();
	OPEN("pkt_config");
	FS(picket_pkt_config, dns_wakeup_bytes); FS(picket_pkt_config, net_wakeup_bytes);
	FS(picket_pkt_config, enable_dns); FS(picket_pkt_config, enable_icmp6); FS(picket_pkt_config, dns_server_side);
	FS(picket_pkt_config, pad0); SZ(picket_pkt_config);
	CLOSE();
	OPEN("constants");
	C(PICKET_EV_DNS); C(PICKET_DNS_SNAP); C(PICKET_SKB_INGRESS); C(PICKET_SKB_EGRESS);
	C(PICKET_PKT_CNT_DNS_MATCHED); C(PICKET_PKT_CNT_DNS_RESERVE_FAIL); C(PICKET_PKT_CNT_DNS_UNATTRIBUTED);
	C(PICKET_PKT_CNT_ICMP6_MATCHED); C(PICKET_PKT_CNT_ICMP6_RESERVE_FAIL); C(PICKET_PKT_CNT_MAX);
	CLOSE();
	CLOSE();
}

static void process(void)
{
	OPEN("process");
	OPEN("exec_event");
	F(picket_exec_event, task); F(picket_exec_event, old_pid); F(picket_exec_event, argc);
	F(picket_exec_event, args_len); F(picket_exec_event, filename_len); F(picket_exec_event, interp_len);
	F(picket_exec_event, flags); F(picket_exec_event, pad0); F(picket_exec_event, filename);
	F(picket_exec_event, interp); F(picket_exec_event, args); SZ(picket_exec_event);
	CLOSE();
	OPEN("fork_event");
	F(picket_fork_event, task); F(picket_fork_event, clone_flags); F(picket_fork_event, child_pid);
	F(picket_fork_event, child_tgid); F(picket_fork_event, thread); F(picket_fork_event, pad0); SZ(picket_fork_event);
	CLOSE();
	OPEN("exit_event");
	F(picket_exit_event, task); F(picket_exit_event, exit_code); F(picket_exit_event, exit_signal);
	F(picket_exit_event, source); F(picket_exit_event, group_dead); F(picket_exit_event, pad0); SZ(picket_exit_event);
	CLOSE();
	OPEN("proc_config");
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
	CLOSE();
	OPEN("constants");
	C(PICKET_EV_PROC_EXEC); C(PICKET_EV_PROC_FORK); C(PICKET_EV_PROC_EXIT);
	C(PICKET_ARGC_MAX); C(PICKET_ARGS_MAX); C(PICKET_ARG_MAX);
	C(PICKET_EXEC_ARGC_TRUNCATED); C(PICKET_EXEC_ARGS_TRUNCATED); C(PICKET_EXEC_NO_ARGS); C(PICKET_EXEC_ARGV_FAULT);
	C(PICKET_EXEC_FILENAME_TRUNCATED); C(PICKET_EXEC_EXECVEAT);
	C(PICKET_EXIT_UNKNOWN); C(PICKET_EXIT_GROUP); C(PICKET_EXIT_SIGNAL);
	C(PICKET_PCNT_EXEC_MATCHED); C(PICKET_PCNT_EXEC_RESERVE_FAIL); C(PICKET_PCNT_FORK_MATCHED);
	C(PICKET_PCNT_FORK_RESERVE_FAIL); C(PICKET_PCNT_EXIT_MATCHED); C(PICKET_PCNT_EXIT_RESERVE_FAIL);
	C(PICKET_PCNT_EXEC_NO_ARGS); C(PICKET_PCNT_READ_FAIL); C(PICKET_PCNT_MAX);
	CLOSE();
	CLOSE();
}

static void file(void)
{
	OPEN("file");
	OPEN("file_event");
	F(picket_file_event, task); F(picket_file_event, ret); F(picket_file_event, flags); F(picket_file_event, dirfd);
	F(picket_file_event, dirfd2); F(picket_file_event, mode); F(picket_file_event, path_len);
	F(picket_file_event, path2_len); F(picket_file_event, syscall); F(picket_file_event, path_flags);
	F(picket_file_event, pad0); F(picket_file_event, path); F(picket_file_event, path2); SZ(picket_file_event);
	CLOSE();
	OPEN("path_key");
	F(picket_path_key, prefixlen); F(picket_path_key, data); SZ(picket_path_key);
	CLOSE();
	OPEN("sys_tp");
	FS(picket_sys_tp, record_size); FS(picket_sys_tp, nr); FS(picket_sys_tp, dfd); FS(picket_sys_tp, path);
	FS(picket_sys_tp, dfd2); FS(picket_sys_tp, path2); FS(picket_sys_tp, flags); FS(picket_sys_tp, mode);
	FS(picket_sys_tp, how); FS(picket_sys_tp, pad0); SZ(picket_sys_tp);
	CLOSE();
	OPEN("file_config");
	FS(picket_file_config, sys); FS(picket_file_config, exit_size); FS(picket_file_config, exit_nr);
	FS(picket_file_config, exit_ret); FS(picket_file_config, pad0); FS(picket_file_config, wakeup_bytes);
	FS(picket_file_config, ignore_tgid); FS(picket_file_config, path_default); FS(picket_file_config, pad1);
	SZ(picket_file_config);
	CLOSE();
	OPEN("constants");
	C(PICKET_EV_FILE_OPEN); C(PICKET_EV_FILE_UNLINK); C(PICKET_EV_FILE_RENAME); C(PICKET_EV_FILE_CHMOD);
	C(PICKET_EV_FILE_MEMFD);
	C(PICKET_PREFIX_MAX); C(PICKET_AT_FDCWD);
	C(PICKET_FSYS_OPENAT); C(PICKET_FSYS_OPENAT2); C(PICKET_FSYS_OPEN); C(PICKET_FSYS_CREAT);
	C(PICKET_FSYS_UNLINKAT); C(PICKET_FSYS_UNLINK); C(PICKET_FSYS_RMDIR);
	C(PICKET_FSYS_RENAMEAT2); C(PICKET_FSYS_RENAMEAT);
	C(PICKET_FSYS_RENAME); C(PICKET_FSYS_FCHMODAT); C(PICKET_FSYS_FCHMODAT2); C(PICKET_FSYS_CHMOD);
	C(PICKET_FSYS_MEMFD_CREATE); C(PICKET_FSYS_MAX);
	C(PICKET_FILE_PATH_TRUNCATED); C(PICKET_FILE_PATH2_TRUNCATED); C(PICKET_FILE_PATH_FAULT);
	C(PICKET_FCNT_MATCHED); C(PICKET_FCNT_RESERVE_FAIL); C(PICKET_FCNT_FILTERED); C(PICKET_FCNT_PENDING_FAIL);
	C(PICKET_FCNT_READ_FAIL); C(PICKET_FCNT_MAX);
	C(PICKET_PATH_EMIT); C(PICKET_PATH_DROP);
	CLOSE();
	CLOSE();
}

int main(void)
{
	printf("{");
	first = 1;
	common();
	network();
	dns();
	process();
	file();
	printf("}\n");
	return 0;
}
