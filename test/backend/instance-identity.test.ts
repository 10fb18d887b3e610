import * as grpc from '@grpc/grpc-js'
import Database from 'better-sqlite3'
import t from 'tap'
import { join } from 'node:path'
import { startAgent, type AgentOptions } from '../../agent/index.js'
import { InstanceWindows, INSTANCE_TTL_MS, MAX_INSTANCES_PER_HOST } from '../../backend/detection/seq.js'
import { startBackend, type BackendHandle, type BackendOptions } from '../../backend/server.js'
import { AlertStore } from '../../backend/store/index.js'
import { packRecords } from '../../shared/codec.js'
import { collectorClientCtor, type Ack, type Batch } from '../../shared/proto/index.js'
import { AgentStream, connectCollector } from '../../scripts/injector/index.js'
import { captureLog, waitForStats } from '../helpers/agent.js'
import { tempDir } from './helpers/records.js'

// The delivery identity is (host, instance, seq): the collector keeps one
// dedup floor per agent instance, bounded per host and aged out, in memory
// and in the store, so a client that claims a host can spoil only the floor
// of an instance of its own.

const T0 = 1_800_000_000_000
const DAY = 24 * 3600_000

async function hostRecords (b: BackendHandle, hostId: string): Promise<number> {
  await b.flush()
  return b.store.getHost(hostId)?.records ?? 0
}

/** The host's persisted (instance, floor) pairs, once the workers' next summary (once a second) is in the store. */
async function floorsOf (b: BackendHandle, hostId: string): Promise<Array<[string, number]>> {
  await new Promise(resolve => setTimeout(resolve, 1200))
  await b.flush()
  return (b.store.lastSeqs().get(hostId) ?? []).map(f => [f.instance, f.lastSeq])
}

t.test('defect 2: a client claiming a host poisons only its own instance: the real agent is still accepted, also after a backend restart', async t => {
  const dir = t.testdir()
  const opts: BackendOptions = { listen: '127.0.0.1:0', http: false, db: join(dir, 'picket.db'), workers: 2, console: false, logger: captureLog('fatal').log }
  let backend = await startBackend(opts)
  t.teardown(async () => { await backend.close() })

  // the attacker: 4,097 empty batches as host `victim` with seqs up to 2^53 - 1,
  // one more than the out-of-order window holds, so its floor jumps to the top
  const client = connectCollector(backend.collector.address)
  t.teardown(() => client.close())
  const mallory = new AgentStream(client, 'victim')
  const empty = packRecords([])
  const top = Number.MAX_SAFE_INTEGER
  const acks = await Promise.all(Array.from({ length: 4097 }, async (_, i) =>
    await mallory.sendRaw({ host_id: 'victim', instance: 'mallory', seq: top - i, count: 0, records: empty })))
  t.equal(acks.filter(a => a.status === 'OK').length, 4097, 'the collector took the attacker\'s batches (it cannot tell them from an agent\'s)')
  await mallory.end()
  t.same(await floorsOf(backend, 'victim'), [['mallory', top]], 'the attacker pushed the floor of its own instance to 2^53 - 1')

  // the real agent of `victim`: its own instance, seq from 1
  // (t.testdir() empties the folder on each call: the agent's data goes beside the store)
  const agentDir = join(dir, 'agent')
  const agentOpts = (collector: string, seed: number): AgentOptions => ({
    collector, hostId: 'victim', dataDir: agentDir, source: 'synth', synth: { seed, total: 1500 },
    slabBytes: 32 * 1024, decoders: 1, statsIntervalMs: 50, backoffInitialMs: 50, backoffMaxMs: 400, logger: captureLog('fatal').log,
  })
  let agent = await startAgent(agentOpts(backend.collector.address, 1))
  let s = await waitForStats(agent, x => x.shipper.ackedRecords >= 1500 && x.spool.pendingBatches === 0, 20_000, 'the agent\'s batches acked')
  await agent.stop()
  const instance = s.spool.instance
  t.match(instance, /^[0-9a-f]{32}$/, 'the agent ships under an instance of its own')
  t.equal(s.shipper.duplicates, 0, 'none of the agent\'s batches was taken for a duplicate')
  t.equal(await hostRecords(backend, 'victim'), 1500, 'every record of the agent was counted')

  // a restart with the same store: both floors come back, each on its own instance
  await backend.close()
  backend = await startBackend(opts)
  const floors = new Map(backend.store.lastSeqs().get('victim')?.map(f => [f.instance, f.lastSeq]))
  t.equal(floors.get('mallory'), top, 'the attacker\'s floor was persisted')
  t.equal(floors.get(instance), s.spool.nextSeq - 1, 'and the agent\'s, beside it')
  agent = await startAgent(agentOpts(backend.collector.address, 2))
  s = await waitForStats(agent, x => x.shipper.ackedRecords >= 1500 && x.spool.pendingBatches === 0, 20_000, 'the agent\'s batches acked after the restart')
  await agent.stop()
  t.equal(s.spool.instance, instance, 'the same agent instance, its seq carrying on')
  t.equal(s.shipper.duplicates, 0, 'after the restart too, nothing was taken for a duplicate')
  t.equal(await hostRecords(backend, 'victim'), 3000, 'every record of both runs was counted')
})

