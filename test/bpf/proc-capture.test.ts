import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, rmdirSync, statSync } from 'node:fs'
import { release } from 'node:os'
import { join } from 'node:path'
import { OFF_ABSENT } from '../../bpf/abi.js'
import { EXEC_FLAG, EXIT_SOURCE } from '../../bpf/abi-proc.js'
import { decodeProcRecord, PROC_TRACEPOINTS, procDrops, ProcProbe, type ExecRecord, type ExitRecord, type ForkRecord, type ProcProbeOptions, type ProcRecord } from '../../bpf/index.js'
import { isPicketError } from '../../shared/errors.js'
import { rootPath } from '../../shared/paths.js'
import { requireReal } from '../helpers/env.js'
import { json, openProbe, python, thrown, tracefsCopy } from '../helpers/kring.js'

// Process telemetry against the real kernel: real commands, the PROC_EVENTS
// ring drained and decoded, every record checked. The machine runs other
// processes too, so records are picked by the pids the test spawned.

const fixture = rootPath('test', 'fixtures', 'tracefs-6.18')
const TPS = PROC_TRACEPOINTS.map(p => `${p.category}/${p.name}`)

const open = (t: { teardown: (fn: () => void) => void }, opts: ProcProbeOptions = {}): { probe: ProcProbe, records: () => ProcRecord[] } =>
  openProbe(t, () => ProcProbe.open(opts), decodeProcRecord)

const execs = (rs: ProcRecord[], pid: number): ExecRecord[] => rs.filter((r): r is ExecRecord => r.type === 'exec' && r.tgid === pid)
const exits = (rs: ProcRecord[], pid: number): ExitRecord[] => rs.filter((r): r is ExitRecord => r.type === 'exit' && r.tgid === pid)
const forks = (rs: ProcRecord[]): ForkRecord[] => rs.filter((r): r is ForkRecord => r.type === 'fork')

/** The cgroup v2 directory this process is in, and its inode (the kernel's cgroup id). */
function cgroup2 (): { dir: string, id: bigint } | undefined {
  const mount = readFileSync('/proc/self/mounts', 'utf8').split('\n').map(l => l.split(' ')).find(f => f[2] === 'cgroup2')?.[1]
  const rel = readFileSync('/proc/self/cgroup', 'utf8').split('\n').find(l => l.startsWith('0::'))?.slice(3)
  if (mount === undefined || rel === undefined) return undefined
  const dir = join(mount, rel)
  return { dir, id: BigInt(statSync(dir).ino) }
}

t.test('layout from the 6.18 formats: __data_loc strings, argv pointers, clone_flags, group_dead', async t => {
  const { config, attach } = ProcProbe.configure({ tracefsDir: fixture })
  t.match(config, {
    exec_size: 20, exec_filename: 8, exec_old_pid: 16, prepare_size: 24, prepare_interp: 8,
    execve_size: 40, execve_argv: 24, execveat_size: 56, execveat_argv: 32, execve_exit_ret: 16,
    newtask_pid: 8, newtask_clone_flags: 32, exit_group_dead: 32, exit_group_code: 16, signal_sig: 8, signal_handler: 24,
    enable_exec: 1, enable_fork: 1, enable_exit: 1, threads: 0,
  })
  const order = attach.map(a => a.name)
  t.ok(order.indexOf('sched_process_exec') < order.indexOf('sys_enter_execve'), 'the exec consumer is attached before the argv producer')
  t.ok(order.indexOf('sched_process_exit') < order.indexOf('sys_enter_exit_group'), 'the exit consumer before the status producers')
})

t.test('older kernels: no sched_prepare_exec, no group_dead', async t => {
  const dir = tracefsCopy(TPS, (tp, text) => {
    if (tp === 'sched/sched_prepare_exec') return undefined
    if (tp === 'sched/sched_process_exit') return text.replace(/\tfield:bool group_dead;.*\n/, '')
    return text
  }, fixture)
  const { config, attach } = ProcProbe.configure({ tracefsDir: dir })
  t.equal(config.prepare_size, 0, 'no interpreter without sched_prepare_exec')
  t.equal(config.exit_group_dead, OFF_ABSENT, 'the program falls back to the leader exit')
  t.notOk(attach.some(a => a.name === 'sched_prepare_exec'))
})

