import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  ABI_VERSION, ADDR_MODE, CLASSES, COUNTER, FOLD_KEY, FOLD_VALUE, HEADER, KDIR, KIND, NET_CONFIG, NET_CONFIG_SIZEOF, NET_EVENT, OFF_ABSENT, PATH_MAX,
  RST_REASON_UNKNOWN, SYS_TP_MAX, TASK_INFO, TP_LAYOUT, TP_LAYOUT_SIZEOF, TP_MAX, type EventClass,
} from '../../bpf/abi.js'
import {
  AT_FDCWD, FILE_CONFIG, FILE_CONFIG_SIZEOF, FILE_COUNTER, FILE_EVENT, FILE_PATH_FLAG, FILE_SYSCALLS, PATH_ACTION, PATH_KEY, PREFIX_MAX,
  SYS_TP, SYS_TP_SIZEOF,
} from '../../bpf/abi-file.js'
import { DNS_EVENT, DNS_SNAP, PKT_CONFIG, PKT_CONFIG_SIZEOF, PKT_COUNTER, SKB_DIR, SOCK_OWNER } from '../../bpf/abi-dns.js'
import { ARG_MAX, ARGC_MAX, ARGS_MAX, EXEC_EVENT, EXEC_FLAG, EXIT_EVENT, EXIT_SOURCE, FORK_EVENT, PROC_CONFIG, PROC_CONFIG_SIZEOF, PROC_COUNTER } from '../../bpf/abi-proc.js'
import { encodePktConfig } from '../../bpf/packet.js'
import { rootPath } from '../../shared/paths.js'
import { hasCommand, IN_CI } from '../helpers/env.js'

// The TypeScript mirror and the C header must not drift apart silently:
// compile bpf/layout-print.c against bpf/events.h now and compare every
// offset, size and constant with bpf/abi.ts and its class files, class by
// class; a struct layout-print.c prints and the mirror lacks fails too.

type Printed = Record<'common' | EventClass, Record<string, Record<string, number | number[]>>>

let printed: Printed | undefined
function printLayout (t: Test): Printed | undefined {
  if (printed !== undefined) return printed
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
  printed = JSON.parse(run.stdout) as Printed
  return printed
}

/** { PREFIX + name: value } for each entry of a constant table (MAX included). */
const prefixed = (prefix: string, table: Readonly<Record<string, number>>): Record<string, number> =>
  Object.fromEntries(Object.entries(table).map(([k, v]) => [prefix + k, v]))

/** The PICKET_EV_* constants of a class's kinds, by the TypeScript class table. */
const kindsOf = (cls: EventClass): Record<string, number> =>
  Object.fromEntries(Object.entries(KIND).filter(([, v]) => CLASSES[cls].kinds.includes(v)).map(([k, v]) => [`PICKET_EV_${k}`, v]))

/** Each class's structs as layout-print.c names them, and their mirrors (configuration structs with their sizes). */
const STRUCTS: Record<keyof Printed, Record<string, object>> = {
  common: { event_header: (({ COMM_LEN, ...h }) => h)(HEADER), task_info: TASK_INFO },
  network: {
    net_event: NET_EVENT,
    tp_layout: { ...TP_LAYOUT, SIZEOF: TP_LAYOUT_SIZEOF },
    net_config: { ...NET_CONFIG, SIZEOF: NET_CONFIG_SIZEOF },
    fold_key: FOLD_KEY,
    fold_value: FOLD_VALUE,
  },
  dns: { dns_event: DNS_EVENT, sock_owner: SOCK_OWNER, pkt_config: { ...PKT_CONFIG, SIZEOF: PKT_CONFIG_SIZEOF } },
  process: { exec_event: EXEC_EVENT, fork_event: FORK_EVENT, exit_event: EXIT_EVENT, proc_config: { ...PROC_CONFIG, SIZEOF: PROC_CONFIG_SIZEOF } },
  file: { file_event: FILE_EVENT, path_key: PATH_KEY, sys_tp: { ...SYS_TP, SIZEOF: SYS_TP_SIZEOF }, file_config: { ...FILE_CONFIG, SIZEOF: FILE_CONFIG_SIZEOF } },
}

