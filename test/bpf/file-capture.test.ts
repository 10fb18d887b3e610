import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, realpathSync, writeFileSync } from 'node:fs'
import { arch, release, tmpdir } from 'node:os'
import { join } from 'node:path'
import { OFF_ABSENT } from '../../bpf/abi.js'
import { AT_FDCWD, FILE_PATH_FLAG, FILE_SYSCALLS } from '../../bpf/abi-file.js'
import { decodeFileRecord, FileProbe, type FileProbeOptions, type FileRecord } from '../../bpf/index.js'
import { isPicketError } from '../../shared/errors.js'
import { rootPath } from '../../shared/paths.js'
import { requireReal } from '../helpers/env.js'
import { json, openProbe, python, thrown, tracefsCopy } from '../helpers/kring.js'

// File telemetry against the real kernel: real commands in a temp dir, the
// FILE_EVENTS ring drained and decoded. Records are picked by the pids the
// test spawned (the machine does other things too).

const fixture = rootPath('test', 'fixtures', 'tracefs-6.18')
const TPS = FILE_SYSCALLS.flatMap(s => [`syscalls/sys_enter_${s}`, `syscalls/sys_exit_${s}`])
const O = { WRONLY: 0o1, RDWR: 0o2, CREAT: 0o100, TRUNC: 0o1000, APPEND: 0o2000 }
const AT_REMOVEDIR = 0x200

const open = (t: { teardown: (fn: () => void) => void }, opts: FileProbeOptions = {}): { probe: FileProbe, records: () => FileRecord[] } =>
  openProbe(t, () => FileProbe.open(opts), decodeFileRecord)

function workdir (): string {
  return realpathSync(mkdtempSync(join(tmpdir(), 'picket-file-')))
}

/** Runs a command in cwd and returns its pid: what it does itself carries that tgid. */
function run (cwd: string, cmd: string, ...args: string[]): number {
  const r = spawnSync(cmd, args, { cwd })
  if (r.status !== 0 && cmd !== 'sh') throw new Error(`${cmd} ${args.join(' ')}: ${String(r.stderr)}`)
  return r.pid
}

/** A shell whose own builtins (echo > file) do the work. */
const sh = (cmd: string, cwd: string): number => run(cwd, 'sh', '-c', cmd)

const of = (rs: FileRecord[], pid: number): FileRecord[] => rs.filter(r => r.tgid === pid)

t.test('layout from the 6.18 formats; exits attach before enters', async t => {
  const { config, attach } = FileProbe.configure({ tracefsDir: fixture })
  const idx = (s: string): number => FILE_SYSCALLS.indexOf(s as typeof FILE_SYSCALLS[number])
  t.match(config.sys[idx('openat')], { record_size: 48, nr: 8, dfd: 16, path: 24, flags: 32, mode: 40, path2: OFF_ABSENT, how: OFF_ABSENT })
  t.match(config.sys[idx('renameat2')], { dfd: 16, path: 24, dfd2: 32, path2: 40, flags: 48 })
  t.match(config.sys[idx('openat2')], { how: 32, flags: OFF_ABSENT })
  t.match(config.sys[idx('memfd_create')], { path: 16, flags: 24, dfd: OFF_ABSENT })
  t.match(config, { exitSize: 24, exitNr: 8, exitRet: 16 })
  const firstEnter = attach.findIndex(a => a.name.startsWith('sys_enter_'))
  t.ok(attach.slice(firstEnter).every(a => a.name.startsWith('sys_enter_')), 'every exit before the first enter')
  t.equal(attach.length, 2 * FILE_SYSCALLS.length, 'every call hooked on x86_64 6.18')
})