interface RawStream { call: grpc.ClientDuplexStream<Batch, Ack>, send: (b: Batch) => Promise<Ack>, status: Promise<grpc.StatusObject> }

function openStream (client: grpc.Client): RawStream {
  const call = (client as unknown as { Ship: () => grpc.ClientDuplexStream<Batch, Ack> }).Ship()
  const waiting = new Map<number, (a: Ack) => void>()
  call.on('data', (a: Ack) => { waiting.get(Number(a.seq))?.(a); waiting.delete(Number(a.seq)) })
  call.on('error', () => {})
  const status = new Promise<grpc.StatusObject>(resolve => call.on('status', resolve))
  return { call, status, send: async b => await new Promise<Ack>(resolve => { waiting.set(b.seq, resolve); call.write(b) }) }
}

/** A backend with one detection worker, a raw client of its collector, and empty batches of host 'h'. */
async function oneWorker (t: Tap.Test, opts: Partial<BackendOptions>): Promise<{ backend: BackendHandle, client: grpc.Client, batch: (instance: string, seq: number) => Batch }> {
  const backend = await startBackend({ listen: '127.0.0.1:0', http: false, db: join(t.testdir(), 'picket.db'), workers: 1, console: false, logger: captureLog('fatal').log, ...opts })
  t.teardown(async () => { await backend.close() })
  const client = new (collectorClientCtor())(backend.collector.address, grpc.credentials.createInsecure())
  t.teardown(() => client.close())
  const empty = packRecords([])
  return { backend, client, batch: (instance, seq) => ({ host_id: 'h', instance, seq, count: 0, records: empty }) }
}

t.test('a second stream for the same (host, instance) takes over and the older is ended; other instances, and the legacy instance, coexist', async t => {
  const { client, batch } = await oneWorker(t, {})

  const a = openStream(client)
  t.match(await a.send(batch('i1', 1)), { status: 'OK', host_id: 'h', instance: 'i1', seq: 1 }, 'the ack echoes the instance')
  const b = openStream(client)
  t.match(await b.send(batch('i1', 2)), { status: 'OK', instance: 'i1' })
  const ended = await a.status
  t.equal(ended.code, grpc.status.ABORTED, 'the older stream of h/i1 was ended')
  t.match(ended.details, /newer Ship stream for host 'h' instance 'i1'/)

  const c = openStream(client)
  t.match(await c.send(batch('i2', 1)), { status: 'OK', instance: 'i2' }, 'another instance of the same host has its own stream')
  t.match(await b.send(batch('i1', 3)), { status: 'OK' }, 'and the stream of h/i1 is still up')
  t.match(await b.send(batch('i2', 4)), { status: 'REFUSED', error: 'PICKET_ERR_HOST_ID', message: /belongs to host 'h' instance 'i1'/ }, 'a stream keeps one instance')

  const l1 = openStream(client)
  const l2 = openStream(client)
  t.match(await l1.send(batch('', 1)), { status: 'OK' })
  t.match(await l2.send(batch('', 2)), { status: 'OK' }, 'two streams of the legacy instance coexist, as before instance ids')
  t.match(await l1.send(batch('', 3)), { status: 'OK' })
  t.match(await c.send({ ...batch('x', 1), host_id: 'h2', instance: 'not an id!' }), { status: 'REFUSED', error: 'PICKET_ERR_HOST_ID', message: /instance 'not an id!' is not valid/ })
  for (const s of [b, c, l1, l2]) s.call.end()
})

t.test('a host whose actor aged out of its worker gets its floors back with its next message, one per instance', async t => {
  const { backend, client, batch } = await oneWorker(t, { hostIdleMs: 1000 })
  const a = openStream(client)
  const b = openStream(client)
  for (let seq = 1; seq <= 3; seq++) t.match(await a.send(batch('ia', seq)), { status: 'OK' })
  for (let seq = 1; seq <= 5; seq++) t.match(await b.send(batch('ib', seq)), { status: 'OK' })
  a.call.end()
  b.call.end()

  const deadline = Date.now() + 20_000
  let w = (await backend.health()).bridge.workers[0]
  while ((w.stats?.hostsAged ?? 0) < 1 && Date.now() < deadline) {
    await new Promise(resolve => setTimeout(resolve, 250))
    w = (await backend.health()).bridge.workers[0]
  }
  t.equal(w.stats?.hostsAged, 1, 'the idle host\'s actor was let go')
  t.equal(w.stats?.hosts, 0, 'the worker holds no actor for it')
  t.same((await floorsOf(backend, 'h')).sort(), [['ia', 3], ['ib', 5]], 'its floors, one per instance, are in the store')

  const a2 = openStream(client)
  t.match(await a2.send(batch('ia', 3)), { status: 'DUPLICATE', instance: 'ia' }, 'the first batch after aging out brought the floors: a replay of ia is a duplicate')
  t.match(await a2.send(batch('ia', 4)), { status: 'OK', instance: 'ia' }, 'and ia carries on from its floor')
  const b2 = openStream(client)
  t.match(await b2.send(batch('ib', 5)), { status: 'DUPLICATE', instance: 'ib' }, 'the other instance\'s floor came with it')
  t.match(await b2.send(batch('ib', 6)), { status: 'OK' })
  const c = openStream(client)
  t.match(await c.send(batch('ic', 1)), { status: 'OK' }, 'a new instance starts at seq 1')
  for (const s of [a2, b2, c]) s.call.end()
})

