// SPDX-License-Identifier: GPL-2.0-only
/*
 * Picket process telemetry: exec, fork and exit into one ring (PROC_EVENTS),
 * from tracepoints only (no kprobes, no BTF: field offsets come from tracefs
 * through cfg, as in net.bpf.c).
 *
 * exec. argv lives in the old address space, so it must be read before the
 * exec replaces it; the filename is only final once the exec succeeded. As
 * libbpf-tools' execsnoop does, the arguments are parked per thread:
 *
 *   execve(path, argv)                 [syscalls:sys_enter_execve]  execs[tid] = argv
 *     bprm_execve
 *       load_elf_binary
 *         begin_new_exec               [sched:sched_prepare_exec]   execs[tid].interp (6.10+)
 *           de_thread                  a non-leader thread takes over the leader's pid
 *       exec_binprm                    [sched:sched_process_exec]   emit execs[old_pid]
 *   return                             [syscalls:sys_exit_execve]   failed: drop execs[tid]
 *
 * sched_process_exec runs after de_thread, when a non-leader thread that
 * called execve already carries the leader's pid: its record's old_pid is
 * the thread id the arguments were parked under. A failed execve (execvp()
 * tries every $PATH entry) leaves its entry to sys_exit_execve to drop.
 *
 * fork. task:task_newtask fires in the parent at the end of copy_process(),
 * once the child exists, and is the one tracepoint that carries clone_flags:
 * sched_process_fork has the child's pid but not its tgid, so it cannot tell
 * a thread from a process. Threads are left out unless cfg.threads.
 *
 * exit. sched:sched_process_exit fires in every exiting thread and sets
 * group_dead in the last one: the process is reported then, once. It carries
 * no exit status, so the status is learnt on the way there, per tgid in
 * exit_codes: exit_group()'s argument, or a fatal signal taking its default
 * action (signal:signal_deliver). The first cause wins, because exit_group()
 * and a fatal signal both go on to SIGKILL the other threads.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "events.h"
#include "picket.bpf.h"

#define CLONE_THREAD 0x00010000
#define SIG_DFL 0
/* signals whose default action does not end the process: SIGCHLD, SIGCONT,
 * SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU, SIGURG, SIGWINCH */
#define NONFATAL_SIGNALS ((1u << 17) | (1u << 18) | (1u << 19) | (1u << 20) | (1u << 21) | (1u << 22) | \
			  (1u << 23) | (1u << 28))

char LICENSE[] SEC("license") = "GPL";

const volatile struct picket_proc_config cfg = {};

PICKET_RINGBUF(PROC_EVENTS, 4 << 20);
PICKET_COUNTERS(PICKET_PCNT_MAX)

/* An exec record under construction. An argument of up to PICKET_ARG_MAX
 * bytes read at any offset below PICKET_ARGS_MAX lands inside the slot; what
 * spills into the slack is cut off again (read_argv). */
struct exec_slot {
	struct picket_exec_event e;
	__u8 slack[PICKET_ARG_MAX];
};

/* Parked execs by thread id. Entries live from sys_enter_execve to
 * sched_process_exec or a failed sys_exit_execve; LRU so that one lost in
 * between (a thread killed mid-exec) ages out instead of leaking. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct exec_slot);
} execs SEC(".maps");

/* Where an exec that began before attach is built (no parked entry). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_slot);
} exec_scratch SEC(".maps");

static const struct exec_slot empty_slot;

struct exit_status {
	__u32 code;
	__u32 signal;
	__u32 source; /* enum picket_exit_source */
};

/* Exit status by tgid, from the first cause until the group dies. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct exit_status);
} exit_codes SEC(".maps");

static __always_inline int copy_record(__u8 *buf, __u16 size, void *ctx)
{
	return picket_copy_small(buf, size, ctx, &counters, PICKET_PCNT_READ_FAIL);
}

/* Records built in map memory go out with bpf_ringbuf_output: it takes a
 * bounded size, so a record carries only the bytes it uses. */
static __always_inline void emit(void *rec, __u32 size, __u32 matched, __u32 failed)
{
	count(matched);
	if (bpf_ringbuf_output(&PROC_EVENTS, rec, size, picket_wakeup(&PROC_EVENTS, cfg.wakeup_bytes, 0)))
		count(failed);
}

static __always_inline void *reserve(__u32 size, __u32 matched, __u32 failed)
{
	void *e;

	count(matched);
	e = bpf_ringbuf_reserve(&PROC_EVENTS, size, 0);
	if (!e)
		count(failed);
	return e;
}

static __always_inline void submit(void *e, __u32 size)
{
	bpf_ringbuf_submit(e, picket_wakeup(&PROC_EVENTS, cfg.wakeup_bytes, size));
}

/*
 * Up to PICKET_ARGC_MAX arguments, PICKET_ARG_MAX bytes each, PICKET_ARGS_MAX
 * in all, each kept NUL-terminated; what does not fit is cut and flagged.
 * Each argument is read whole (up to PICKET_ARG_MAX) into the slot's slack
 * if need be, then cut back to the total: the verifier can check a constant
 * read size, not one derived from what is left.
 */