t.test('a kernel without the newer and the legacy calls (arm64, before 6.6)', async t => {
  const dir = tracefsCopy(TPS, (tp, text) => /_(openat2|fchmodat2|open|creat|unlink|rmdir|rename|renameat|chmod)$/.test(tp) ? undefined : text, fixture)
  const { config, attach } = FileProbe.configure({ tracefsDir: dir })
  t.same(attach.filter(a => a.name.startsWith('sys_enter_')).map(a => a.name.slice(10)), ['openat', 'unlinkat', 'renameat2', 'fchmodat', 'memfd_create'])
  t.equal(config.sys[FILE_SYSCALLS.indexOf('open')].record_size, 0, 'not hooked: the program returns at once')
  const gone = tracefsCopy(TPS, (tp, text) => tp.endsWith('_unlinkat') ? undefined : text, fixture)
  const err = thrown(() => FileProbe.configure({ tracefsDir: gone }))
  t.ok(isPicketError(err, 'PICKET_ERR_TRACEPOINT_MISSING'))
  t.match((err as Error).message, 'syscalls:sys_enter_unlinkat')
  t.match((err as Error).message, release())
  const asked = thrown(() => FileProbe.configure({ tracefsDir: dir, syscalls: ['openat', 'creat'] }))
  t.ok(isPicketError(asked, 'PICKET_ERR_TRACEPOINT_MISSING'), 'a call asked for by name must exist')
})

t.test('path rules are checked at the edge', async t => {
  for (const bad of [{ prefix: 'relative/', action: 'drop' }, { prefix: '/' + 'x'.repeat(64), action: 'drop' }, { prefix: '/' + 'x'.repeat(63), action: 'drop', exact: true }, { prefix: '/ok', action: 'hide' }]) {
    t.ok(isPicketError(thrown(() => FileProbe.open({ tracefsDir: fixture, pathRules: [bad as never] })), 'PICKET_ERR_CONFIG'), json(bad))
  }
})

t.test('write, rename, chmod, read, unlink, rmdir, a failed open: one record each but the read', async t => {
  if (!requireReal(t, { bpf: true })) return
  const { probe, records } = open(t)
  const dir = workdir()
  const write = sh('echo hi > f1', dir)
  const append = sh('echo more >> f1', dir)
  const mv = run(dir, 'mv', 'f1', 'f2')
  const chmod = run(dir, 'chmod', '640', `${dir}/f2`)
  const cat = run(dir, 'cat', 'f2')
  const rm = run(dir, 'rm', 'f2')
  mkdirSync(join(dir, 'sub'))
  const rmdir = run(dir, 'rmdir', 'sub')
  const fail = sh('echo x > /nonexistent-picket/x', dir)
  const filtered = probe.counters().filtered
  const devnull = sh('echo x > /dev/null', dir)
  const rs = records()

  const [w] = of(rs, write).filter(r => r.path === 'f1')
  t.match(w, { type: 'open', syscall: 'openat', dirfd: AT_FDCWD, pathFlags: 0 })
  t.equal(w.flags & (O.WRONLY | O.CREAT | O.TRUNC), O.WRONLY | O.CREAT | O.TRUNC, 'O_WRONLY|O_CREAT|O_TRUNC')
  t.ok(w.ret >= 0, `an fd (${w.ret})`)
  t.equal(w.mode, 0o666)
  t.equal(of(rs, append).find(r => r.path === 'f1')!.flags & O.APPEND, O.APPEND, 'an append')
  t.match(of(rs, mv).filter(r => r.type === 'rename'), [{ syscall: 'renameat2', path: 'f1', path2: 'f2', ret: 0, dirfd: AT_FDCWD, dirfd2: AT_FDCWD }])
  t.match(of(rs, chmod).filter(r => r.type === 'chmod'), [{ syscall: 'fchmodat', path: `${dir}/f2`, mode: 0o640, ret: 0 }])
  t.same(of(rs, cat).filter(r => r.path === 'f2'), [], 'a read-only open is not emitted')
  t.match(of(rs, rm).filter(r => r.type === 'unlink'), [{ syscall: 'unlinkat', path: 'f2', flags: 0, ret: 0 }])
  t.match(of(rs, rmdir).filter(r => r.type === 'unlink'), [{ path: 'sub', flags: AT_REMOVEDIR, ret: 0 }], 'rmdir is an unlink with AT_REMOVEDIR')
  t.match(of(rs, fail).filter(r => r.path === '/nonexistent-picket/x'), [{ type: 'open', ret: -2 }], 'a failed open carries -ENOENT')
  t.ok(rs.every(r => r.size % 8 === 0 && r.size <= 608), 'records are 8-byte multiples no larger than the struct')
  const c = probe.counters()
  t.equal(c.file.reserveFailed, 0, 'no drops')
  t.same(of(rs, devnull), [], 'the default rules drop /dev/null')
  t.ok(c.filtered > filtered, 'and count it as filtered')
})

