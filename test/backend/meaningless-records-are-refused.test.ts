import * as grpc from '@grpc/grpc-js'
import t from 'tap'
import { join } from 'node:path'
import { Packr } from 'msgpackr'
import { createLogger } from '../../shared/logger.js'
import { startBackend } from '../../backend/server.js'
import { AgentStream, connectCollector } from '../../scripts/injector/index.js'
import { ports, probeRecord, tempDir } from './helpers/records.js'

// Defect 12 of issue 11: records were not checked for meaning. A source
// 'not-an-ip' became an "IP Address" observable of a finding, and plain
// scalars were taken as records. Each such batch must be refused, the Ack
// naming the record and the field, and nothing from it may reach a finding.

const tmp = tempDir('picket-meaning-')
t.teardown(tmp.cleanup)

t.test('a record that means nothing is refused by index and field, and never reaches a finding', async t => {
  const be = await startBackend({
    listen: '127.0.0.1:0',
    http: '127.0.0.1:0',
    db: join(tmp.dir, 'picket.db'),
    workers: 1,
    console: false,
    logger: createLogger('test-meaning', { level: 'fatal', pretty: false }),
  })
  t.teardown(be.close)
  const client = connectCollector(be.collector.address)
  t.teardown(() => client.close())
  const packr = new Packr({ useRecords: false })
  const T = Date.now()
  const host = 'meaning-host'
  /** a 20-port scan (over the 15-port threshold) whose record `at` is changed by `spoil` */
  const scan = (at: number, spoil: (r: Record<string, any>) => unknown): Buffer => packr.pack(ports(20).map((port, i) => {
    const r = probeRecord(host, { t: T + i, src: '198.51.100.77', port }) as unknown as Record<string, any>
    return i === at ? spoil(r) : r
  }))
  const cases: Array<{ what: string, at: number, spoil: (r: Record<string, any>) => unknown, message: string, error?: string }> = [
    { what: 'a source that is not an IP', at: 0, spoil: r => { r.src_endpoint.ip = 'not-an-ip'; return r }, message: "record 0: src_endpoint.ip 'not-an-ip' is not an IPv4 or IPv6 address" },
    { what: 'a port over 65535', at: 5, spoil: r => { r.dst_endpoint.port = 70000; return r }, message: 'record 5: dst_endpoint.port 70000 is not a port (an integer from 0 to 65535)' },
    { what: 'a port that is a string', at: 3, spoil: r => { r.dst_endpoint.port = '80'; return r }, message: "record 3: dst_endpoint.port '80' is a string, not a port (an integer from 0 to 65535)" },
    { what: 'a scalar record', at: 2, spoil: () => 5, message: 'record 2: the record is a number, not a map' },
    // an array is a lean record [shape, value, ...]: one that starts with no shape index cannot be read at all
    { what: 'an array record', at: 4, spoil: r => [r], message: 'record 4 is an array that starts with a map; a lean record starts with its shape\'s index', error: 'PICKET_ERR_DECODE' },
  ]
  const s = new AgentStream(client, host)
  let seq = 0
  for (const c of cases) {
    const ack = await s.sendRaw({ host_id: host, seq: ++seq, count: 20, records: scan(c.at, c.spoil), hostname: host, agent_version: 'test' })
    t.match(ack, { status: 'REFUSED', error: c.error ?? 'PICKET_ERR_RECORD', code: grpc.status.INVALID_ARGUMENT, limit: '' }, `${c.what}: refused`)
    t.equal(ack.message?.startsWith(c.message), true, `${c.what}: the ack says '${c.message}' (${String(ack.message)})`)
  }
  t.equal(s.stats.reconnects, 0, 'the stream stayed up')

  // the same host's honest scan afterwards: its one finding carries only what it sent
  const honest = packr.pack(ports(20, 2000).map((port, i) => probeRecord(host, { t: T + 100 + i, src: '198.51.100.78', port })))
  t.equal((await s.sendRaw({ host_id: host, seq: ++seq, count: 20, records: honest, hostname: host, agent_version: 'test' })).status, 'OK')
  await s.end()
  await be.flush()
  const text = await (await fetch(`${be.http?.url ?? ''}/metrics`)).text()
  t.match(text, new RegExp(`^picket_collector_refusals_total\\{limit="invalid_record"\\} ${cases.length - 1}$`, 'm'), 'each meaningless record counted under invalid_record')
  t.match(text, /^picket_collector_refusals_total\{limit="decode"\} 1$/m, 'the unreadable one under decode')
  const all = be.store.listFindings({ limit: 500 })
  t.equal(all.total, 1, 'one finding: the honest scan')
  const f = all.items[0]
  t.same(f.sources, ['198.51.100.78'])
  t.equal(f.portCount, 20)
  t.same(f.finding.observables?.filter(o => o.type_id === 2).map(o => o.value), ['198.51.100.78'], 'the only IP Address observable is the honest source')
  const json = JSON.stringify(f.finding)
  t.notOk(json.includes('not-an-ip'), 'no finding carries the bad source')
  t.notOk(/\b70000\b/.test(json) || json.includes('"80"'), 'nor the bad ports')
})
