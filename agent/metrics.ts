import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import { DROP_CAUSES } from '../shared/enums.js'
import { formatHostPort } from '../shared/hostport.js'
import type { AgentStats } from './types.js'

// Prometheus metrics of the agent. Values are pulled from the stats snapshot
// at scrape time; only the ack latency histogram is fed as acks arrive.

export interface AgentMetrics {
  registry: Registry
  ackLatency: Histogram<'status'>
}

export function createAgentMetrics (snapshot: () => AgentStats): AgentMetrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'picket_agent_' })
  const counter = (name: string, help: string, value: (s: AgentStats) => number): void => {
    registry.registerMetric(new Counter({
      name, help, registers: [],
      collect () { this.reset(); this.inc(value(snapshot())) },
    }))
  }
  const gauge = (name: string, help: string, value: (s: AgentStats) => number): void => {
    registry.registerMetric(new Gauge({
      name, help, registers: [],
      collect () { this.set(value(snapshot())) },
    }))
  }
  counter('picket_agent_records_captured_total', 'records copied out of the kernel rings', s => s.captured)
  counter('picket_agent_kernel_events_total', 'records the BPF programs of every ring emitted (captured + dropped in the kernel + forks, which only update the process table; a fold summary is one record)', s => {
    const rings = Object.values(s.ringEvents)
    if (rings.length > 0) return rings.reduce((a, b) => a + b, 0)
    return s.kernel === undefined ? 0 : s.kernel.state.matched + s.kernel.reset.matched + s.kernel.icmp.matched
  })
  counter('picket_agent_kernel_folded_total', 'events the kernel folded into a summary record of their flow (repeats within the fold window; not drops)', s => s.kernel?.folded ?? 0)
  counter('picket_agent_records_spooled_total', 'OCSF records decoded and written to the spool', s => s.spooledRecords)
  counter('picket_agent_batches_spooled_total', 'batches written to the spool', s => s.spooledBatches)
  counter('picket_agent_batches_sent_total', 'batches sent to the collector (resends included)', s => s.shipper.sentBatches)
  counter('picket_agent_batches_acked_total', 'batches the collector accepted (OK or DUPLICATE)', s => s.shipper.ackedBatches)
  counter('picket_agent_records_acked_total', 'records the collector accepted', s => s.shipper.ackedRecords)
  counter('picket_agent_reconnects_total', 'reconnection attempts to the collector', s => s.shipper.reconnects)
  counter('picket_agent_protocol_errors_total', 'acks that matched no batch in flight (another host or instance, a seq not sent or acked already); each reconnects the stream and acks nothing', s => s.shipper.protocolErrors)
  counter('picket_agent_decoder_retries_total', 'decoder tasks run again after their worker died', s => s.decoder.retries)
  counter('picket_agent_slab_starvation_events_total', 'times a consumer found no free slab', s => sum(s, c => c.starvationEvents))
  counter('picket_agent_slab_starvation_seconds_total', 'time consumers spent without a free slab', s => sum(s, c => c.starvationMs) / 1000)
  registry.registerMetric(new Counter({
    name: 'picket_agent_drops_total',
    help: 'records the agent could not deliver, by cause (each record counted once)',
    labelNames: ['cause'],
    registers: [],
    collect () {
      const d = snapshot().drops
      this.reset()
      for (const cause of DROP_CAUSES) this.inc({ cause }, d[cause])
    },
  }))
  gauge('picket_agent_records_per_second', 'records captured per second over the last stats interval', s => s.recordsPerSecond)
  gauge('picket_agent_batches_per_second', 'batches spooled per second over the last stats interval', s => s.batchesPerSecond)
  registry.registerMetric(new Gauge({
    name: 'picket_agent_queue_depth',
    help: 'items waiting at each stage',
    labelNames: ['queue'],
    registers: [],
    collect () {
      const s = snapshot()
      this.set({ queue: 'decoder' }, s.decoder.pending)
      this.set({ queue: 'reorder' }, s.decoder.reorder)
      this.set({ queue: 'unsent' }, s.shipper.unsent)
      this.set({ queue: 'inflight' }, s.shipper.inflight)
      this.set({ queue: 'ring_bytes' }, sum(s, c => c.ringPendingBytes))
    },
  }))
  registry.registerMetric(new Gauge({
    name: 'picket_agent_slabs_free',
    help: 'free slabs per ring',
    labelNames: ['ring'],
    registers: [],
    collect () {
      for (const c of snapshot().consumers) this.set({ ring: c.ring }, c.freeSlabs)
    },
  }))
  registry.registerMetric(new Counter({
    name: 'picket_agent_ring_drops_total',
    help: 'records a kernel ring lost because it was full, by ring (one ring per class)',
    labelNames: ['ring'],
    registers: [],
    collect () {
      this.reset()
      for (const [ring, n] of Object.entries(snapshot().ringDrops)) this.inc({ ring }, n)
    },
  }))
  registry.registerMetric(new Counter({
    name: 'picket_agent_proctable_events_total',
    help: 'process table: processes inserted, exited ones evicted after their grace time, live ones pushed out by a full probe window (overflow), execs of processes it did not know (misses)',
    labelNames: ['event'],
    registers: [],
    collect () {
      const t = snapshot().procTable
      this.reset()
      if (t !== undefined) for (const event of ['inserted', 'evicted_exited', 'overflow', 'misses'] as const) this.inc({ event }, t[event])
    },
  }))
  gauge('picket_agent_proctable_live', 'processes in the process table (running, or exited within the grace time)', s => s.procTable?.live ?? 0)
  gauge('picket_agent_spool_bytes', 'bytes in the disk spool', s => s.spool.bytes)
  gauge('picket_agent_spool_segments', 'segments in the disk spool', s => s.spool.segments)
  gauge('picket_agent_spool_pending_batches', 'spooled batches not yet acked', s => s.spool.pendingBatches)
  gauge('picket_agent_spool_pending_records', 'spooled records not yet acked', s => s.spool.pendingRecords)
  gauge('picket_agent_evicted_inflight_records', 'records evicted from the spool while in flight: delivered if acked, dropped (spool_eviction) if not', s => s.shipper.evictedInFlightRecords)
  gauge('picket_agent_connected', '1 while the Ship stream to the collector is up', s => s.shipper.connected ? 1 : 0)
  gauge('picket_agent_next_seq', 'sequence number of the next batch', s => s.spool.nextSeq)
  const ackLatency = new Histogram({
    name: 'picket_agent_ack_latency_seconds',
    help: 'time from sending a batch to its ack',
    labelNames: ['status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  })
  return { registry, ackLatency }
}

function sum (s: AgentStats, f: (c: AgentStats['consumers'][number]) => number): number {
  let n = 0
  for (const c of s.consumers) n += f(c)
  return n
}

export interface MetricsServer {
  url: string
  close: () => Promise<void>
}

export async function serveMetrics (registry: Registry, port: number, host: string): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    if (req.method === 'GET' && (req.url === '/metrics' || req.url?.startsWith('/metrics?') === true)) {
      registry.metrics().then(body => {
        res.writeHead(200, { 'content-type': registry.contentType })
        res.end(body)
      }, (err: Error) => {
        res.writeHead(500, { 'content-type': 'text/plain' })
        res.end(err.message)
      })
      return
    }
    if (req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.end('ok\n')
      return
    }
    res.writeHead(404, { 'content-type': 'text/plain' })
    res.end('not found: try /metrics\n')
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => { server.off('error', reject); resolve() })
  })
  const addr = server.address() as AddressInfo
  return {
    url: `http://${formatHostPort(addr.address, addr.port)}/metrics`,
    close: async () => await new Promise<void>(resolve => { server.closeAllConnections(); server.close(() => { resolve() }) }),
  }
}