/** Each class's constants by their C names: kinds, limits, flags, counters. */
const CONSTANTS: Record<keyof Printed, Record<string, number>> = {
  common: { PICKET_ABI_VERSION: ABI_VERSION, PICKET_COMM_LEN: HEADER.COMM_LEN, PICKET_OFF_ABSENT: OFF_ABSENT, PICKET_SYS_TP_MAX: SYS_TP_MAX, PICKET_PATH_MAX: PATH_MAX },
  network: {
    ...kindsOf('network'), ...prefixed('PICKET_DIR_', KDIR), PICKET_RST_REASON_UNKNOWN: RST_REASON_UNKNOWN,
    ...prefixed('PICKET_CNT_', COUNTER), ...prefixed('PICKET_ADDR_', ADDR_MODE), PICKET_TP_MAX: TP_MAX,
  },
  dns: { ...kindsOf('dns'), PICKET_DNS_SNAP: DNS_SNAP, ...prefixed('PICKET_SKB_', SKB_DIR), ...prefixed('PICKET_PKT_CNT_', PKT_COUNTER) },
  process: {
    ...kindsOf('process'), PICKET_ARGC_MAX: ARGC_MAX, PICKET_ARGS_MAX: ARGS_MAX, PICKET_ARG_MAX: ARG_MAX, ...prefixed('PICKET_EXEC_', EXEC_FLAG),
    PICKET_EXIT_UNKNOWN: EXIT_SOURCE.UNKNOWN, PICKET_EXIT_GROUP: EXIT_SOURCE.EXIT_GROUP, PICKET_EXIT_SIGNAL: EXIT_SOURCE.SIGNAL,
    ...prefixed('PICKET_PCNT_', PROC_COUNTER),
  },
  file: {
    ...kindsOf('file'), PICKET_PREFIX_MAX: PREFIX_MAX, PICKET_AT_FDCWD: AT_FDCWD,
    ...Object.fromEntries(FILE_SYSCALLS.map((name, i) => [`PICKET_FSYS_${name.toUpperCase()}`, i])), PICKET_FSYS_MAX: FILE_SYSCALLS.length,
    ...prefixed('PICKET_FILE_', FILE_PATH_FLAG), ...prefixed('PICKET_FCNT_', FILE_COUNTER),
    PICKET_PATH_EMIT: PATH_ACTION.EMIT, PICKET_PATH_DROP: PATH_ACTION.DROP,
  },
}

for (const cls of Object.keys(STRUCTS) as Array<keyof Printed>) {
  t.test(`the ${cls} part of events.h matches the mirror, struct by struct`, async t => {
    const c = printLayout(t)?.[cls]
    if (c === undefined) return
    t.same(Object.keys(c), [...Object.keys(STRUCTS[cls]), 'constants'], 'every struct printed is mirrored')
    for (const [name, mirror] of Object.entries(STRUCTS[cls])) t.same(c[name], mirror, `struct picket_${name}`)
    t.same(c.constants, CONSTANTS[cls], 'every constant, its kinds included')
  })
}

t.test('every kind is in exactly one class, each class has its own ring', async t => {
  const all = Object.values(CLASSES).flatMap(c => c.kinds)
  t.same([...all].sort((a, b) => a - b), Object.values(KIND).sort((a, b) => a - b))
  t.equal(new Set(Object.values(CLASSES).map(c => c.ring)).size, Object.keys(CLASSES).length)
})

t.test('records pack back to back: multiples of 8 bytes, the task info right after the header', async t => {
  for (const r of [NET_EVENT, EXEC_EVENT, FORK_EVENT, EXIT_EVENT, FILE_EVENT]) t.equal(r.SIZEOF % 8, 0)
  for (const r of [EXEC_EVENT, FORK_EVENT, EXIT_EVENT, FILE_EVENT]) t.equal(r.task, HEADER.SIZEOF)
  t.equal(DNS_EVENT.payload % 8, 0, 'a DNS record rounded up to 8 from its payload packs too')
  t.equal(DNS_EVENT.SIZEOF, DNS_EVENT.payload + DNS_SNAP)
})

t.test('encodePktConfig writes each field where the struct has it', async t => {
  const b = encodePktConfig({ dnsWakeupBytes: 0x01020304, netWakeupBytes: 7, enableDns: true, enableIcmp6: false, dnsServerSide: true })
  t.equal(b.length, PKT_CONFIG_SIZEOF)
  const dv = new DataView(b.buffer)
  t.equal(dv.getUint32(PKT_CONFIG.dns_wakeup_bytes[0], true), 0x01020304)
  t.equal(dv.getUint32(PKT_CONFIG.net_wakeup_bytes[0], true), 7)
  t.same([b[PKT_CONFIG.enable_dns[0]], b[PKT_CONFIG.enable_icmp6[0]], b[PKT_CONFIG.dns_server_side[0]]], [1, 0, 1])
})
