import t from 'tap'
import { join } from 'node:path'
import { packRecords } from '../../shared/codec.js'
import { AgentStream, connectCollector, injectScan } from '../../scripts/injector/index.js'
import { spawnBackend, storedFindings, waitUntil } from './helpers/backend-process.js'
import { ports, probeRecord, tempDir } from './helpers/records.js'

// Defect 1 of issue 11: a 20-port scan whose records carried time -1e20 or
// NaN was acked OK, and then the whole backend exited (the log output threw
// on the finding's time), cutting every other host's stream. Each such batch
// must be refused, naming the record and the field, the backend process must
// stay up, and another host's honest scan must still give exactly its one
// finding. The backend runs in its own process, so the test outlives it if
// it dies.

t.test('a scan stamped -1e20, NaN or +Infinity is refused by record and field; the backend stays up; another host still gets its finding', async t => {
  const tmp = tempDir('picket-hostile-times-')
  t.teardown(tmp.cleanup)
  const be = await spawnBackend(join(tmp.dir, 'picket.db'))
  t.teardown(async () => { if (be.alive()) await be.stop() })
  const client = connectCollector(be.collector)
  t.teardown(() => client.close())

  const host = 'hostile-times'
  const T = Date.now()
  const scan = (bad: number, at: number): Buffer => packRecords(ports(20).map((port, i) => {
    const r = probeRecord(host, { t: T + i, src: '198.51.100.66', port })
    if (i >= at) r.time = bad
    return r
  }))
  const stream = new AgentStream(client, host)
  const cases = [
    { bad: -1e20, at: 0, shown: `time ${String(-1e20)}`, why: /outside what the collector accepts/ },
    { bad: NaN, at: 7, shown: 'time NaN', why: /not a finite number/ },
    { bad: Infinity, at: 19, shown: 'time Infinity', why: /not a finite number/ },
  ]
  let seq = 0
  for (const c of cases) {
    const ack = await stream.sendRaw({ host_id: host, seq: ++seq, count: 20, records: scan(c.bad, c.at), hostname: host, agent_version: 'test' })
    t.equal(ack.status, 'REFUSED', `${c.shown}: refused`)
    t.equal(ack.error, 'PICKET_ERR_RECORD')
    t.equal(ack.message?.startsWith(`record ${c.at}: ${c.shown} `), true, `${c.shown}: the ack names record ${c.at} and the field (${String(ack.message)})`)
    t.match(ack.message, c.why)
    t.match(ack.message, /fix or upgrade the sender|check the sending host's clock/, 'and says what to do')
  }
  await stream.end()
  t.equal(await be.metric('picket_collector_refusals_total', { limit: 'invalid_record' }), 3, 'each refusal counted under invalid_record')

  const honest = await injectScan({ collector: be.collector, hostId: 'honest-host', ports: 20, seed: 11 })
  t.equal(honest.batches.ok, honest.batches.sent, 'the honest host is accepted')
  await waitUntil(() => storedFindings(be.db, 'honest-host').length > 0, 'the honest host\'s finding')
  await new Promise(resolve => setTimeout(resolve, 500))
  t.ok(be.alive(), 'the backend process is still up')
  t.equal((await fetch(`${be.httpUrl}/healthz`)).status, 200, 'and healthy')
  t.equal(storedFindings(be.db, 'honest-host').length, 1, 'exactly one finding for the honest scan')
  t.equal(storedFindings(be.db, host).length, 0, 'none from the refused batches')
})