t.test('memfd_create, openat2, fchmodat2 and the legacy calls', async t => {
  if (!requireReal(t, { bpf: true, commands: ['python3'] })) return
  const { records } = open(t)
  const dir = workdir()
  const py = (code: string): number => {
    const r = spawnSync(python()!, ['-c', code], { cwd: dir, encoding: 'utf8' })
    if (r.status !== 0) throw new Error(r.stderr)
    return r.pid
  }
  const memfd = py("import os; os.memfd_create('picket-x')")
  const rs = records()
  t.match(of(rs, memfd).filter(r => r.type === 'memfd'), [{ syscall: 'memfd_create', path: 'picket-x', flags: 1 }], 'MFD_CLOEXEC')
  t.ok(of(rs, memfd).find(r => r.type === 'memfd')!.ret >= 0)
  if (arch() !== 'x64') { t.skip(`syscall numbers below are x86_64's, this is ${arch()}`); return }
  const raw = py(`
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
sc = libc.syscall
sc.restype = ctypes.c_long
class How(ctypes.Structure):
    _fields_ = [('flags', ctypes.c_uint64), ('mode', ctypes.c_uint64), ('resolve', ctypes.c_uint64)]
how = How(os.O_WRONLY | os.O_CREAT, 0o600, 0)
assert sc(437, -100, b'o2', ctypes.byref(how), ctypes.c_size_t(24)) >= 0   # openat2
how_ro = How(os.O_RDONLY, 0, 0)
assert sc(437, -100, b'o2', ctypes.byref(how_ro), ctypes.c_size_t(24)) >= 0
assert sc(85, b'legacy', 0o644) >= 0          # creat
assert sc(2, b'legacy', os.O_WRONLY | os.O_APPEND) >= 0   # open
assert sc(2, b'legacy', os.O_RDONLY) >= 0     # open, read-only
assert sc(90, b'legacy', 0o600) == 0          # chmod
assert sc(82, b'legacy', b'legacy2') == 0     # rename
assert sc(264, -100, b'legacy2', -100, b'legacy3') == 0   # renameat
assert sc(87, b'legacy3') == 0                # unlink
r = sc(452, -100, b'o2', 0o640, 0)            # fchmodat2 (6.6+)
`)
  const legacy = of(records(), raw)
  const got = legacy.map(r => [r.syscall, r.path, r.path2, r.ret])
  t.same(got, [
    ['openat2', 'o2', '', got[0]?.[3]],
    ['creat', 'legacy', '', got[1]?.[3]],
    ['open', 'legacy', '', got[2]?.[3]],
    ['chmod', 'legacy', '', 0],
    ['rename', 'legacy', 'legacy2', 0],
    ['renameat', 'legacy2', 'legacy3', 0],
    ['unlink', 'legacy3', '', 0],
    ['fchmodat2', 'o2', '', 0],
  ], 'the read-only openat2 and open left out, the rest in order')
  t.ok(legacy.slice(0, 3).every(r => r.ret >= 0), 'fds')
  t.match(legacy[0], { flags: 0o101, mode: 0o600 }, "openat2's flags and mode come from struct open_how")
  t.match(legacy[1], { flags: O.WRONLY | O.CREAT | O.TRUNC, mode: 0o644 }, 'creat is an O_CREAT|O_WRONLY|O_TRUNC open')
})

