import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { COUNTER, HEADER, KDIR, KIND, NET_CONFIG, NET_EVENT, OFF_ABSENT, RST_REASON_UNKNOWN, TP_LAYOUT_FIELDS, TP_LAYOUT_SIZEOF, TP_MAX, ADDR_MODE } from '../../bpf/abi.js'
import {
  ARG_MAX, ARGC_MAX, ARGS_MAX, AT_FDCWD, EVENT_HEADER, EXEC_EVENT, EXEC_FLAG, EXIT_EVENT, EXIT_SOURCE, FILE_CONFIG, FILE_CONFIG_SIZEOF,
  FILE_COUNTER, FILE_EVENT, FILE_KIND, FILE_PATH_FLAG, FILE_SYSCALLS, FORK_EVENT, PATH_ACTION, PATH_KEY, PATH_MAX, PREFIX_MAX,
  PROC_CONFIG, PROC_CONFIG_SIZEOF, PROC_COUNTER, PROC_KIND, SYS_TP, SYS_TP_MAX, SYS_TP_SIZEOF, TASK_INFO,
} from '../../bpf/abi-proc.js'
import { rootPath } from '../../shared/paths.js'
import { hasCommand, IN_CI } from '../helpers/env.js'

// The TypeScript decoder and the C header must not drift apart silently:
// compile bpf/layout-print.c against bpf/events.h now and compare every
// offset and size with bpf/abi.ts and bpf/abi-proc.ts.

type Printed = Record<string, Record<string, number>> & { proc: Record<string, Record<string, number | number[]>> }

function printLayout (t: Test): Printed | undefined {
  if (!hasCommand('cc')) {
    if (IN_CI) t.fail('CI=true and no C compiler (scripts/setup.sh installs gcc)')
    else t.skip('needs a C compiler')
    return undefined
  }
  const dir = mkdtempSync(join(tmpdir(), 'picket-layout-'))
  const exe = join(dir, 'layout-print')
  const cc = spawnSync('cc', ['-Wall', '-Werror', '-o', exe, rootPath('bpf', 'layout-print.c')], { encoding: 'utf8' })
  t.equal(cc.status, 0, `layout-print.c compiles: ${cc.stderr}`)
  const run = spawnSync(exe, { encoding: 'utf8' })
  t.equal(run.status, 0)
  return JSON.parse(run.stdout) as Printed
}

t.test('decoder offsets match events.h as compiled by the C compiler', async t => {
  const c = printLayout(t)
  if (c === undefined) return

  const { COMM_LEN, SIZEOF: headerSize, ...headerFields } = HEADER
  t.same(c.header, { ...headerFields, SIZEOF: headerSize, COMM_LEN }, 'struct picket_event_header')
  t.same(c.net_event, { ...NET_EVENT }, 'struct picket_net_event')
  const tp: Record<string, number> = {}
  TP_LAYOUT_FIELDS.forEach((f, i) => { tp[f] = 2 * i })
  t.same(c.tp_layout, { ...tp, SIZEOF: TP_LAYOUT_SIZEOF }, 'struct picket_tp_layout')
  t.same(c.net_config, { ...NET_CONFIG }, 'struct picket_net_config')

  const k = c.constants
  t.equal(k.PICKET_EV_NET_STATE, KIND.NET_STATE)
  t.equal(k.PICKET_EV_NET_RESET, KIND.NET_RESET)
  t.equal(k.PICKET_EV_NET_ICMP, KIND.NET_ICMP)
  t.equal(k.PICKET_CNT_MAX, COUNTER.MAX)
  t.equal(k.PICKET_CNT_STATE_MATCHED, COUNTER.STATE_MATCHED)
  t.equal(k.PICKET_CNT_STATE_RESERVE_FAIL, COUNTER.STATE_RESERVE_FAIL)
  t.equal(k.PICKET_CNT_RESET_MATCHED, COUNTER.RESET_MATCHED)
  t.equal(k.PICKET_CNT_RESET_RESERVE_FAIL, COUNTER.RESET_RESERVE_FAIL)
  t.equal(k.PICKET_CNT_ICMP_MATCHED, COUNTER.ICMP_MATCHED)
  t.equal(k.PICKET_CNT_ICMP_RESERVE_FAIL, COUNTER.ICMP_RESERVE_FAIL)
  t.equal(k.PICKET_CNT_READ_FAIL, COUNTER.READ_FAIL)
  t.equal(k.PICKET_OFF_ABSENT, OFF_ABSENT)
  t.equal(k.PICKET_TP_MAX, TP_MAX)
  t.equal(k.PICKET_RST_REASON_UNKNOWN, RST_REASON_UNKNOWN)
  t.equal(k.PICKET_DIR_INBOUND, KDIR.INBOUND)
  t.equal(k.PICKET_DIR_OUTBOUND, KDIR.OUTBOUND)
  t.equal(k.PICKET_DIR_LOCAL, KDIR.LOCAL)
  t.equal(k.PICKET_ADDR_SPLIT, ADDR_MODE.SPLIT)
  t.equal(k.PICKET_ADDR_SOCKADDR, ADDR_MODE.SOCKADDR)
  t.equal(NET_EVENT.SIZEOF % 8, 0, 'records are a multiple of 8 bytes, so they pack back to back in a slab')
})

