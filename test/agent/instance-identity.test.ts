import * as grpc from '@grpc/grpc-js'
import t from 'tap'
import { readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { defaultHostId, hostIdOf } from '../../agent/host-id.js'
import { startAgent, type AgentHandle, type AgentOptions } from '../../agent/index.js'
import { InFlight } from '../../agent/ship/inflight.js'
import { Spool } from '../../agent/ship/spool.js'
import { startBackend, type BackendHandle } from '../../backend/server.js'
import { packRecords } from '../../shared/codec.js'
import { isPicketError } from '../../shared/errors.js'
import { checkHostId } from '../../shared/host-id.js'
import { collectorService, type Ack, type Batch } from '../../shared/proto/index.js'
import { AgentStream, connectCollector } from '../../scripts/injector/index.js'
import { captureLog, waitForStats } from '../helpers/agent.js'
import { spawnPicket } from '../helpers/cli.js'

// The agent's side of the delivery identity: a spool names its seq stream
// with an instance id, minted again whenever the stream restarts at 1; the
// shipper takes an ack only for a batch of its host and instance it has in
// flight; and the agent starts only with a host id the collector accepts.

function agentOptions (collector: string, dataDir: string, extra: Partial<AgentOptions> = {}): AgentOptions {
  return {
    collector, hostId: 'inst-host', dataDir, source: 'synth', slabBytes: 32 * 1024, decoders: 1,
    statsIntervalMs: 50, backoffInitialMs: 50, backoffMaxMs: 400, shutdownTimeoutMs: 2000, logger: captureLog('fatal').log, ...extra,
  }
}

async function hostCounts (b: BackendHandle, hostId: string): Promise<{ records: number, duplicates: number }> {
  await b.flush()
  const h = b.store.getHost(hostId)
  return { records: h?.records ?? 0, duplicates: h?.duplicateBatches ?? 0 }
}

t.test('the spool mints an instance id with each new seq stream and keeps it otherwise', async t => {
  const dir = t.testdir()
  const { log } = captureLog()
  const open = (): Spool => Spool.open({ dir, maxBytes: 1 << 20, segmentBytes: 64 << 10, log })
  let s = open()
  const first = s.instance
  t.match(first, /^[0-9a-f]{32}$/, 'a new spool gets a random 128-bit id')
  for (let i = 0; i < 3; i++) s.append(Buffer.alloc(10), 1)
  s.ack(1)
  s.close()
  s = open()
  t.equal(s.instance, first, 'reopened with its segments: the same instance')
  t.equal(s.nextSeq, 4)
  s.close()

  for (const n of readdirSync(dir)) if (n.startsWith('seg-')) unlinkSync(join(dir, n))
  s = open()
  t.equal(s.instance, first, 'segments gone but the ack watermark kept: the seq carries on, and so does the instance')
  t.equal(s.nextSeq, 2)
  s.close()

  for (const n of readdirSync(dir)) if (n.startsWith('seg-') || n === 'acked') unlinkSync(join(dir, n))
  s = open()
  t.equal(s.nextSeq, 1, 'segments and watermark gone: seq restarts at 1')
  const second = s.instance
  t.not(second, first, '... under a new instance')
  t.match(second, /^[0-9a-f]{32}$/)
  s.append(Buffer.alloc(10), 1)
  s.close()

  writeFileSync(join(dir, 'instance'), 'garbage')
  s = open()
  t.match(s.instance, /^[0-9a-f]{32}$/, 'a damaged instance file: a new id, never a guess')
  t.not(s.instance, second)
  s.close()

  unlinkSync(join(dir, 'instance'))
  s = open()
  t.equal(s.instance, '', 'a spool from before instance ids keeps the legacy instance until its stream restarts')
  t.equal(s.stats().instance, '')
  s.close()
})

t.test('defect 3: an agent whose spool was deleted restarts at seq 1 under a new instance, and its batches are accepted, not taken for duplicates', async t => {
  const dir = t.testdir()
  const backend = await startBackend({ listen: '127.0.0.1:0', http: false, db: join(dir, 'picket.db'), workers: 1, console: false, logger: captureLog('fatal').log })
  t.teardown(async () => { await backend.close() })
  const data = join(dir, 'agent')

  let agent = await startAgent(agentOptions(backend.collector.address, data, { synth: { seed: 1, total: 3000 } }))
  const run1 = await waitForStats(agent, s => s.shipper.ackedRecords >= 3000 && s.spool.pendingBatches === 0, 20_000, 'run 1 acked')
  await agent.stop()
  t.ok(run1.spool.nextSeq > 3, `run 1 shipped seqs 1 to ${run1.spool.nextSeq - 1}`)

  rmSync(join(data, 'spool'), { recursive: true })
  agent = await startAgent(agentOptions(backend.collector.address, data, { synth: { seed: 2, total: 1000 } }))
  const run2 = await waitForStats(agent, s => s.shipper.ackedRecords >= 1000 && s.spool.pendingBatches === 0, 20_000, 'run 2 acked')
  await agent.stop()
  t.equal(run2.spool.nextSeq - 1, run2.spooledBatches, 'run 2 started again at seq 1')
  t.ok(run2.spool.nextSeq <= run1.spool.nextSeq, 'its seqs are all below run 1\'s floor')
  t.not(run2.spool.instance, run1.spool.instance, 'a new instance id')
  t.equal(run2.shipper.duplicates, 0, 'no batch of run 2 was answered DUPLICATE')
  t.same(await hostCounts(backend, 'inst-host'), { records: 4000, duplicates: 0 }, 'the backend counted every record of both runs')
})

t.test('defect 11: the agent refuses at start-up a host id the collector would refuse, with the collector\'s message', async t => {
  const dir = t.testdir()
  for (const bad of ['bad id!', '-dash-first', 'x'.repeat(257), 'tab\there', 'ünïcode']) {
    const rule = checkHostId(bad) as string
    t.ok(rule !== undefined, `the collector refuses ${JSON.stringify(bad.slice(0, 20))}`)
    const got = await startAgent(agentOptions('127.0.0.1:1', join(dir, 'agent'), { hostId: bad })).then(
      async (a: AgentHandle) => { await a.stop(); return undefined },
      (err: unknown) => err)
    t.ok(isPicketError(got) && got.code === 'PICKET_ERR_CONFIG', 'startAgent fails with PICKET_ERR_CONFIG')
    t.ok(got instanceof Error && got.message.includes(rule), `with the collector's message: ${rule}`)
  }

  // the collector's own answer to such a batch is the same message
  const backend = await startBackend({ listen: '127.0.0.1:0', http: false, db: join(dir, 'picket.db'), workers: 1, console: false, logger: captureLog('fatal').log })
  t.teardown(async () => { await backend.close() })
  const client = connectCollector(backend.collector.address)
  t.teardown(() => client.close())
  const ack = await new AgentStream(client, 'bad id!').sendRaw({ host_id: 'bad id!', seq: 1, count: 0, records: packRecords([]) })
  t.match(ack, { status: 'REFUSED', error: 'PICKET_ERR_HOST_ID', message: checkHostId('bad id!') }, 'one rule, one message, both ends')

  const p = spawnPicket(['agent', '--collector', '127.0.0.1:1', '--host-id', 'bad id!', '--source', 'synth', '--data', join(dir, 'cli')])
  t.teardown(async () => { await p.stop('SIGKILL') })
  const code = await Promise.race([p.exited, new Promise(resolve => setTimeout(resolve, 15_000, 'still running after 15 s'))])
  t.ok(typeof code === 'number' && code !== 0, `picket agent --host-id 'bad id!' fails at once (exit ${String(code)})`)
  t.match(p.stderr(), /PICKET_ERR_CONFIG/)
  t.ok(p.stderr().includes(checkHostId('bad id!') as string), 'naming the rule')

  t.equal(checkHostId(defaultHostId()), undefined, `the default host id (${defaultHostId()}) passes the rule`)
  for (const name of ['web-1.example.com', 'my host', '_under', '', 'a'.repeat(300)]) t.equal(checkHostId(hostIdOf(name)), undefined, `a hostname made into a host id passes: ${JSON.stringify(hostIdOf(name).slice(0, 20))}`)
})

t.test('an ack must name a batch in flight: its host, its instance, a seq sent and not acked yet', async t => {
  const f = new InFlight()
  f.add(7, { sentAt: 0, count: 1, bytes: 10 })
  t.equal(f.mismatch({ host_id: 'h', instance: 'i', seq: 7, status: 'OK' }, 'h', 'i'), undefined)
  t.match(f.mismatch({ host_id: 'x', instance: 'i', seq: 7, status: 'OK' }, 'h', 'i'), /for host 'x'/)
  t.match(f.mismatch({ host_id: 'h', instance: 'j', seq: 7, status: 'OK' }, 'h', 'i'), /for instance 'j'/)
  t.match(f.mismatch({ host_id: 'h', instance: '', seq: 7, status: 'DUPLICATE' }, 'h', 'i'), /for instance ''/, 'a DUPLICATE of another instance is no proof of delivery')
  t.match(f.mismatch({ host_id: 'h', instance: 'i', seq: 8, status: 'OK' }, 'h', 'i'), /seq 8 is not in flight/)
  f.take(7)
  t.match(f.mismatch({ host_id: 'h', instance: 'i', seq: 7, status: 'OK' }, 'h', 'i'), /seq 7 is not in flight/, 'a second ack for one batch')
  t.equal(f.bytes, 0)
})

/** A Ship server that answers every batch with a wrong ack: per stream, for another host, another instance, or a seq never sent. */
async function lyingCollector (): Promise<{ port: number, streams: () => number, close: () => void }> {
  const server = new grpc.Server()
  let streams = 0
  const lies: Array<(b: Batch) => Ack> = [
    b => ({ host_id: 'someone-else', instance: b.instance, seq: b.seq, status: 'OK' }),
    b => ({ host_id: b.host_id, instance: 'not-yours', seq: b.seq, status: 'OK' }),
    b => ({ host_id: b.host_id, instance: b.instance, seq: b.seq + 1_000_000, status: 'OK' }),
  ]
  server.addService(collectorService(), {
    Ship: (call: grpc.ServerDuplexStream<Batch, Ack>) => {
      const lie = lies[streams++ % lies.length]
      call.on('data', (b: Batch) => { call.write(lie(b)) })
      call.on('end', () => { call.end() })
      call.on('error', () => {})
    },
  })
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => { if (err !== null) reject(err); else resolve(p) })
  })
  return { port, streams: () => streams, close: () => { server.forceShutdown() } }
}

