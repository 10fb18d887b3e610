import t from 'tap'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { startAgent } from '../../agent/index.js'
import { startBackend } from '../../backend/server.js'
import { loadOcsfSchema, validateEvent } from '../../shared/ocsf/schema.js'
import { captureLog } from '../helpers/agent.js'
import { spawnPicket } from '../helpers/cli.js'
import { TestCollector } from '../helpers/collector.js'
import { IN_CI, requireReal } from '../helpers/env.js'

// Process and file telemetry against the real kernel (run under
// flock /tmp/picket-kernel.lock): `picket capture --class process|file`
// while real commands run, every printed record validated against OCSF
// 1.8.0; then the agent shipping them, each naming its parent.

const ENV = { PICKET_TSX: '1' }
type Rec = Record<string, any>

const schema = loadOcsfSchema()

function validateAll (t: Tap.Test, recs: Rec[]): void {
  if (schema === undefined) {
    if (IN_CI) t.fail('CI=true and the OCSF 1.8.0 schema folder is missing')
    return
  }
  const bad = recs.flatMap(r => validateEvent(schema, r).map(e => `${String(r.type_name)}: ${e}`))
  t.same(bad.slice(0, 10), [], `all ${recs.length} printed records validate against OCSF 1.8.0`)
}

async function capture (cls: string, run: () => void): Promise<Rec[]> {
  const p = spawnPicket(['capture', '--class', cls], { env: ENV })
  await p.waitFor(/capture: attached/, { timeoutMs: 60_000 })
  run()
  await new Promise(resolve => setTimeout(resolve, 300))
  const code = await p.stop('SIGINT')
  if (code !== 0) throw new Error(`picket capture exited ${code}: ${p.stderr()}`)
  return p.stdout().split('\n').filter(l => l.length > 0).map(l => JSON.parse(l) as Rec)
}

t.test('capture --class process: exec and exit of real commands, with the parent that ran them', async t => {
  if (!requireReal(t, { bpf: true })) return
  const mark = 'picket-mark-' + randomBytes(4).toString('hex')
  const script = `/bin/true ${mark}; exit 3`
  const recs = await capture('process', () => {
    try { execFileSync('sh', ['-c', script]) } catch {}
    // long enough to be there when its exec is applied: its working directory is read then
    execFileSync('sh', ['-c', 'cd /tmp && exec sleep 0.317'])
  })
  validateAll(t, recs)
  t.ok(recs.every(r => r.class_uid === 1007), 'only process_activity')
  const child = recs.find(r => r.activity_id === 1 && r.process?.cmd_line === `/bin/true ${mark}`)
  t.ok(child !== undefined, 'the Launch of /bin/true, with its command line')
  t.match(child, {
    launch_type_id: 3,
    process: { file: { path: /\/true$/ }, parent_process: { cmd_line: `sh -c ${script}`, file: { path: /\/sh$/ } }, user: { uid: String(process.getuid?.() ?? 0) } },
    actor: { user: { name: /./ } },
  })
  t.ok(Array.isArray(child?.process?.lineage) && child.process.lineage.at(-1).endsWith('/true'), 'lineage ends at the process')
  t.match(recs.find(r => r.activity_id === 1 && r.process?.cmd_line === 'sleep 0.317'), { process: { working_directory: '/tmp' } }, 'a process that lives a little names its working directory')
  const sh = recs.find(r => r.activity_id === 2 && r.process?.cmd_line === `sh -c ${script}`)
  t.match(sh, { exit_code: 3, process: { parent_process: { pid: process.pid } } }, 'the shell\'s Terminate, its exit code, and this test as its parent')
})

