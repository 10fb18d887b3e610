import t from 'tap'
import { Worker } from 'node:worker_threads'
import { AF_INET, HEADER, KIND, NET_EVENT, TASK_INFO, TCP } from '../../bpf/abi.js'
import { FILE_EVENT, FILE_SYSCALLS } from '../../bpf/abi-file.js'
import { EXEC_EVENT, EXEC_FLAG, EXIT_EVENT, EXIT_SOURCE, FORK_EVENT } from '../../bpf/abi-proc.js'
import { expandSpans, LeanBatcher, type LeanSpan } from '../../agent/normalize/lean-batch.js'
import { MsgpackWriter } from '../../agent/normalize/pack.js'
import type { DecodeEnv } from '../../agent/normalize/types.js'
import { createProcTable, emptyProcInfo, ProcTableReader } from '../../agent/proctable/table.js'
import { ProcTableWriter } from '../../agent/proctable/writer.js'
import { loadOcsfSchema, validateEvent } from '../../shared/ocsf/schema.js'
import { workerScript } from '../../shared/worker-script.js'

// Raw process and file records, as the kernel writes them, through the
// process table and the normalisers: every record validates against OCSF
// 1.8.0 and names its process's ancestry.

const BOOT_NS = 1_000_000_000_000
const pad8 = (n: number): number => (n + 7) & ~7

function header (buf: Uint8Array, kind: number, size: number, tgid: number, comm: string, ns: number, uid = 0): DataView {
  const dv = new DataView(buf.buffer)
  dv.setUint16(HEADER.kind, kind, true)
  dv.setUint16(HEADER.size, size, true)
  dv.setUint32(HEADER.boot_ns, ns % 2 ** 32, true)
  dv.setUint32(HEADER.boot_ns + 4, Math.floor(ns / 2 ** 32), true)
  dv.setUint32(HEADER.pid, tgid, true)
  dv.setUint32(HEADER.tgid, tgid, true)
  buf.set(Buffer.from(comm.slice(0, 15)), HEADER.comm)
  dv.setUint32(HEADER.SIZEOF + TASK_INFO.uid, uid, true)
  return dv
}

function exec (tgid: number, path: string, argv: string[], ns: number, flags = 0): Uint8Array {
  const args = Buffer.from(argv.map(a => a + '\0').join(''))
  const size = pad8(EXEC_EVENT.args + args.length)
  const buf = new Uint8Array(size)
  const dv = header(buf, KIND.PROC_EXEC, size, tgid, path.split('/').pop() ?? '', ns)
  dv.setUint16(EXEC_EVENT.argc, argv.length, true)
  dv.setUint16(EXEC_EVENT.args_len, args.length, true)
  dv.setUint16(EXEC_EVENT.filename_len, path.length, true)
  dv.setUint16(EXEC_EVENT.flags, flags, true)
  buf.set(Buffer.from(path), EXEC_EVENT.filename)
  buf.set(args, EXEC_EVENT.args)
  return buf
}

function fork (parent: number, child: number, ns: number): Uint8Array {
  const buf = new Uint8Array(FORK_EVENT.SIZEOF)
  const dv = header(buf, KIND.PROC_FORK, FORK_EVENT.SIZEOF, parent, 'p', ns)
  dv.setUint32(FORK_EVENT.child_pid, child, true)
  dv.setUint32(FORK_EVENT.child_tgid, child, true)
  return buf
}

function exit (tgid: number, code: number, ns: number): Uint8Array {
  const buf = new Uint8Array(EXIT_EVENT.SIZEOF)
  const dv = header(buf, KIND.PROC_EXIT, EXIT_EVENT.SIZEOF, tgid, 'x', ns)
  dv.setUint32(EXIT_EVENT.exit_code, code, true)
  buf[EXIT_EVENT.source] = EXIT_SOURCE.EXIT_GROUP
  buf[EXIT_EVENT.group_dead] = 1
  return buf
}

function file (kind: number, tgid: number, syscall: string, path: string, ns: number, opts: { flags?: number, path2?: string, ret?: number } = {}): Uint8Array {
  const size = pad8(opts.path2 !== undefined ? FILE_EVENT.path2 + opts.path2.length + 1 : FILE_EVENT.path + path.length + 1)
  const buf = new Uint8Array(size)
  const dv = header(buf, kind, size, tgid, 'touch', ns)
  dv.setBigInt64(FILE_EVENT.ret, BigInt(opts.ret ?? 3), true)
  dv.setBigUint64(FILE_EVENT.flags, BigInt(opts.flags ?? 0), true)
  dv.setInt32(FILE_EVENT.dirfd, -100, true)
  dv.setUint16(FILE_EVENT.path_len, path.length, true)
  buf[FILE_EVENT.syscall] = FILE_SYSCALLS.indexOf(syscall as never)
  buf.set(Buffer.from(path), FILE_EVENT.path)
  if (opts.path2 !== undefined) {
    dv.setUint16(FILE_EVENT.path2_len, opts.path2.length, true)
    buf.set(Buffer.from(opts.path2), FILE_EVENT.path2)
  }
  return buf
}