t.test('dedup windows: one per instance, at most 8 a host (least recently active forgotten), aged out after 7 days, all counted', async t => {
  const stats = { instancesEvicted: 0, instancesExpired: 0 }
  const w = new InstanceWindows(4096, stats)
  t.ok(w.accept('', 1, T0) && w.accept('', 2, T0), 'the legacy instance works as the one window did')
  t.notOk(w.accept('', 2, T0), 'a duplicate of it is one')
  t.ok(w.accept('a', 1, T0), 'seq 1 of another instance is new')
  t.notOk(w.accept('a', 1, T0 + 1))
  for (let i = 0; i < MAX_INSTANCES_PER_HOST; i++) w.accept(`n${i}`, 5, T0 + 10 + i)
  t.equal(w.size, MAX_INSTANCES_PER_HOST, 'the bound holds')
  t.equal(stats.instancesEvicted, 2, 'the two least recently active were forgotten, and counted')
  t.ok(w.accept('', 1, T0 + 100), 'a forgotten instance starts over: its batches are new again (never muted)')
  const later = T0 + 100 + INSTANCE_TTL_MS + 1
  t.same(w.floors(later), [], 'floors idle past the TTL are gone')
  t.equal(stats.instancesExpired, MAX_INSTANCES_PER_HOST)
  w.restore({ instance: 'old', lastSeq: 10, lastSeen: later - INSTANCE_TTL_MS - 1 }, later)
  w.restore({ instance: 'kept', lastSeq: 10, lastSeen: later - 1000 }, later)
  t.same(w.floors(later).map(f => f.instance), ['kept'], 'a persisted floor past its age is not restored')
  t.notOk(w.accept('kept', 10, later), 'a restored floor holds')
})

t.test('the store keeps a floor per (host, instance), at most 8 a host, none older than 7 days; a version 1 store\'s floor becomes the legacy instance', async t => {
  const tmp = tempDir()
  t.teardown(tmp.cleanup)
  const path = join(tmp.dir, 'picket.db')
  let store = AlertStore.open(path)
  store.recordHosts([{ hostId: 'h1', lastSeen: T0, records: 0, batches: 1, bytes: 0, recordsPerSec: 0, refusedBatches: 0, duplicateBatches: 0 }])
  const floors = Array.from({ length: 10 }, (_, i) => ({ instance: `i${i}`, lastSeq: 100 + i, lastSeen: T0 + i }))
  store.recordSeqs([{ hostId: 'h1', floors }], T0 + 10)
  t.same(store.lastSeqs(T0 + 10).get('h1')?.map(f => f.instance), ['i9', 'i8', 'i7', 'i6', 'i5', 'i4', 'i3', 'i2'], 'the 8 most recent instances, newest first')
  t.equal(store.getHost('h1')?.lastSeq, 109, 'the host row shows the floor of the instance heard last')
  t.same(store.lastSeqs(T0 + 4 + 7 * DAY).get('h1')?.map(f => f.instance), ['i9', 'i8', 'i7', 'i6', 'i5', 'i4'], 'floors older than 7 days are gone')
  t.same(store.floorsOf('h1', T0 + 6 + 7 * DAY).map(f => f.instance), ['i9', 'i8', 'i7', 'i6'], 'one host\'s floors, as the bridge reads them, aged the same way')
  t.equal(store.expireFloors(T0 + 8 + 7 * DAY), 4, 'a host never heard from again loses its floors as they age')
  t.same(store.floorsOf('h1', T0).map(f => [f.instance, f.lastSeq]), [['i9', 109], ['i8', 108]])
  store.close()

  // a store as version 1 left it: one floor per host, in the hosts table
  const sql = new Database(path)
  sql.exec("DELETE FROM seq_floors; UPDATE hosts SET last_seq = 42; UPDATE meta SET value = '1' WHERE key = 'schema_version'")
  sql.close()
  store = AlertStore.open(path)
  t.teardown(() => store.close())
  t.same(store.lastSeqs(T0).get('h1'), [{ instance: '', lastSeq: 42, lastSeen: T0 }], 'the old floor is the legacy instance\'s')
  const probe = new Database(path, { readonly: true })
  t.teardown(() => probe.close())
  t.same(probe.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get(), { value: '2' }, 'migrated to version 2')
})
