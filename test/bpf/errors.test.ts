import t from 'tap'
import { spawnSync } from 'node:child_process'
import { cpSync, mkdtempSync } from 'node:fs'
import { release, tmpdir } from 'node:os'
import { join } from 'node:path'
import { NetProbe } from '../../bpf/index.js'
import { isPicketError } from '../../shared/errors.js'
import { rootPath } from '../../shared/paths.js'
import { spawnPicket } from '../helpers/cli.js'
import { requireReal } from '../helpers/env.js'

t.test('attaching to a tracepoint that does not exist names it and the kernel', async t => {
  if (!requireReal(t, { bpf: true })) return
  // a tracefs copy that has a format for the fake tracepoint, so only the
  // attach step (which asks the real kernel) can fail
  const dir = mkdtempSync(join(tmpdir(), 'picket-tracefs-'))
  cpSync(rootPath('test', 'fixtures', 'tracefs-6.18'), dir, { recursive: true })
  cpSync(join(dir, 'events', 'sock', 'inet_sock_set_state'), join(dir, 'events', 'sock', 'picket_no_such_tracepoint'), { recursive: true })
  try {
    NetProbe.open({ tracefsDir: dir, tracepoints: { state: { category: 'sock', name: 'picket_no_such_tracepoint' } } }).close()
    t.fail('open should have failed')
  } catch (err) {
    t.ok(isPicketError(err, 'PICKET_ERR_TRACEPOINT_MISSING'), `PICKET_ERR_TRACEPOINT_MISSING: ${(err as Error).message}`)
    t.match((err as Error).message, 'sock:picket_no_such_tracepoint')
    t.match((err as Error).message, release())
  }
})

t.test('a program the verifier refuses fails load with the tail of the verifier log', async t => {
  if (!requireReal(t, { bpf: true, commands: ['clang'] })) return
  const dir = mkdtempSync(join(tmpdir(), 'picket-bpf-'))
  const obj = join(dir, 'modified-ctx.bpf.o')
  const multiarch = spawnSync('gcc', ['-print-multiarch'], { encoding: 'utf8' }).stdout.trim() || 'x86_64-linux-gnu'
  const cc = spawnSync('clang', ['-O2', '-g', '-target', 'bpf', `-I/usr/include/${multiarch}`, `-I${rootPath('bpf')}`, '-c',
    rootPath('test', 'fixtures', 'bpf', 'modified-ctx.bpf.c'), '-o', obj], { encoding: 'utf8' })
  t.equal(cc.status, 0, `fixture compiles: ${cc.stderr}`)
  try {
    NetProbe.open({ objectPath: obj }).close()
    t.fail('load should have failed')
  } catch (err) {
    t.ok(isPicketError(err, 'PICKET_ERR_BPF_LOAD'), 'PICKET_ERR_BPF_LOAD')
    t.match((err as Error).message, /verifier log/)
    t.match((err as Error).message, /dereference of modified ctx ptr/, 'the verifier\'s own words are in the message')
  }
})

t.test('without privileges, capture says which capabilities it needs', async t => {
  if (!requireReal(t, { root: true, commands: ['setpriv'] })) return
  const p = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all',
    process.execPath, rootPath('bin', 'picket.js'), 'capture', '--count', '1'],
  // a clean environment: the test runner's NODE_OPTIONS hooks write where nobody may not
  { encoding: 'utf8', cwd: tmpdir(), timeout: 30_000, env: { PATH: process.env.PATH, HOME: tmpdir() } })
  t.equal(p.status, 1, 'exits 1')
  t.match(p.stderr, /CAP_BPF/)
  t.match(p.stderr, /CAP_PERFMON/)
  t.match(p.stderr, /PICKET_ERR_BPF_PRIVILEGE/)
})

t.test('bad capture flags name the value', async t => {
  const p = spawnPicket(['capture', '--ring-bytes', 'lots'])
  t.equal(await p.exited, 2)
  t.match(p.stderr(), /--ring-bytes: 'lots' is not a size/)
})