function connect (tgid: number, ns: number): Uint8Array {
  const buf = new Uint8Array(NET_EVENT.SIZEOF)
  const dv = header(buf, KIND.NET_STATE, NET_EVENT.SIZEOF, tgid, 'sh', ns)
  dv.setBigUint64(HEADER.SIZEOF, 0n) // a network record has no task info
  buf.set([127, 0, 0, 1], NET_EVENT.laddr)
  buf.set([10, 0, 0, 9], NET_EVENT.raddr)
  dv.setUint16(NET_EVENT.lport, 40000, true)
  dv.setUint16(NET_EVENT.rport, 443, true)
  dv.setUint16(NET_EVENT.family, AF_INET, true)
  buf[NET_EVENT.protocol] = 6
  buf[NET_EVENT.oldstate] = 7
  buf[NET_EVENT.newstate] = TCP.SYN_SENT
  return buf
}

const cat = (parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts))

t.test('exec, fork, exit and file records: OCSF 1.8.0, with the ancestry from the process table', async t => {
  const shape = createProcTable(256)
  const writer = new ProcTableWriter(shape)
  writer.seed(100, 1, 0, 5, '/usr/sbin/sshd', 'sshd: root@pts/0')
  const proc = cat([
    fork(100, 200, BOOT_NS),
    exec(200, '/usr/bin/bash', ['-bash'], BOOT_NS + 1e6),
    fork(200, 300, BOOT_NS + 2e6),
    exec(300, '/usr/bin/sh', ['sh', '-c', 'echo hi'], BOOT_NS + 3e6, EXEC_FLAG.ARGS_TRUNCATED),
    exit(300, 7, BOOT_NS + 4e6),
  ])
  writer.apply(proc, 0, proc.length)
  const files = cat([
    file(KIND.FILE_OPEN, 300, 'openat', '/tmp/x', BOOT_NS + 3.5e6, { flags: 0o101 }),
    file(KIND.FILE_RENAME, 300, 'renameat2', '/tmp/x', BOOT_NS + 3.6e6, { path2: '/tmp/y' }),
    file(KIND.FILE_UNLINK, 300, 'unlinkat', '/tmp/y', BOOT_NS + 3.7e6, { ret: -2 }),
    file(KIND.FILE_CHMOD, 300, 'fchmodat', 'rel/z', BOOT_NS + 3.8e6),
    connect(300, BOOT_NS + 3.9e6),
  ])
  const env: DecodeEnv = { bootToWallNs: 1.7e18, rstReasons: {}, noSocketReason: 1, procs: new ProcTableReader(shape) }
  const batcher = new LeanBatcher({ metadata: { product: { name: 'Picket', vendor_name: 'Picket' }, version: '1.8.0' }, device: { hostname: 'h', type_id: 0 } })
  const w = new MsgpackWriter(1 << 16)
  const spans: LeanSpan[] = []
  const all = cat([proc, files])
  const res = batcher.encode(w, all, 0, all.length, env, 1 << 20, spans)
  t.same(res, { records: 10, written: 8, skipped: 2, errors: 0 }, 'the forks update the table and write nothing')
  const recs = expandSpans(w.buffer, spans)
  const schema = loadOcsfSchema()
  if (schema !== undefined) for (const r of recs) t.same(validateEvent(schema, r), [], `${String(r.class_name)} ${String(r.activity_name)} validates`)

  const [bash, sh, term, create, rename, del, chmod, conn] = recs as Array<Record<string, any>>
  t.match(bash, { class_uid: 1007, activity_id: 1, launch_type_id: 3, process: { pid: 200, file: { path: '/usr/bin/bash', name: 'bash' }, cmd_line: '-bash', parent_process: { pid: 100, file: { path: '/usr/sbin/sshd' }, cmd_line: 'sshd: root@pts/0' } } })
  t.match(sh, {
    process: {
      file: { path: '/usr/bin/sh' },
      cmd_line: 'sh -c echo hi',
      user: { uid: '0' },
      parent_process: { pid: 200, file: { path: '/usr/bin/bash' }, cmd_line: '-bash', parent_process: { pid: 100, file: { path: '/usr/sbin/sshd' } } },
      lineage: ['/usr/sbin/sshd', '/usr/bin/bash', '/usr/bin/sh'],
    },
    actor: { user: { uid: '0' } },
    unmapped: { cmd_line_truncated: true },
  })
  t.equal(sh.process.created_time, Math.floor(BOOT_NS / 1e6 + 2 + 1.7e12), 'created at its fork')
  t.match(term, { activity_id: 2, exit_code: 7, process: { pid: 300, file: { path: '/usr/bin/sh' }, parent_process: { pid: 200 } } })
  t.match(create, { class_uid: 1001, activity_id: 1, file: { path: '/tmp/x', name: 'x', type_id: 1 }, actor: { process: { pid: 300, file: { path: '/usr/bin/sh' }, cmd_line: 'sh -c echo hi', parent_process: { file: { path: '/usr/bin/bash' } } } } })
  t.match(rename, { activity_id: 5, file: { path: '/tmp/x' }, file_result: { path: '/tmp/y', name: 'y' } })
  t.match(del, { activity_id: 4, status_id: 2, status_detail: 'errno 2' })
  t.match(chmod, { activity_id: 6, file: { path: 'rel/z', name: 'z' } })
  t.match(conn, {
    class_uid: 4001,
    activity_id: 1,
    connection_info: { direction_id: 2 },
    actor: { process: { pid: 300, name: 'sh', file: { path: '/usr/bin/sh' }, cmd_line: 'sh -c echo hi', user: { uid: '0' }, parent_process: { pid: 200, file: { path: '/usr/bin/bash' } } } },
  }, 'an outbound connect names its process, with its ancestry, at actor.process')
})