static __always_inline void read_argv(struct picket_exec_event *e, const char *const *argv)
{
	const char *arg;
	__u32 off = 0;
	long n;
	int i;

	for (i = 0; i < PICKET_ARGC_MAX; i++) {
		if (bpf_probe_read_user(&arg, sizeof(arg), &argv[i])) {
			e->flags |= PICKET_EXEC_ARGV_FAULT;
			goto out;
		}
		if (!arg)
			goto out;
		if (off >= PICKET_ARGS_MAX) {
			e->flags |= PICKET_EXEC_ARGS_TRUNCATED;
			goto out;
		}
		n = bpf_probe_read_user_str(&e->args[off & (PICKET_ARGS_MAX - 1)], PICKET_ARG_MAX, arg);
		if (n <= 0) {
			e->flags |= PICKET_EXEC_ARGV_FAULT;
			goto out;
		}
		if (n == PICKET_ARG_MAX && picket_user_str_cut(arg, PICKET_ARG_MAX))
			e->flags |= PICKET_EXEC_ARGS_TRUNCATED;
		e->argc++;
		if (off + n > PICKET_ARGS_MAX) {
			e->args[PICKET_ARGS_MAX - 1] = 0;
			e->flags |= PICKET_EXEC_ARGS_TRUNCATED;
			off = PICKET_ARGS_MAX;
			goto out;
		}
		off += n;
	}
	if (bpf_probe_read_user(&arg, sizeof(arg), &argv[PICKET_ARGC_MAX]) == 0 && arg)
		e->flags |= PICKET_EXEC_ARGC_TRUNCATED;
out:
	e->args_len = off;
}

static __always_inline int exec_enter(void *ctx, __u16 size, __u16 argv_off, __u16 flags)
{
	__u8 buf[PICKET_SYS_TP_MAX] = {};
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct exec_slot *s;

	if (!cfg.enable_exec || picket_ignored(cfg.ignore_tgid) || !copy_record(buf, size, ctx))
		return 0;
	if (bpf_map_update_elem(&execs, &tid, &empty_slot, BPF_ANY))
		return 0;
	s = bpf_map_lookup_elem(&execs, &tid);
	if (!s)
		return 0;
	s->e.flags = flags;
	read_argv(&s->e, (const char *const *)sys_u64(buf, argv_off));
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_execve")
int picket_execve(void *ctx)
{
	return exec_enter(ctx, cfg.execve_size, cfg.execve_argv, 0);
}

SEC("tracepoint/syscalls/sys_enter_execveat")
int picket_execveat(void *ctx)
{
	return exec_enter(ctx, cfg.execveat_size, cfg.execveat_argv, PICKET_EXEC_EXECVEAT);
}

/* Attached to sys_exit_execve and sys_exit_execveat. */
SEC("tracepoint/syscalls/sys_exit_execve")
int picket_execve_exit(void *ctx)
{
	__u8 buf[PICKET_SYS_TP_MAX] = {};
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	if (!cfg.enable_exec || !copy_record(buf, cfg.execve_exit_size, ctx))
		return 0;
	if ((__s64)sys_u64(buf, cfg.execve_exit_ret) < 0)
		bpf_map_delete_elem(&execs, &tid);
	return 0;
}

/* Before de_thread: still the thread that parked the arguments. */
SEC("tracepoint/sched/sched_prepare_exec")
int picket_prepare_exec(void *ctx)
{
	__u8 buf[PICKET_SYS_TP_MAX] = {};
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct exec_slot *s;
	int cut;

	if (!cfg.enable_exec || !copy_record(buf, cfg.prepare_size, ctx))
		return 0;
	s = bpf_map_lookup_elem(&execs, &tid);
	if (!s)
		return 0;
	s->e.interp_len = picket_read_loc_str(ctx, buf, cfg.prepare_interp, s->e.interp, PICKET_PATH_MAX, &cut);
	return 0;
}

SEC("tracepoint/sched/sched_process_exec")
int picket_exec(void *ctx)
{
	__u8 buf[PICKET_SYS_TP_MAX] = {};
	struct picket_exec_event *e;
	struct exec_slot *s;
	__u32 old_pid, zero = 0, size;
	int parked = 1, cut;

	if (!cfg.enable_exec || picket_ignored(cfg.ignore_tgid) || !copy_record(buf, cfg.exec_size, ctx))
		return 0;
	old_pid = sys_u32(buf, cfg.exec_old_pid);
	s = bpf_map_lookup_elem(&execs, &old_pid);
	if (!s) {
		parked = 0;
		s = bpf_map_lookup_elem(&exec_scratch, &zero);
		if (!s)
			return 0;
		s->e.flags = PICKET_EXEC_NO_ARGS;
		s->e.argc = 0;
		s->e.args_len = 0;
		s->e.interp_len = 0;
		count(PICKET_PCNT_EXEC_NO_ARGS);
	}
	e = &s->e;
	e->old_pid = old_pid;
	e->pad0 = 0;
	e->filename_len = picket_read_loc_str(ctx, buf, cfg.exec_filename, e->filename, PICKET_PATH_MAX, &cut);
	if (cut)
		e->flags |= PICKET_EXEC_FILENAME_TRUNCATED;
	size = __builtin_offsetof(struct picket_exec_event, args) + ((e->args_len + 7) & ~7u);
	if (size > sizeof(*e))
		size = sizeof(*e);
	picket_fill_header(&e->hdr, PICKET_EV_PROC_EXEC, size);
	picket_fill_task(&e->task);
	emit(e, size, PICKET_PCNT_EXEC_MATCHED, PICKET_PCNT_EXEC_RESERVE_FAIL);
	if (parked)
		bpf_map_delete_elem(&execs, &old_pid);
	return 0;
}

SEC("tracepoint/task/task_newtask")
int picket_fork(void *ctx)
{
	__u8 buf[PICKET_SYS_TP_MAX] = {};
	struct picket_fork_event *e;
	__u64 flags;
	__u8 thread;

	if (!cfg.enable_fork || picket_ignored(cfg.ignore_tgid) || !copy_record(buf, cfg.newtask_size, ctx))
		return 0;
	flags = sys_u64(buf, cfg.newtask_clone_flags);
	thread = (flags & CLONE_THREAD) != 0;
	if (thread && !cfg.threads)
		return 0;
	e = reserve(sizeof(*e), PICKET_PCNT_FORK_MATCHED, PICKET_PCNT_FORK_RESERVE_FAIL);
	if (!e)
		return 0;
	picket_fill_header(&e->hdr, PICKET_EV_PROC_FORK, sizeof(*e));
	picket_fill_task(&e->task);
	e->clone_flags = flags;
	e->child_pid = sys_u32(buf, cfg.newtask_pid);
	e->child_tgid = thread ? e->hdr.tgid : e->child_pid;
	e->thread = thread;
	__builtin_memset(e->pad0, 0, sizeof(e->pad0));
	submit(e, sizeof(*e));
	return 0;
}

static __always_inline void first_cause(__u32 source, __u32 code, __u32 signal)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct exit_status st = { .code = code, .signal = signal, .source = source };

	bpf_map_update_elem(&exit_codes, &tgid, &st, BPF_NOEXIST);
}