t.test('defect 15: acks for another host, another instance or a seq never sent are protocol errors: counted, the stream reconnected, the spool kept; a real collector then gets every batch', async t => {
  const dir = t.testdir()
  const liar = await lyingCollector()
  const { log, lines } = captureLog()
  const agent = await startAgent(agentOptions(`127.0.0.1:${liar.port}`, join(dir, 'agent'), { synth: { seed: 5, total: 2000 }, metricsPort: 0, logger: log }))
  let backend: BackendHandle | undefined
  t.teardown(async () => { await agent.stop(); liar.close(); await backend?.close() })

  const s = await waitForStats(agent, x => x.shipper.protocolErrors >= 6 && x.captured >= 2000, 20_000, 'protocol errors')
  t.equal(s.shipper.ackedBatches, 0, 'no lying ack freed a batch')
  t.equal(s.spool.pendingBatches, s.spooledBatches, 'every batch is still in the spool')
  t.equal(s.spool.pendingRecords, 2000)
  t.ok(liar.streams() >= 6 && s.shipper.reconnects >= 5, `the stream was reconnected each time (${liar.streams()} streams)`)
  const errors = lines.filter(l => typeof l.msg === 'string' && l.msg.includes('ack that matches no batch in flight'))
  for (const re of [/for host 'someone-else'/, /for instance 'not-yours'/, /is not in flight on this stream/]) {
    t.ok(errors.some(l => re.test(l.msg as string)), `logged, saying what was wrong: ${String(re)}`)
  }
  const later = (await agent.stats()).shipper.protocolErrors
  t.ok(errors.length >= s.shipper.protocolErrors && errors.length <= later, `one line per protocol error (${errors.length})`)
  const metrics = await (await fetch(agent.metricsUrl as string)).text()
  const counted = Number(/^picket_agent_protocol_errors_total (\d+)$/m.exec(metrics)?.[1])
  t.ok(counted >= 6, `picket_agent_protocol_errors_total ${counted}`)

  // the real collector comes back on the port the liar held
  liar.close()
  backend = await startBackend({ listen: `127.0.0.1:${liar.port}`, http: false, db: join(dir, 'picket.db'), workers: 1, console: false, logger: captureLog('fatal').log })
  const done = await waitForStats(agent, x => x.spool.pendingBatches === 0, 20_000, 'the spool delivered')
  t.equal(done.shipper.ackedRecords, 2000, 'every record was delivered')
  t.equal(done.shipper.duplicates, 0)
  t.same(await hostCounts(backend, 'inst-host'), { records: 2000, duplicates: 0 }, 'and the collector counted each once')
})
