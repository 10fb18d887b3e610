import t from 'tap'
import { join } from 'node:path'
import type * as grpc from '@grpc/grpc-js'
import { packRecords } from '../../shared/codec.js'
import { createLogger } from '../../shared/logger.js'
import { startBackend, type BackendHandle } from '../../backend/server.js'
import type { HostList } from '../../backend/console/types.js'
import { AgentStream, connectCollector } from '../../scripts/injector/index.js'
import { probeRecord, tempDir } from './helpers/records.js'

// Defect 4: per-host state never went away. After 10,000 fake host ids,
// /metrics grew from 20 KB to 609 KB (a host label per id), /api/hosts
// answered every host at once, and the engine actors, the collector's host
// tracker and the bridge's routing kept every id for good. Here 10,000 ids
// each send one empty or one-record batch through the real collector; then
// /metrics keeps its size, /api/hosts comes in pages with a total, and once
// the hosts are idle past the idle timeout nothing holds them any more: the
// counts come from /healthz's worker stats and collector section.

const HOSTS = 10_000
const IDLE_MS = 3000
const tmp = tempDir('picket-hosts-age-')
t.teardown(tmp.cleanup)

let backend: BackendHandle
let url: string
t.before(async () => {
  backend = await startBackend({
    listen: '127.0.0.1:0',
    http: '127.0.0.1:0',
    db: join(tmp.dir, 'picket.db'),
    workers: 2,
    hostIdleMs: IDLE_MS,
    // windows shorter than the idle timeout, so the one-record hosts' windows are empty by then
    timing: { timespanMs: 1000, quietMs: 1000 },
    logger: createLogger('test-hosts-age', { level: 'fatal', pretty: false }),
  })
  url = backend.http?.url ?? ''
})
t.teardown(async () => { await backend?.close() })

const EMPTY = packRecords([])

async function oneBatch (client: grpc.Client, i: number): Promise<string> {
  const host = `fake-${String(i).padStart(5, '0')}`
  const s = new AgentStream(client, host)
  const recs = i % 2 === 0 ? EMPTY : packRecords([probeRecord(host, { t: Date.now(), src: `203.0.113.${i % 250}`, port: 1 + (i % 1000) })])
  const ack = await s.send(recs, i % 2 === 0 ? 0 : 1)
  await s.end()
  return ack.status
}

async function health (): Promise<{ collector: { hosts: number }, bridge: { workers: Array<{ hosts: number, stats?: { hosts: number, hostsAged: number } }> } }> {
  return await (await fetch(`${url}/healthz`)).json() as never
}

/** The series (name and labels, without the value) on a /metrics page. */
function series (text: string): Set<string> {
  return new Set(text.split('\n').filter(l => l !== '' && !l.startsWith('#')).map(l => l.slice(0, l.lastIndexOf(' '))))
}

function counter (text: string, name: string, labels: string): number {
  const m = new RegExp(`^${name}\\{${labels}\\} (\\d+)$`, 'm').exec(text)
  return m === null ? 0 : Number(m[1])
}

