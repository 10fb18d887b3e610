import { createServer, type Server } from 'node:http'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import { formatHostPort, type HostPort } from '../../shared/hostport.js'

// A detection node's /metrics: what it owns, how far behind each partition
// is, how often ownership moved and how long takeovers replayed. The
// partition label is bounded by P.

export function createDetectMetrics () {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'picket_detect_' })
  const r = [registry]
  return {
    registry,
    owned: new Gauge({ name: 'picket_detect_partitions_owned', help: 'Partitions this node holds the lease of', registers: r }),
    liveNodes: new Gauge({ name: 'picket_detect_live_nodes', help: 'Detection nodes alive by the lease bucket', registers: r }),
    lag: new Gauge({ name: 'picket_detect_partition_lag', help: 'Batches of an owned partition not yet acked (pending plus unacked)', labelNames: ['partition'], registers: r }),
    leaseChanges: new Counter({ name: 'picket_detect_lease_changes_total', help: 'Leases taken, lost (renewal refused or past TTL) and released (rebalancing, shutdown)', labelNames: ['change'], registers: r }),
    replaySeconds: new Histogram({ name: 'picket_detect_replay_seconds', help: 'Time a takeover spent replaying the partition\'s window before going live', buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers: r }),
    replayBatches: new Counter({ name: 'picket_detect_replay_batches_total', help: 'Batches replayed at takeovers', registers: r }),
    findingsPublished: new Counter({ name: 'picket_detect_finding_messages_total', help: 'Finding messages published on picket.findings', registers: r }),
  }
}

export type DetectMetrics = ReturnType<typeof createDetectMetrics>

export async function serveMetrics (at: HostPort, registry: Registry, health: () => unknown): Promise<{ server: Server, url: string }> {
  const server = createServer((req, res) => {
    void (async () => {
      if (req.url === '/metrics') {
        res.setHeader('content-type', registry.contentType)
        res.end(await registry.metrics())
      } else if (req.url === '/healthz') {
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify(health()))
      } else {
        res.statusCode = 404
        res.end('not found: /metrics or /healthz\n')
      }
    })().catch(() => { res.statusCode = 500; res.end() })
  })
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(at.port, at.host, () => resolve()) })
  const addr = server.address()
  const port = typeof addr === 'object' && addr !== null ? addr.port : at.port
  return { server, url: `http://${formatHostPort(at.host, port)}` }
}
