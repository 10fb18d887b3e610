import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import { STATE_KINDS } from './detection/budget.js'
import { REFUSAL_REASONS, STREAM_REFUSALS } from './limits.js'

// The backend's Prometheus metrics, one Registry per backend instance (tests
// start several in one process). Served as text at GET /metrics. No label
// takes a host id: /metrics stays the same size however many hosts report
// (per-host health is GET /api/hosts).

/** The per-host maps an idle host is aged out of: picket_hosts_aged_out_total{map}. */
export const HOST_MAPS = ['actors', 'routes', 'tracker'] as const

export interface Metrics {
  registry: Registry
  batches: Counter<'status'>
  records: Counter
  bytes: Counter
  refusals: Counter<'limit'>
  streamRefusals: Counter<'reason'>
  transferred: Counter
  streams: Gauge
  recordsPerSecond: Gauge
  queueDepth: Gauge<'worker'>
  workerUp: Gauge<'worker'>
  workerRestarts: Gauge<'worker'>
  workerLoopDelay: Gauge<'worker'>
  detectionRecords: Counter<'worker'>
  detectionMatched: Counter<'worker'>
  stateGroups: Gauge<'worker'>
  stateOverflow: Counter<'worker'>
  stateBytes: Gauge<'worker'>
  fleetStateBytes: Gauge
  stateBudget: Gauge
  stateEvictions: Counter<'kind'>
  hostsAged: Counter<'map'>
  instanceFloorsForgotten: Counter<'worker' | 'reason'>
  openIncidents: Gauge<'stage'>
  fleetDeltas: Counter
  batchSeconds: Histogram
  detectionLatency: Histogram
  findings: Counter<'rule' | 'activity'>
  agentDrops: Gauge<'cause'>
  storeWriteSeconds: Histogram<'kind'>
  storeFailures: Counter<'kind' | 'outcome'>
  outputFailures: Counter<'output'>
  internalErrors: Counter<'where'>
  webhookSent: Counter
  webhookFailures: Counter<'reason'>
  webhookDropped: Counter
  webhookQueue: Gauge
}