t.test('a missing tracepoint is named, with the kernel release', async t => {
  const dir = tracefsCopy(TPS, (tp, text) => tp === 'task/task_newtask' ? undefined : text, fixture)
  const missing = thrown(() => ProcProbe.configure({ tracefsDir: dir }))
  t.ok(isPicketError(missing, 'PICKET_ERR_TRACEPOINT_MISSING'), 'PICKET_ERR_TRACEPOINT_MISSING')
  t.match((missing as Error).message, 'task:task_newtask')
  t.match((missing as Error).message, release())
  t.equal(ProcProbe.configure({ tracefsDir: dir, programs: { fork: false } }).config.enable_fork, 0, 'fine without fork records')
  const loc = tracefsCopy(TPS, (tp, text) => tp === 'sched/sched_process_exec' ? text.replace('__data_loc char[] filename', 'char filename[4]') : text, fixture)
  const notLoc = thrown(() => ProcProbe.configure({ tracefsDir: loc }))
  t.ok(isPicketError(notLoc, 'PICKET_ERR_TRACEPOINT_LAYOUT'), 'a fixed array where a __data_loc string was expected is refused')
  t.match((notLoc as Error).message, /filename.*__data_loc/)
})

t.test('a shell pipeline: exec with argv, filename, uid and cgroup; forks parent to child; exits', async t => {
  if (!requireReal(t, { bpf: true, commands: ['base64'] })) return
  const { probe, records } = open(t)
  const cmd = 'echo hi | base64 >/dev/null'
  const sh = spawnSync('/bin/sh', ['-c', cmd])
  const rs = records()
  const [exec] = execs(rs, sh.pid)
  t.ok(exec !== undefined, 'exec record for the shell')
  t.same(exec.argv, ['/bin/sh', '-c', cmd])
  t.equal(exec.filename, '/bin/sh')
  t.equal(exec.interp, '/bin/sh', 'an ELF binary is its own interpreter')
  t.equal(exec.comm, 'sh')
  t.equal(exec.pid, sh.pid)
  t.equal(exec.oldPid, sh.pid)
  t.equal(exec.task.uid, process.getuid!())
  t.equal(exec.task.gid, process.getgid!())
  const cg = cgroup2()
  if (cg !== undefined) t.equal(exec.task.cgroupId, cg.id, `cgroup id is the inode of ${cg.dir}`)
  t.equal(exec.flags, 0)
  t.notOk(exec.truncated)

  const toShell = forks(rs).filter(f => f.childPid === sh.pid)
  t.equal(toShell.length, 1, 'one fork record for the shell')
  t.equal(toShell[0].tgid, process.pid, 'forked by this process')
  t.equal(toShell[0].childTgid, sh.pid)
  t.notOk(toShell[0].thread)
  const fromShell = forks(rs).filter(f => f.tgid === sh.pid)
  t.ok(fromShell.length >= 1, 'the shell forks the pipeline')
  const base64 = fromShell.map(f => execs(rs, f.childPid)[0]).find(e => e?.comm === 'base64')
  t.ok(base64 !== undefined, 'the pipeline child execs base64')
  t.same(base64?.argv, ['base64'])
  t.match(base64?.filename, /\/base64$/)

  const [exit] = exits(rs, sh.pid)
  t.match(exit, { exitCode: 0, source: EXIT_SOURCE.EXIT_GROUP, groupDead: true })
  const c = probe.counters()
  t.equal(procDrops(c), 0, 'no drops')
  t.ok(c.exec.matched >= 2 && c.fork.matched >= 2 && c.exit.matched >= 2, json(c))
})

t.test('argv truncation: more than 20 arguments, a 4 KiB argument, more than 1 KiB in all', async t => {
  if (!requireReal(t, { bpf: true })) return
  const { records } = open(t)
  const many = Array.from({ length: 30 }, (_, i) => `a${i}`)
  const p1 = spawnSync('/bin/true', many)
  const big = 'x'.repeat(4096)
  const p2 = spawnSync('/bin/true', [big, 'after'])
  const wide = Array.from({ length: 8 }, (_, i) => String(i).repeat(200))
  const p3 = spawnSync('/bin/true', wide)
  const rs = records()

  const [e1] = execs(rs, p1.pid)
  t.same(e1.argv, ['/bin/true', ...many.slice(0, 19)], 'the first 20 arguments')
  t.equal(e1.flags & EXEC_FLAG.ARGC_TRUNCATED, EXEC_FLAG.ARGC_TRUNCATED)
  t.ok(e1.truncated)

  const [e2] = execs(rs, p2.pid)
  t.same(e2.argv, ['/bin/true', 'x'.repeat(255), 'after'], 'one argument cut to 255 bytes, the next one kept')
  t.equal(e2.flags & EXEC_FLAG.ARGS_TRUNCATED, EXEC_FLAG.ARGS_TRUNCATED)
  t.equal(e2.flags & EXEC_FLAG.ARGC_TRUNCATED, 0)

  const [e3] = execs(rs, p3.pid)
  const joined = ['/bin/true', ...wide].join('\0')
  t.equal(e3.argv.join('\0'), joined.slice(0, 1023), 'the first 1 KiB, NULs included')
  t.ok(e3.truncated)
  t.ok(e3.size <= 584 + 1024, `the record carries only what it uses (${e3.size} bytes)`)

  const p4 = spawnSync('/bin/true', ['exactly', 'y'.repeat(255)])
  const [e4] = execs(records(), p4.pid)
  t.same(e4.argv, ['/bin/true', 'exactly', 'y'.repeat(255)])
  t.notOk(e4.truncated, 'an argument of exactly 255 bytes is whole')
})

