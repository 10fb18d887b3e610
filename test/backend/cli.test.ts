import t from 'tap'
import { join } from 'node:path'
import { spawnPicket } from '../helpers/cli.js'
import { tempDir } from './helpers/records.js'

// The real command line: `picket backend`, `picket inject-scan` and
// `picket alerts` as processes (TypeScript sources, PICKET_TSX=1).

const ENV = { PICKET_TSX: '1', PICKET_LOG_LEVEL: 'warn' }

async function run (args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | string, out: string, err: string }> {
  const p = spawnPicket(args, { env: { ...ENV, ...env } })
  const code = await p.exited
  return { code, out: p.stdout(), err: p.stderr() }
}

t.test('--help works on backend, alerts and inject-scan', async t => {
  const [b, a, i] = await Promise.all([run(['backend', '--help']), run(['alerts', '--help']), run(['inject-scan', '--help'])])
  t.equal(b.code, 0)
  for (const flag of ['--listen', '--db', '--workers', '--http', '--rules', '--webhook', '--max-batch-bytes', '--tls-client-ca', 'PICKET_LISTEN']) t.ok(b.out.includes(flag), `backend --help mentions ${flag}`)
  t.equal(a.code, 0)
  for (const flag of ['--db', '--json', '--status']) t.ok(a.out.includes(flag), `alerts --help mentions ${flag}`)
  t.equal(i.code, 0)
  for (const flag of ['--collector', '--host-id', '--source', '--ports', '--rate', '--seed', '--hosts', '--sources', '--benign']) t.ok(i.out.includes(flag), `inject-scan --help mentions ${flag}`)
})

t.test('bad configuration is refused once, naming the value', async t => {
  const w = await run(['backend', '--workers', '0'])
  t.equal(w.code, 2)
  t.match(w.err, /--workers: 0 is below the minimum 1/)
  const l = await run(['backend', '--listen', 'nowhere'])
  t.equal(l.code, 2)
  t.match(l.err, /--listen: 'nowhere' is not HOST:PORT/)
  const e = await run(['backend'], { PICKET_MAX_RECORDS: 'many' })
  t.equal(e.code, 2)
  t.match(e.err, /PICKET_MAX_RECORDS \(environment\): 'many' is not an integer/)
  const tmp = tempDir()
  t.teardown(tmp.cleanup)
  const missing = await run(['alerts', '--db', join(tmp.dir, 'none.db')])
  t.equal(missing.code, 1)
  t.match(missing.err, /no alert store at .*none\.db/)
  t.match(missing.err, /PICKET_ERR_STORE/)
})

t.test('picket backend + picket inject-scan + picket alerts, and alerts still works once the backend stopped', async t => {
  const tmp = tempDir()
  t.teardown(tmp.cleanup)
  const db = join(tmp.dir, 'picket.db')
  const backend = spawnPicket(['backend', '--listen', '127.0.0.1:0', '--http', '127.0.0.1:0', '--db', db, '--workers', '1'], { env: { ...ENV, PICKET_LOG_LEVEL: 'info' } })
  t.teardown(async () => { await backend.stop('SIGKILL') })
  const m = await backend.waitFor(/collector on 127\.0\.0\.1:(\d+), console and \/metrics on (http:\/\/\S+),/, { timeoutMs: 60_000 })
  const collector = `127.0.0.1:${m[1]}`
  const inj = await run(['inject-scan', '--collector', collector, '--host-id', 'cli-host', '--ports', '120', '--seed', '3'])
  t.equal(inj.code, 0, inj.err)
  t.match(inj.out, /pattern\s+port scan: 198\.51\.100\.7 → cli-host, 120 tcp ports each/)
  t.match(inj.out, /acks\s+1 OK, 0 DUPLICATE, 0 REFUSED/)
  t.match(inj.out, /expect\s+1 port-scan finding/)
  const health = await (await fetch(`${m[2]}/healthz`)).json() as { status: string }
  t.equal(health.status, 'ok')
  const code = await backend.stop('SIGINT')
  t.equal(code, 0, 'SIGINT stops the backend cleanly')
  t.match(backend.stderr(), /"msg":"backend stopped"/)

  const table = await run(['alerts', '--db', db])
  t.equal(table.code, 0, table.err)
  const lines = table.out.trim().split('\n')
  t.match(lines[0], /^ID\s+STATUS\s+STATE\s+SEVERITY\s+TECHNIQUE\s+HOST\s+SOURCES\s+PORTS\s+FIRST SEEN\s+LAST SEEN\s+TITLE$/)
  t.equal(lines.length, 2, 'one finding')
  t.match(lines[1], /new\s+open\s+Medium\s+T1046\s+cli-host\s+198\.51\.100\.7\s+120\s/)
  const json = await run(['alerts', '--db', db, '--json'])
  t.equal(json.code, 0)
  const arr = JSON.parse(json.out) as Array<{ class_uid: number, device: { uid: string }, finding_info: { attacks: Array<{ technique: { uid: string } }> } }>
  t.equal(arr.length, 1)
  t.equal(arr[0].class_uid, 2004)
  t.equal(arr[0].device.uid, 'cli-host')
  t.equal(arr[0].finding_info.attacks[0].technique.uid, 'T1046')
  const none = await run(['alerts', '--db', db, '--status', 'resolved'])
  t.equal(none.code, 0)
  t.match(none.out, /no findings with status resolved/)
  const badStatus = await run(['alerts', '--db', db, '--status', 'closed'])
  t.equal(badStatus.code, 2)
  t.match(badStatus.err, /is not one of new, in_progress, resolved, false_positive/)
})