t.test('10,000 fake host ids: /metrics keeps its size, /api/hosts is paged, idle hosts leave every map', async t => {
  const clients = Array.from({ length: 8 }, () => connectCollector(backend.collector.address))
  t.teardown(() => { for (const c of clients) c.close() })
  t.equal(await oneBatch(clients[0], HOSTS), 'OK', 'a first host')
  await backend.flush()
  const before = series(await (await fetch(`${url}/metrics`)).text())

  let next = 0
  const statuses: Record<string, number> = {}
  await Promise.all(Array.from({ length: 200 }, async (_, w) => {
    for (let i = next++; i < HOSTS; i = next++) {
      const st = await oneBatch(clients[w % clients.length], i)
      statuses[st] = (statuses[st] ?? 0) + 1
    }
  }))
  t.same(statuses, { OK: HOSTS }, 'every batch accepted')
  await backend.flush()

  const after = await (await fetch(`${url}/metrics`)).text()
  const grown = [...series(after)].filter(s => !before.has(s))
  // Values widen (1 becomes 10001), so bytes are no measure; series are.
  // Some series appear on their first observation (a GC kind, a worker's
  // first batch): a bounded set. Per-host series would add 10,000 or more.
  t.ok(grown.length < 100, `/metrics has ${grown.length} new series after 10,000 hosts (${before.size} before): none per host; new: ${grown.slice(0, 40).join(', ')}`)
  t.notMatch(after, /fake-0/, 'no host id on /metrics')

  const first = await (await fetch(`${url}/api/hosts?limit=100`)).json() as HostList
  t.equal(first.items.length, 100, 'one page of 100')
  t.equal(first.total, HOSTS + 1, 'with the total of every page')
  t.equal(first.limit, 100)
  t.type(first.nextCursor, 'string', 'and a cursor to the next page')
  const ids = new Set<string>()
  let page: HostList | undefined
  let cursor: string | undefined
  let pages = 0
  do {
    page = await (await fetch(`${url}/api/hosts?limit=500${cursor !== undefined ? `&cursor=${cursor}` : ''}`)).json() as HostList
    for (const h of page.items) ids.add(h.hostId)
    cursor = page.nextCursor
    pages++
  } while (cursor !== undefined && pages < 100)
  t.equal(ids.size, HOSTS + 1, `every host once, over ${pages} pages of at most 500`)
  t.equal((await fetch(`${url}/api/hosts?limit=501`)).status, 400, 'a page is at most 500')
  t.equal((await fetch(`${url}/api/hosts?cursor=bm90LWEtY3Vyc29y`)).status, 400, 'a cursor the API did not give is a 400')

  const deadline = Date.now() + IDLE_MS + 20_000
  let h = await health()
  const held = (x: typeof h): number => x.collector.hosts + x.bridge.workers.reduce((a, w) => a + w.hosts + (w.stats?.hosts ?? 0), 0)
  while (held(h) > 0 && Date.now() < deadline) {
    await new Promise(resolve => setTimeout(resolve, 500))
    h = await health()
  }
  t.equal(h.collector.hosts, 0, 'the collector\'s host tracker let them go')
  t.same(h.bridge.workers.map(w => w.hosts), [0, 0], 'the bridge routes none of them')
  t.same(h.bridge.workers.map(w => w.stats?.hosts), [0, 0], 'the detection workers hold no actor')
  t.equal(h.bridge.workers.reduce((a, w) => a + (w.stats?.hostsAged ?? 0), 0), HOSTS + 1, 'every actor aged out, counted')

  await new Promise(resolve => setTimeout(resolve, 1500))
  const text = await (await fetch(`${url}/metrics`)).text()
  for (const map of ['actors', 'routes', 'tracker']) {
    t.equal(counter(text, 'picket_hosts_aged_out_total', `map="${map}"`), HOSTS + 1, `picket_hosts_aged_out_total{map="${map}"}`)
  }
  t.equal((await (await fetch(`${url}/api/hosts?limit=1`)).json() as HostList).total, HOSTS + 1, 'the store keeps every host\'s row')
})

t.test('a host that comes back after aging out keeps its dedup floor', async t => {
  const client = connectCollector(backend.collector.address)
  t.teardown(() => client.close())
  const host = 'fake-00001'
  const s = new AgentStream(client, host)
  const again = await s.sendRaw({ host_id: host, seq: 1, count: 1, records: packRecords([probeRecord(host, { t: Date.now(), src: '203.0.113.1', port: 2 })]), hostname: host, agent_version: 'test' })
  t.equal(again.status, 'DUPLICATE', 'seq 1 again is a duplicate: the worker got the floor from the store')
  const next = await s.sendRaw({ host_id: host, seq: 2, count: 0, records: EMPTY, hostname: host, agent_version: 'test' })
  t.equal(next.status, 'OK', 'seq 2 is new')
  await s.end()
})
