import { Counter, type Registry } from 'prom-client'
import type { Logger } from '../../shared/logger.js'
import { JetStreamBridge } from '../bridge/jetstream.js'
import type { DetectionSink } from '../bridge/types.js'
import type { RuleSet } from '../detection/rules/compile.js'
import type { AlertStore } from '../store/index.js'
import { FindingsIn } from './findings-in.js'
import type { NatsSecurity } from './nats.js'

// `picket backend --bridge`: the JetStream bridge plus the one consumer of
// picket.findings that writes the store. startBackend() takes this in place
// of the worker pool; the collector, store and console do not change.

/** The longest sliding window of the rules: what a takeover replays, and what the stream must keep. */
export function longestWindowMs (rules: RuleSet): number {
  let w = 0
  for (const c of rules.correlations) w = Math.max(w, c.timespanMs)
  return w > 0 ? w : 300_000
}

/** The batch stream keeps the longest window plus a margin (at least 10 minutes, or the window again). */
export function retentionMs (rules: RuleSet): number {
  const w = longestWindowMs(rules)
  return w + Math.max(w, 600_000)
}

export interface ClusterBridgeOptions {
  servers: string[]
  security?: NatsSecurity
  partitions: number
  rules: RuleSet
  store: AlertStore
  sink: Pick<DetectionSink, 'findings' | 'fleet'>
  registry: Registry
  logger: Logger
}

export async function startClusterBridge (o: ClusterBridgeOptions): Promise<{ bridge: JetStreamBridge, close: () => Promise<void> }> {
  const fenced = new Counter({ name: 'picket_cluster_fenced_writes_total', help: 'Finding messages refused because their lease token was older than the partition\'s fence (a stalled former owner)', registers: [o.registry] })
  const bridge = new JetStreamBridge({ servers: o.servers, ...(o.security !== undefined ? { security: o.security } : {}), partitions: o.partitions, maxAgeMs: retentionMs(o.rules), logger: o.logger })
  await bridge.start()
  const nc = bridge.connection
  if (nc === undefined) throw new Error('unreachable: the bridge started without a connection')
  const fin = new FindingsIn(nc, o.store, {
    findings: o.sink.findings,
    fleet: o.sink.fleet,
    fenced: (partition, node, token) => {
      fenced.inc()
      o.logger.warn({ partition, node, token }, 'refused findings from a detection node whose lease on the partition was taken over (fencing)')
    },
  }, o.logger)
  try {
    await fin.start()
  } catch (err) {
    await bridge.close()
    throw err
  }
  return {
    bridge,
    close: async () => {
      await fin.close()
      await bridge.close()
    },
  }
}