t.test('exit status: exit_group code, fatal signals', async t => {
  if (!requireReal(t, { bpf: true })) return
  const { records } = open(t)
  const three = spawnSync('/bin/sh', ['-c', 'exit 3'])
  t.equal(three.status, 3)
  const segv = spawnSync('/bin/sh', ['-c', 'kill -SEGV $$'])
  const sleeper = spawn('/bin/sleep', ['30'])
  await new Promise(resolve => setTimeout(resolve, 100))
  sleeper.kill('SIGKILL')
  await new Promise(resolve => sleeper.once('exit', resolve))
  const rs = records()
  t.match(exits(rs, three.pid), [{ exitCode: 3, source: EXIT_SOURCE.EXIT_GROUP, groupDead: true }], 'exit 3')
  t.match(exits(rs, segv.pid), [{ exitSignal: 11, source: EXIT_SOURCE.SIGNAL, groupDead: true }], 'killed by SIGSEGV')
  t.match(exits(rs, sleeper.pid!), [{ exitSignal: 9, source: EXIT_SOURCE.SIGNAL, groupDead: true }], 'killed by SIGKILL')
})

const THREADS = `
import os, sys, threading
ts = [threading.Thread(target=lambda: None) for _ in range(4)]
for t in ts: t.start()
for t in ts: t.join()
sys.exit(5)
`

t.test('threads are told from processes: one fork and one exit per process', async t => {
  if (!requireReal(t, { bpf: true, commands: ['python3'] })) return
  const { records } = open(t)
  const py = spawnSync(python()!, ['-c', THREADS])
  t.equal(py.status, 5)
  const rs = records()
  t.equal(forks(rs).filter(f => f.tgid === py.pid).length, 0, 'no fork records for its threads')
  t.match(exits(rs, py.pid), [{ exitCode: 5, groupDead: true }], 'one exit record, when the group dies')
})

t.test('threads, when asked for, are marked', async t => {
  if (!requireReal(t, { bpf: true, commands: ['python3'] })) return
  const { records } = open(t, { threads: true })
  const py = spawnSync(python()!, ['-c', THREADS])
  const rs = records()
  const threads = forks(rs).filter(f => f.tgid === py.pid)
  t.equal(threads.length, 4, 'four thread records')
  t.ok(threads.every(f => f.thread && f.childTgid === py.pid && f.childPid !== py.pid && (f.cloneFlags & 0x10000n) !== 0n), json(threads))
  const ex = exits(rs, py.pid)
  t.equal(ex.filter(e => !e.groupDead).length, 4, 'four thread exits, group_dead 0')
  t.equal(ex.filter(e => e.groupDead).length, 1, 'one process exit')
})

t.test('a non-leader thread that execs: the record has the leader pid and the thread as old_pid', async t => {
  if (!requireReal(t, { bpf: true, commands: ['python3'] })) return
  const { records } = open(t)
  const code = "import os, threading, time\nthreading.Thread(target=lambda: os.execv('/bin/true', ['/bin/true', 'from-thread'])).start()\ntime.sleep(10)"
  const py = spawnSync(python()!, ['-c', code])
  t.equal(py.status, 0)
  const [exec] = execs(records(), py.pid).filter(e => e.filename === '/bin/true')
  t.ok(exec !== undefined, 'an exec record for the process')
  t.equal(exec.pid, py.pid, 'after the exec the thread carries the leader pid')
  t.not(exec.oldPid, py.pid, 'old_pid is the thread that called execve')
  t.same(exec.argv, ['/bin/true', 'from-thread'], 'argv parked under the thread id is found')
})