t.test('the process and file mirror (bpf/abi-proc.ts) matches events.h', async t => {
  const c = printLayout(t)
  if (c === undefined) return
  const p = c.proc
  const { COMM_LEN, SIZEOF: headerSize, ...headerFields } = EVENT_HEADER
  t.same(c.header, { ...headerFields, SIZEOF: headerSize, COMM_LEN }, 'struct picket_event_header')
  t.same(p.task_info, { ...TASK_INFO }, 'struct picket_task_info')
  t.same(p.exec_event, { ...EXEC_EVENT }, 'struct picket_exec_event')
  t.same(p.fork_event, { ...FORK_EVENT }, 'struct picket_fork_event')
  t.same(p.exit_event, { ...EXIT_EVENT }, 'struct picket_exit_event')
  t.same(p.file_event, { ...FILE_EVENT }, 'struct picket_file_event')
  t.same(p.path_key, { ...PATH_KEY }, 'struct picket_path_key')
  t.same(p.proc_config, { ...PROC_CONFIG, SIZEOF: PROC_CONFIG_SIZEOF }, 'struct picket_proc_config')
  t.same(p.sys_tp, { ...SYS_TP, SIZEOF: SYS_TP_SIZEOF }, 'struct picket_sys_tp')
  t.same(p.file_config, { ...FILE_CONFIG, SIZEOF: FILE_CONFIG_SIZEOF }, 'struct picket_file_config')
  for (const s of [EXEC_EVENT, FORK_EVENT, EXIT_EVENT, FILE_EVENT]) {
    t.equal(s.task, EVENT_HEADER.SIZEOF, 'the task info follows the header in every record')
    t.equal(s.SIZEOF % 8, 0, 'records are a multiple of 8 bytes')
  }

  const k = p.constants as Record<string, number>
  const expect: Record<string, number> = {
    PICKET_EV_PROC_EXEC: PROC_KIND.EXEC,
    PICKET_EV_PROC_FORK: PROC_KIND.FORK,
    PICKET_EV_PROC_EXIT: PROC_KIND.EXIT,
    PICKET_EV_FILE_OPEN: FILE_KIND.OPEN,
    PICKET_EV_FILE_UNLINK: FILE_KIND.UNLINK,
    PICKET_EV_FILE_RENAME: FILE_KIND.RENAME,
    PICKET_EV_FILE_CHMOD: FILE_KIND.CHMOD,
    PICKET_EV_FILE_MEMFD: FILE_KIND.MEMFD,
    PICKET_SYS_TP_MAX: SYS_TP_MAX,
    PICKET_PATH_MAX: PATH_MAX,
    PICKET_ARGC_MAX: ARGC_MAX,
    PICKET_ARGS_MAX: ARGS_MAX,
    PICKET_ARG_MAX: ARG_MAX,
    PICKET_PREFIX_MAX: PREFIX_MAX,
    PICKET_AT_FDCWD: AT_FDCWD,
    PICKET_EXIT_UNKNOWN: EXIT_SOURCE.UNKNOWN,
    PICKET_EXIT_GROUP: EXIT_SOURCE.EXIT_GROUP,
    PICKET_EXIT_SIGNAL: EXIT_SOURCE.SIGNAL,
    PICKET_PATH_EMIT: PATH_ACTION.EMIT,
    PICKET_PATH_DROP: PATH_ACTION.DROP,
    PICKET_FSYS_MAX: FILE_SYSCALLS.length,
    PICKET_PCNT_MAX: PROC_COUNTER.MAX,
    PICKET_FCNT_MAX: FILE_COUNTER.MAX,
  }
  const upper = (name: string): string => name.toUpperCase()
  for (const [name, v] of Object.entries(EXEC_FLAG)) expect[`PICKET_EXEC_${name}`] = v
  for (const [name, v] of Object.entries(FILE_PATH_FLAG)) expect[`PICKET_FILE_${name}`] = v
  for (const [name, v] of Object.entries(PROC_COUNTER)) if (name !== 'MAX') expect[`PICKET_PCNT_${name}`] = v
  for (const [name, v] of Object.entries(FILE_COUNTER)) if (name !== 'MAX') expect[`PICKET_FCNT_${name}`] = v
  FILE_SYSCALLS.forEach((name, i) => { expect[`PICKET_FSYS_${upper(name)}`] = i })
  t.same(k, expect, 'every constant, kind, flag, counter and syscall index')
})
