import * as Comlink from 'comlink'
import { parentPort, workerData } from 'node:worker_threads'
import { nodeEndpoint } from '../comlink-node.js'
import type { ConsumerApi, ConsumerInit, ConsumerStats, ConsumerTuning, SlabDescriptor } from '../protocol.js'
import { ProcTableWriter } from '../proctable/writer.js'
import { SlabPool } from '../slabs.js'
import { openSource } from '../source/index.js'
import { loadBpf } from '../source/kernel.js'

// One consumer thread per ring buffer. It drains the ring straight into a
// shared slab (the addon copies; JavaScript touches no record), hands the
// slab to the main thread when it is full or has lingered long enough, and
// stops draining when no slab is free: the kernel ring then fills and counts
// its drops, and the agent's memory stays where it is.

const init = workerData as ConsumerInit
if (parentPort === null) throw new Error('agent/consumer/worker.ts must run as a worker thread')
const port = parentPort

const pool = SlabPool.attach(init.slabs)
const tuning: ConsumerTuning = { ...init.tuning }

// the process ring keeps the process table: seeded before the first drain,
// then every slab's records applied before the slab is handed on, so a
// decoder that reads an exec finds its parent
const procTable = init.procTable !== undefined ? new ProcTableWriter(init.procTable) : undefined
procTable?.seedFromProc()
// the kernel's clock, for the table's watermark (a process ring is a kernel ring)
const bootNs = procTable !== undefined ? (await loadBpf()).bootNs : undefined
const slabBytes = new Uint8Array(pool.data)

const { ring: source, stats: sourceStats } = await openSource(init.source)

const stats = {
  drainCalls: 0,
  records: 0,
  bytes: 0,
  slabsHandedOff: 0,
  starvationEvents: 0,
  starvationMs: 0,
}
let starvedSince = -1
let stopRequested = false
let stopDeadline = Infinity
let stopped = false
let resolveStopped: () => void = () => {}
const stoppedPromise = new Promise<void>(resolve => { resolveStopped = resolve })

function snapshot (): ConsumerStats {
  const now = performance.now()
  return {
    ring: init.ring,
    ...stats,
    starvationMs: stats.starvationMs + (starvedSince >= 0 ? now - starvedSince : 0),
    starved: starvedSince >= 0,
    freeSlabs: pool.free(),
    ringPendingBytes: stopped ? 0 : source.pending(),
    stopped,
    ...sourceStats(),
  }
}

/** longest sleep in the ring's epoll with nothing to hand off (stop, stats and tuning wait at most this long) */
const IDLE_WAIT_MS = 200
/** a cell nobody notifies: Atomics.wait on it is a plain sleep */
const sleepCell = new Int32Array(new SharedArrayBuffer(4))

const yieldToEvents = async (): Promise<void> => await new Promise(resolve => setImmediate(resolve))

async function run (): Promise<void> {
  let slab = -1
  let fill = 0
  let records = 0
  let firstAt = 0
  /** stop: bytes that were waiting when stop was asked, still to drain */
  let stopBudget = Infinity

  const handOff = (): void => {
    pool.queue(slab)
    const d: SlabDescriptor = { ring: init.ring, slab, offset: pool.offsetOf(slab), bytes: fill, records }
    port.postMessage(d)
    stats.slabsHandedOff++
    slab = -1
  }

  for (;;) {
    // at stop, drain what was waiting then, but never more than the slab pool
    // holds (a synthetic flood is never empty)
    if (stopRequested && stopBudget === Infinity) stopBudget = Math.min(source.pending(), pool.count * pool.slabBytes)
    if (slab < 0) {
      const gen = pool.generation()
      slab = pool.acquire()
      if (slab < 0) {
        const now = performance.now()
        if (starvedSince < 0) { starvedSince = now; stats.starvationEvents++ }
        if (stopRequested && (now >= stopDeadline || stopBudget <= 0 || source.pending() === 0)) break
        pool.waitFree(gen, Math.min(tuning.drainTimeoutMs, 20))
        await yieldToEvents()
        continue
      }
      if (starvedSince >= 0) { stats.starvationMs += performance.now() - starvedSince; starvedSince = -1 }
      fill = 0
      records = 0
    }
    const stopping = stopRequested
    // An empty slab sleeps in the ring's epoll: the kernel wakes it for the
    // first record into an empty ring (picket_wakeup, bpf/picket.bpf.h), so
    // an idle host costs a wakeup per IDLE_WAIT_MS, not per drain period.
    // But the process ring's watermark only moves when its drain returns
    // (decoders of the other rings wait for it), so that ring keeps the
    // drain period. A slab with records is lingering: it looks without
    // waiting in epoll and sleeps below, so records that keep coming wake
    // nobody.
    const timeout = stopping || records > 0 ? 0 : procTable !== undefined ? tuning.drainTimeoutMs : IDLE_WAIT_MS
    const before = bootNs?.() ?? 0
    const r = source.drain(pool.data, pool.offsetOf(slab) + fill, pool.slabBytes - fill, timeout)
    stats.drainCalls++
    if (r.records > 0) {
      procTable?.apply(slabBytes, pool.offsetOf(slab) + fill, r.bytes)
      if (records === 0) firstAt = performance.now()
      fill += r.bytes
      records += r.records
      stats.records += r.records
      stats.bytes += r.bytes
      if (stopping) stopBudget -= r.bytes
    }
    // what was in the ring when the drain began is applied now (a drain that
    // filled the slab may have left some: then `before` says too much, by
    // records the next drain applies within a drain timeout)
    if (r.records === 0 || pool.slabBytes - fill >= init.maxRecordBytes) procTable?.markApplied(before)
    const full = pool.slabBytes - fill < init.maxRecordBytes
    const lingered = records > 0 && performance.now() - firstAt >= tuning.lingerMs
    const drainedForStop = stopping && (r.records === 0 || stopBudget <= 0 || performance.now() >= stopDeadline)
    if (records > 0 && (full || lingered || drainedForStop)) handOff()
    if (drainedForStop && (records === 0 || slab < 0)) break
    if (r.records === 0 && slab >= 0 && records > 0 && !stopping) {
      Atomics.wait(sleepCell, 0, 0, Math.max(0, Math.min(tuning.drainTimeoutMs, firstAt + tuning.lingerMs - performance.now())))
    }
    await yieldToEvents()
  }
  if (slab >= 0) pool.giveBack(slab)
  if (starvedSince >= 0) { stats.starvationMs += performance.now() - starvedSince; starvedSince = -1 }
  stopped = true
  source.close()
  resolveStopped()
}

const api: ConsumerApi = {
  stats: snapshot,
  reconfigure (t) {
    if (t.lingerMs !== undefined) tuning.lingerMs = t.lingerMs
    if (t.drainTimeoutMs !== undefined) tuning.drainTimeoutMs = t.drainTimeoutMs
    return { ...tuning }
  },
  async stop (timeoutMs) {
    if (!stopRequested) {
      stopRequested = true
      stopDeadline = performance.now() + timeoutMs
    }
    await stoppedPromise
    return snapshot()
  },
}

Comlink.expose(api, nodeEndpoint(init.control))

run().catch((err: unknown) => {
  // surfaces as the Worker's 'error' event in the main thread
  setImmediate(() => { throw err })
})