t.test('capture --class file: create, rename, chmod and delete, named with the process and its parent', async t => {
  if (!requireReal(t, { bpf: true })) return
  // a short folder: the parent's command line below must fit the table's bound
  const dir = mkdtempSync('/tmp/picket-f-')
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const a = join(dir, 'a.txt')
  const b = join(dir, 'b.txt')
  const script = `touch ${a}; mv ${a} ${b}; chmod 600 ${b}; rm ${b}`
  const recs = await capture('file', () => { execFileSync('sh', ['-c', script]) })
  validateAll(t, recs)
  t.ok(recs.every(r => r.class_uid === 1001), 'only file_activity')
  const mine = recs.filter(r => typeof r.file?.path === 'string' && r.file.path.startsWith(dir))
  const parent = { parent_process: { cmd_line: `sh -c ${script}` } }
  t.match(mine.find(r => r.activity_id === 1), { file: { path: a, name: 'a.txt' }, actor: { process: { file: { path: /\/touch$/ }, cmd_line: `touch ${a}`, ...parent } } }, 'Create by touch')
  t.match(mine.find(r => r.activity_id === 5), { file: { path: a }, file_result: { path: b }, actor: { process: { file: { path: /\/mv$/ }, ...parent } } }, 'Rename by mv')
  t.match(mine.find(r => r.activity_id === 6), { file: { path: b }, actor: { process: { file: { path: /\/chmod$/ } } } }, 'Set Attributes by chmod')
  t.match(mine.find(r => r.activity_id === 4), { file: { path: b }, actor: { process: { file: { path: /\/rm$/ }, ...parent } } }, 'Delete by rm')
})

t.test('the agent ships process and file records with their ancestry; the backend accepts them', async t => {
  if (!requireReal(t, { bpf: true })) return
  const c = await TestCollector.start()
  t.teardown(() => c.close())
  const { log } = captureLog()
  const agent = await startAgent({ collector: c.address, hostId: 'kernel-proc', dataDir: t.testdir(), source: 'kernel', classes: 'process,file', logger: log, statsIntervalMs: 100 })
  t.teardown(() => agent.stop())
  await c.waitFor(() => c.streams > 0, 30_000, 'the agent to connect')
  const dir = mkdtempSync('/tmp/picket-a-')
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const file = join(dir, 'x')
  const script = `echo hi > ${file}; /bin/true ${dir}`
  execFileSync('sh', ['-c', script])
  await new Promise(resolve => setTimeout(resolve, 500))
  const s = await agent.stop()
  t.same(s.consumers.map(x => x.ring).sort(), ['file', 'proc'], 'one consumer thread per class')
  t.same(Object.keys(s.ringDrops).sort(), ['file', 'proc'], 'drops counted per ring')
  t.ok((s.procTable?.live ?? 0) > 0, 'the process table holds the host\'s processes')
  const recs = c.records() as Rec[]
  validateAll(t, recs)
  t.match(recs.find(r => r.class_uid === 1007 && r.process?.cmd_line === `/bin/true ${dir}`), { process: { parent_process: { cmd_line: `sh -c ${script}`, parent_process: { pid: process.pid } } } }, 'the exec names its parent and grandparent')
  t.match(recs.find(r => r.class_uid === 1001 && r.file?.path === file), { activity_id: 1, actor: { process: { cmd_line: `sh -c ${script}`, parent_process: { pid: process.pid } } } }, 'the shell\'s write names the shell and its parent')
  t.equal(s.drops.decode_error, 0)

  // the real backend's collector takes them (no refusal, every batch acked)
  const bdir = t.testdir()
  const backend = await startBackend({ listen: '127.0.0.1:0', http: false, db: join(bdir, 'picket.db'), workers: 1, console: false, logger: captureLog('fatal').log })
  t.teardown(() => backend.close())
  const a2 = await startAgent({ collector: backend.collector.address, hostId: 'kernel-proc-backend', dataDir: t.testdir(), source: 'kernel', classes: 'process,file', logger: log, statsIntervalMs: 100 })
  t.teardown(() => a2.stop())
  execFileSync('sh', ['-c', `/bin/true ${bdir}; echo > ${join(bdir, 'y')}`])
  const end = Date.now() + 20_000
  let st = await a2.stats()
  while ((st.shipper.ackedRecords === 0 || st.spool.pendingBatches > 0) && Date.now() < end) {
    await new Promise(resolve => setTimeout(resolve, 100))
    st = await a2.stats()
  }
  const f = await a2.stop()
  t.ok(f.shipper.ackedRecords > 0, `${f.shipper.ackedRecords} process and file records acked by the backend`)
  t.equal(f.drops.refused, 0, 'none refused')
})