t.test('the process table: exited processes stay a while, then go (counted); a full window pushes the oldest out', async t => {
  const shape = createProcTable(64)
  const writer = new ProcTableWriter(shape, 10_000)
  const reader = new ProcTableReader(shape)
  const info = emptyProcInfo()
  const recs = cat([exec(10, '/bin/a', ['a'], BOOT_NS), exit(10, 0, BOOT_NS + 1e6)])
  writer.apply(recs, 0, recs.length)
  t.ok(reader.lookup(10, info), 'an exited process is still there for late records')
  t.equal(info.path, '/bin/a')
  writer.sweep(BOOT_NS / 1e6 + 5000)
  t.ok(reader.lookup(10, info), 'within the grace time')
  writer.sweep(BOOT_NS / 1e6 + 20_000)
  t.notOk(reader.lookup(10, info), 'evicted after it')
  t.equal(reader.counters().evicted_exited, 1)
  writer.seed(20, 1, 0, 1, '/bin/b', 'b', '/srv/work')
  t.ok(reader.lookup(20, info) && info.cwd === '/srv/work', 'the working directory it was seeded with')
  for (let pid = 1000; pid < 1200; pid++) writer.seed(pid, 1, 0, pid, `/bin/p${pid}`, `p${pid}`)
  t.ok(reader.counters().overflow > 0, 'overflow counted')
  t.ok(reader.lookup(1199, info) && info.path === '/bin/p1199', 'the newest is found')
  t.ok(reader.counters().live <= 64)
})

t.test('the process table under a writer: readers in other threads never see a torn slot', async t => {
  const shape = createProcTable(64)
  const writer = new ProcTableWriter(shape, 0)
  const pids = 120 // more than the table holds: slots are pushed out and reused
  const { script, eval: isEval } = workerScript(new URL('../fixtures/proctable-reader.ts', import.meta.url))
  const readers = [0, 1].map(() => new Worker(script, { eval: isEval, workerData: { shape, pids, ms: 1500 } }))
  const results = readers.map(async w => await new Promise<{ found: number, torn: number }>((resolve, reject) => { w.once('message', resolve); w.once('error', reject) }))
  let gen = 0
  let stop = false
  void Promise.all(results).then(() => { stop = true })
  while (!stop) {
    gen++
    for (let pid = 1; pid <= pids; pid++) {
      const g = gen % 1000
      // ppid and uid carry the generation, so a read that mixes two writes shows
      writer.seed(pid, g, g, 1, `/bin/p${pid}-${g}`, `p${pid} ${'x'.repeat((pid * 7 + g) % 400)}`)
    }
    await new Promise(resolve => setImmediate(resolve))
  }
  const got = await Promise.all(results)
  for (const r of got) {
    t.ok(r.found > 1000, `a reader found ${r.found} processes`)
    t.equal(r.torn, 0, 'and every one consistent')
  }
  t.ok(gen > 10, `${gen} rounds of writes meanwhile`)
})