SEC("tracepoint/syscalls/sys_enter_exit_group")
int picket_exit_group(void *ctx)
{
	__u8 buf[PICKET_SYS_TP_MAX] = {};

	if (!cfg.enable_exit || !copy_record(buf, cfg.exit_group_size, ctx))
		return 0;
	first_cause(PICKET_EXIT_GROUP, sys_u32(buf, cfg.exit_group_code) & 0xff, 0);
	return 0;
}

SEC("tracepoint/signal/signal_deliver")
int picket_signal(void *ctx)
{
	__u8 buf[PICKET_SYS_TP_MAX] = {};
	__u32 sig;

	if (!cfg.enable_exit || !copy_record(buf, cfg.signal_size, ctx))
		return 0;
	sig = sys_u32(buf, cfg.signal_sig);
	if (sys_u64(buf, cfg.signal_handler) != SIG_DFL || sig == 0 || sig > 64 ||
	    (sig < 32 && (NONFATAL_SIGNALS & (1u << sig))))
		return 0;
	first_cause(PICKET_EXIT_SIGNAL, 0, sig);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int picket_exit(void *ctx)
{
	__u8 buf[PICKET_SYS_TP_MAX] = {};
	struct picket_exit_event *e;
	struct exit_status st = {}, *found;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u8 group_dead;

	if (!cfg.enable_exit || !copy_record(buf, cfg.exit_size, ctx))
		return 0;
	/* Kernels whose record lacks group_dead (it came late): the leader's exit stands
	 * for the process's: right unless the leader exits before its threads. */
	if (cfg.exit_group_dead == PICKET_OFF_ABSENT)
		group_dead = (__u32)bpf_get_current_pid_tgid() == tgid;
	else
		group_dead = sys_u8(buf, cfg.exit_group_dead) != 0;
	if (group_dead) {
		found = bpf_map_lookup_elem(&exit_codes, &tgid);
		if (found) {
			st = *found;
			bpf_map_delete_elem(&exit_codes, &tgid);
		}
	} else if (!cfg.threads) {
		return 0;
	}
	if (picket_ignored(cfg.ignore_tgid))
		return 0;
	e = reserve(sizeof(*e), PICKET_PCNT_EXIT_MATCHED, PICKET_PCNT_EXIT_RESERVE_FAIL);
	if (!e)
		return 0;
	picket_fill_header(&e->hdr, PICKET_EV_PROC_EXIT, sizeof(*e));
	picket_fill_task(&e->task);
	e->exit_code = st.code;
	e->exit_signal = st.signal;
	e->source = st.source;
	e->group_dead = group_dead;
	__builtin_memset(e->pad0, 0, sizeof(e->pad0));
	submit(e, sizeof(*e));
	return 0;
}