t.test('path rules: the longest prefix decides, exact rules, relative paths, renames', async t => {
  if (!requireReal(t, { bpf: true })) return
  const dir = workdir()
  mkdirSync(join(dir, 'drop'))
  mkdirSync(join(dir, 'drop', 'keep'))
  const { probe, records } = open(t, {
    pathRules: [
      { prefix: `${dir}/drop/`, action: 'drop' },
      { prefix: `${dir}/drop/keep/`, action: 'emit' },
      { prefix: `${dir}/exact`, action: 'drop', exact: true },
    ],
  })
  const w = (p: string): void => writeFileSync(p, 'x')
  w(`${dir}/drop/a`)
  w(`${dir}/drop/keep/b`)
  w(`${dir}/exact`)
  w(`${dir}/exact2`)
  const rel = sh('echo x > drop/c', dir)
  const relMv = run(dir, 'mv', 'drop/c', 'd')
  const mv = run(dir, 'mv', `${dir}/d`, `${dir}/drop/e`)
  const rs = records()
  t.same(rs.filter(r => r.tgid === process.pid).map(r => r.path), [`${dir}/drop/keep/b`, `${dir}/exact2`],
    'dropped: under drop/ and the exact path; kept: under drop/keep/ and exact2')
  t.same(of(rs, rel).map(r => r.path), ['drop/c'], 'relative paths are always emitted')
  t.same(of(rs, relMv).filter(r => r.type === 'rename').map(r => [r.path, r.path2]), [['drop/c', 'd']])
  t.same(of(rs, mv).filter(r => r.type === 'rename').map(r => r.path2), [`${dir}/drop/e`], 'a rename into a dropped dir is emitted: its source passes')
  t.equal(probe.counters().file.reserveFailed, 0)

  // the rules can change while attached
  probe.setPathRules([{ prefix: `${dir}/`, action: 'drop' }])
  w(`${dir}/drop/keep/f`)
  const rel2 = sh('echo x > g', dir)
  const out = run(dir, 'mv', `${dir}/g`, `${tmpdir()}/picket-out-${process.pid}`)
  const back = run(dir, 'mv', `${tmpdir()}/picket-out-${process.pid}`, `${dir}/g`)
  const within = run(dir, 'mv', `${dir}/g`, `${dir}/h`)
  const rs2 = records()
  t.same(rs2.filter(r => r.tgid === process.pid), [], 'everything under the dir dropped now')
  t.same(of(rs2, rel2).map(r => r.path), ['g'], 'a relative path is always emitted')
  t.equal(of(rs2, out).filter(r => r.type === 'rename').length, 1, 'a rename out of the dir is emitted: its target passes')
  t.equal(of(rs2, back).filter(r => r.type === 'rename').length, 1, 'a rename into the dir is emitted: its source passes')
  t.equal(of(rs2, within).filter(r => r.type === 'rename').length, 0, 'a rename within the dir is dropped')
})

t.test('pathDefault drop: only what a rule emits, and relative paths', async t => {
  if (!requireReal(t, { bpf: true })) return
  const dir = workdir()
  const { records } = open(t, { pathDefault: 'drop', pathRules: [{ prefix: `${dir}/keep`, action: 'emit' }] })
  writeFileSync(`${dir}/other`, 'x')
  writeFileSync(`${dir}/keep1`, 'x')
  const rel = sh('echo x > rel', dir)
  const rs = records()
  t.same(rs.filter(r => r.tgid === process.pid).map(r => r.path), [`${dir}/keep1`])
  t.same(of(rs, rel).map(r => r.path), ['rel'])
})

t.test('a path longer than 255 bytes is cut and flagged', async t => {
  if (!requireReal(t, { bpf: true })) return
  let dir = workdir()
  while (dir.length < 300) { dir = join(dir, 'd'.repeat(40)); mkdirSync(dir) }
  const { records } = open(t)
  writeFileSync(join(dir, 'f'), 'x')
  const [r] = records().filter(r => r.tgid === process.pid && r.type === 'open')
  t.equal(r.path, join(dir, 'f').slice(0, 255))
  t.equal(r.pathFlags, FILE_PATH_FLAG.PATH_TRUNCATED)
})

t.test('ignoreTgid leaves out this process, not its children', async t => {
  if (!requireReal(t, { bpf: true })) return
  const dir = workdir()
  const { records } = open(t, { ignoreTgid: process.pid })
  writeFileSync(join(dir, 'mine'), 'x')
  const child = sh('echo x > theirs', dir)
  const rs = records()
  t.same(rs.filter(r => r.tgid === process.pid), [])
  t.same(of(rs, child).map(r => r.path), ['theirs'])
})

t.test('a tiny ring: received + dropped = emitted', async t => {
  if (!requireReal(t, { bpf: true })) return
  const dir = workdir()
  const { probe, records } = open(t, { ringBytes: 4096, wakeupBytes: 1 << 30 })
  const before = probe.counters()
  for (let i = 0; i < 100; i++) writeFileSync(join(dir, `flood-${i}`), 'x')
  const received = records().length
  const after = probe.counters()
  const emitted = after.file.matched - before.file.matched
  const dropped = after.file.reserveFailed - before.file.reserveFailed
  t.ok(dropped > 0, `drops counted: ${dropped}`)
  t.equal(received + dropped, emitted, `received ${received} + dropped ${dropped} = emitted ${emitted}`)
})