t.test('a fileless exec (fexecve of a memfd) is an execveat of /dev/fd/N', async t => {
  if (!requireReal(t, { bpf: true, commands: ['python3'] })) return
  const { records } = open(t)
  const code = "import os\nfd = os.memfd_create('payload', 0)\nos.write(fd, open('/bin/true', 'rb').read())\nos.execve(fd, ['payload', 'fileless'], {})"
  const py = spawnSync(python()!, ['-c', code])
  t.equal(py.status, 0, String(py.stderr))
  const [exec] = execs(records(), py.pid).filter(e => e.argv[1] === 'fileless')
  t.ok(exec !== undefined, 'an exec record')
  t.match(exec, { filename: /^\/dev\/fd\/\d+$/, argv: ['payload', 'fileless'] })
  t.equal(exec.flags & EXEC_FLAG.EXECVEAT, EXEC_FLAG.EXECVEAT)
})

t.test('ignoreTgid leaves out what this process does, not what its children do', async t => {
  if (!requireReal(t, { bpf: true })) return
  const { records } = open(t, { ignoreTgid: process.pid })
  const child = spawnSync('/bin/true', ['ignored-parent'])
  const rs = records()
  t.equal(rs.filter(r => r.tgid === process.pid).length, 0, 'nothing from this process')
  t.same(execs(rs, child.pid)[0]?.argv, ['/bin/true', 'ignored-parent'], 'the child exec is reported')
})

t.test('a kernel without group_dead or sched_prepare_exec: the leader exit stands for the process', async t => {
  if (!requireReal(t, { bpf: true, commands: ['python3'] })) return
  const dir = tracefsCopy(TPS, (tp, text) => {
    if (tp === 'sched/sched_prepare_exec') return undefined
    if (tp === 'sched/sched_process_exit') return text.replace(/\tfield:bool group_dead;.*\n/, '')
    return text
  })
  const { records } = open(t, { tracefsDir: dir })
  const py = spawnSync(python()!, ['-c', THREADS])
  const rs = records()
  t.equal(execs(rs, py.pid)[0]?.interp, '', 'no interpreter')
  t.match(exits(rs, py.pid), [{ exitCode: 5, groupDead: true }], 'one exit record')
})

t.test('a process in its own cgroup carries that cgroup id', async t => {
  if (!requireReal(t, { bpf: true })) return
  const cg = cgroup2()
  if (cg === undefined) { t.skip('no cgroup v2 hierarchy mounted'); return }
  const dir = join(cg.dir, `picket-test-${process.pid}`)
  try { mkdirSync(dir) } catch (err) { t.skip(`cannot create a cgroup (${(err as Error).message})`); return }
  t.teardown(() => { try { rmdirSync(dir) } catch {} })
  const { records } = open(t)
  const sh = spawnSync('/bin/sh', ['-c', `echo $$ > ${dir}/cgroup.procs && exec /bin/true in-cgroup`])
  t.equal(sh.status, 0, String(sh.stderr))
  const [exec] = execs(records(), sh.pid).filter(e => e.filename === '/bin/true')
  t.equal(exec?.task.cgroupId, BigInt(statSync(dir).ino))
})

t.test('a tiny ring: received + dropped = emitted', async t => {
  if (!requireReal(t, { bpf: true })) return
  const { probe, records } = open(t, { ringBytes: 4096, wakeupBytes: 1 << 30 })
  const before = probe.counters()
  for (let i = 0; i < 30; i++) spawnSync('/bin/true', ['flood', 'x'.repeat(500)])
  const received = records().length
  const after = probe.counters()
  const emitted = (after.exec.matched + after.fork.matched + after.exit.matched) - (before.exec.matched + before.fork.matched + before.exit.matched)
  const dropped = procDrops(after) - procDrops(before)
  t.ok(dropped > 0, `drops counted: ${dropped}`)
  t.equal(received + dropped, emitted, `received ${received} + dropped ${dropped} = emitted ${emitted}`)
})

// the fixture stands for this kernel in the layout tests above: when this is
// 6.18, its fields must be this kernel's
t.test('the 6.18 fixture holds this kernel\'s fields when it is 6.18', async t => {
  if (!requireReal(t, { root: true })) return
  if (!release().startsWith('6.18.')) { t.skip(`kernel ${release()}`); return }
  const fields = (text: string): string => text.split('\n').filter(l => l.includes('field:') || l.startsWith('print fmt:')).join('\n')
  for (const tp of TPS) {
    t.equal(fields(readFileSync(join(fixture, 'events', tp, 'format'), 'utf8')), fields(readFileSync(join('/sys/kernel/tracing/events', tp, 'format'), 'utf8')), tp)
  }
})
