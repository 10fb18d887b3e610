/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The process class (PROC_EVENTS, proc.bpf.c); mirror: bpf/abi-proc.ts.
 * bpf/events.h includes it after the common part (the header, the kinds,
 * the task info); programs include events.h, never this on its own.
 */
#ifndef PICKET_EVENTS_PROC_H
#define PICKET_EVENTS_PROC_H

#ifndef PICKET_EVENTS_H
#error "include events.h: it includes this after the common part"
#endif

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

#endif /* PICKET_EVENTS_PROC_H */