export function createMetrics (): Metrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'picket_backend_' })
  const r = [registry]
  const m: Metrics = {
    registry,
    batches: new Counter({ name: 'picket_collector_batches_total', help: 'Batches answered by the collector, by ack status', labelNames: ['status'], registers: r }),
    records: new Counter({ name: 'picket_collector_records_total', help: 'Records in batches the detection plane accepted', registers: r }),
    bytes: new Counter({ name: 'picket_collector_bytes_total', help: 'Bytes of Batch.records received', registers: r }),
    refusals: new Counter({ name: 'picket_collector_refusals_total', help: 'Batches refused, by the limit or check they failed', labelNames: ['limit'], registers: r }),
    streamRefusals: new Counter({ name: 'picket_collector_stream_refusals_total', help: 'Ship streams refused or ended by the collector: over a stream or connection cap, or a message over the receive size', labelNames: ['reason'], registers: r }),
    transferred: new Counter({ name: 'picket_collector_zero_copy_batches_total', help: 'Batches whose gRPC buffer was handed to the detection worker without a copy', registers: r }),
    streams: new Gauge({ name: 'picket_collector_streams', help: 'Open Ship streams (one per connected agent)', registers: r }),
    recordsPerSecond: new Gauge({ name: 'picket_records_per_second', help: 'Records accepted per second, averaged over the last seconds', registers: r }),
    queueDepth: new Gauge({ name: 'picket_bridge_queue_depth', help: 'Batches submitted to a detection worker and not yet answered', labelNames: ['worker'], registers: r }),
    workerUp: new Gauge({ name: 'picket_detection_worker_up', help: '1 when the detection worker is running', labelNames: ['worker'], registers: r }),
    workerRestarts: new Gauge({ name: 'picket_detection_worker_restarts', help: 'Times the detection worker was restarted', labelNames: ['worker'], registers: r }),
    workerLoopDelay: new Gauge({ name: 'picket_detection_worker_loop_delay_ms', help: 'Event-loop delay p99 of the detection worker over the last second', labelNames: ['worker'], registers: r }),
    detectionRecords: new Counter({ name: 'picket_detection_records_total', help: 'Records run through the rules', labelNames: ['worker'], registers: r }),
    detectionMatched: new Counter({ name: 'picket_detection_matched_total', help: 'Record matches of detection rules that feed a correlation', labelNames: ['worker'], registers: r }),
    stateGroups: new Gauge({ name: 'picket_detection_state_groups', help: 'Correlation groups held in sliding windows', labelNames: ['worker'], registers: r }),
    stateOverflow: new Counter({ name: 'picket_detection_state_overflow_total', help: 'Records not tracked because a host hit the per-rule group bound', labelNames: ['worker'], registers: r }),
    stateBytes: new Gauge({ name: 'picket_detection_state_bytes', help: 'Estimated bytes of the correlation state a detection worker holds (all hosts and rules)', labelNames: ['worker'], registers: r }),
    fleetStateBytes: new Gauge({ name: 'picket_fleet_state_bytes', help: 'Estimated bytes of the fleet stage\'s groups and open incidents', registers: r }),
    stateBudget: new Gauge({ name: 'picket_detection_state_budget_bytes', help: 'Memory budget of each detection worker\'s correlation state, and of the fleet stage\'s (--detection-memory)', registers: r }),
    stateEvictions: new Counter({ name: 'picket_detection_state_evictions_total', help: 'Correlation state evicted to stay within the memory budget, least recently active first, by kind', labelNames: ['kind'], registers: r }),
    hostsAged: new Counter({ name: 'picket_hosts_aged_out_total', help: 'Idle hosts let go from a per-host map (actors: detection workers, routes: the bridge, tracker: the collector\'s host counters)', labelNames: ['map'], registers: r }),
    instanceFloorsForgotten: new Counter({ name: 'picket_detection_instance_floors_forgotten_total', help: 'Agent instances whose dedup floor was forgotten: reason bound (the host has 8 more recent instances) or age (7 days without a batch)', labelNames: ['worker', 'reason'], registers: r }),
    openIncidents: new Gauge({ name: 'picket_open_incidents', help: 'Incidents open (one finding each), by stage', labelNames: ['stage'], registers: r }),
    fleetDeltas: new Counter({ name: 'picket_fleet_deltas_total', help: 'Per-host sightings the fleet stage received from the workers', registers: r }),
    batchSeconds: new Histogram({ name: 'picket_bridge_batch_seconds', help: 'From a batch reaching the collector to the detection plane accepting it', buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1], registers: r }),
    detectionLatency: new Histogram({ name: 'picket_detection_latency_seconds', help: 'From the batch holding the crossing record reaching the collector to the finding stored', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: r }),
    findings: new Counter({ name: 'picket_findings_total', help: 'Finding events written to the store, by rule and activity (create, update, close)', labelNames: ['rule', 'activity'], registers: r }),
    agentDrops: new Gauge({ name: 'picket_agent_drops', help: 'Records the agents could not deliver, summed over the hosts heard from within the host idle timeout, as they last reported (cumulative)', labelNames: ['cause'], registers: r }),
    storeWriteSeconds: new Histogram({ name: 'picket_store_write_seconds', help: 'Alert store transactions', labelNames: ['kind'], buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5], registers: r }),
    storeFailures: new Counter({ name: 'picket_store_failures_total', help: 'Alert store writes that failed, by what was written and what became of it (retried, or dropped as unstorable)', labelNames: ['kind', 'outcome'], registers: r }),
    outputFailures: new Counter({ name: 'picket_output_failures_total', help: 'Findings an output (log, webhook, console) failed on; the findings are stored', labelNames: ['output'], registers: r }),
    internalErrors: new Counter({ name: 'picket_internal_errors_total', help: 'Exceptions caught where one batch or finding could have stopped the backend (Picket bugs: see the log)', labelNames: ['where'], registers: r }),
    webhookSent: new Counter({ name: 'picket_webhook_sent_total', help: 'Findings POSTed to the webhook', registers: r }),
    webhookFailures: new Counter({ name: 'picket_webhook_failures_total', help: 'Webhook POST attempts that failed', labelNames: ['reason'], registers: r }),
    webhookDropped: new Counter({ name: 'picket_webhook_dropped_total', help: 'Findings dropped from the webhook queue (full, or retries exhausted)', registers: r }),
    webhookQueue: new Gauge({ name: 'picket_webhook_queue', help: 'Findings waiting for the webhook', registers: r }),
  }
  for (const reason of REFUSAL_REASONS) m.refusals.inc({ limit: reason }, 0)
  for (const status of ['OK', 'DUPLICATE', 'REFUSED', 'RETRY']) m.batches.inc({ status }, 0)
  for (const output of ['log', 'webhook', 'console']) m.outputFailures.inc({ output }, 0)
  for (const reason of STREAM_REFUSALS) m.streamRefusals.inc({ reason }, 0)
  for (const kind of STATE_KINDS) m.stateEvictions.inc({ kind }, 0)
  for (const map of HOST_MAPS) m.hostsAged.inc({ map }, 0)
  return m
}
