import type { FastifyInstance } from 'fastify'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { PicketError } from '../shared/errors.js'
import { formatHostPort } from '../shared/hostport.js'
import { createLogger, type Logger } from '../shared/logger.js'
import { siblingModule } from '../shared/paths.js'
import { VERSION } from '../shared/version.js'
import { WorkerPoolBridge } from './bridge/pool.js'
import type { Bridge } from './bridge/types.js'
import { startClusterBridge } from './cluster/backend-side.js'
import { Collector } from './collector.js'
import { STATE_KINDS } from './detection/budget.js'
import { FleetStage } from './detection/fleet.js'
import type { HostSummary, WorkerStats } from './detection/protocol.js'
import { resolveCaptions } from './detection/rules/captions.js'
import { compileRuleSet, type RuleSet } from './detection/rules/compile.js'
import { formatProblem } from './detection/rules/errors.js'
import { loadRuleDir } from './detection/rules/load.js'
import { HostTracker } from './hosts.js'
import { createHttpServer, type BackendContext, type HealthReport, type HttpPlugin } from './http.js'
import { createMetrics, type Metrics } from './metrics.js'
import { resolveOptions, type BackendOptions, type ResolvedOptions } from './options.js'
import { FindingPipeline } from './outputs/pipeline.js'
import { WebhookOutput } from './outputs/webhook.js'
import { AlertStore } from './store/index.js'

// startBackend(): collector + bridge + detection workers + fleet stage +
// alert store + outputs + HTTP, wired together. Used by `picket backend`,
// `picket start` and the tests.

export type { BackendOptions } from './options.js'

export interface BackendHandle {
  /** where the collector listens (port is the bound one when 0 was asked) */
  collector: { host: string, port: number, address: string }
  http: { host: string, port: number, url: string } | undefined
  store: AlertStore
  bridge: Bridge
  metrics: Metrics
  app: FastifyInstance | undefined
  rules: RuleSet
  options: ResolvedOptions
  logger: Logger
  health: () => Promise<HealthReport>
  /** Push pending updates and fleet reports through to the store now (tests, shutdown). */
  flush: () => Promise<void>
  close: () => Promise<void>
}

async function consolePlugin (o: ResolvedOptions, logger: Logger): Promise<HttpPlugin | undefined> {
  if (o.console === false) return undefined
  if (typeof o.console === 'function') return o.console
  const url = siblingModule(import.meta.url, './console/index')
  if (!existsSync(fileURLToPath(url))) return undefined
  const mod = await import(url.href) as { registerConsole?: HttpPlugin, default?: HttpPlugin }
  const p = mod.registerConsole ?? mod.default
  if (typeof p !== 'function') {
    logger.warn({ module: url.href }, 'backend/console/index has no registerConsole(app, ctx) export; the console is not served')
    return undefined
  }
  return p
}

export async function startBackend (opts: BackendOptions = {}): Promise<BackendHandle> {
  const o = resolveOptions(opts)
  const logger = opts.logger ?? createLogger('picket-backend')
  const startedAt = Date.now()
  const collection = loadRuleDir(o.rulesDir)
  const rules = compileRuleSet(collection, { timing: o.timing })
  const captions = await resolveCaptions(rules)
  // the corpus's standalone rules number in the hundreds: name the correlations, count the rest
  logger.info({ dir: o.rulesDir, files: collection.files.length, correlations: rules.correlations.filter(c => c.type !== 'standalone').map(c => `${c.ref} (${c.stage})`), standalone: rules.correlations.filter(c => c.type === 'standalone').length }, 'rules compiled')
  for (const p of collection.skipped ?? []) logger.warn({ file: p.file, line: p.line, reason: p.reason }, `rule left out: ${formatProblem(p)}`)
  const metrics = createMetrics()
  const store = AlertStore.open(o.db, {
    onListenerError: (err, event) => {
      metrics.outputFailures.inc({ output: 'console' })
      logger.error({ err, event }, 'a listener of the alert store (the console) failed on a change; the change is stored')
    },
  })
  // in cluster mode the detection nodes, not this process, hold the open incidents' windows
  const orphans = o.bridge === undefined ? store.closeOrphans() : 0
  if (orphans > 0) logger.info({ findings: orphans }, 'closed findings a previous run left open (sliding windows restart empty)')
  // shutdown order: collector (no new batches), workers (their last updates
  // and dedup floors), outputs, HTTP, store
  const RANK = { collector: 0, bridge: 1, webhook: 2, http: 3, store: 4 } as const
  const undo: Array<{ rank: number, f: () => Promise<void> | void }> = [{ rank: RANK.store, f: () => store.close() }]
  const at = (rank: number, f: () => Promise<void> | void): void => { undo.push({ rank, f }) }
  const timers: NodeJS.Timeout[] = []
  const unwind = async (): Promise<void> => {
    for (const t of timers) clearInterval(t)
    for (const { f } of undo.sort((a, b) => a.rank - b.rank)) { try { await f() } catch (err) { logger.error({ err }, 'shutdown step failed') } }
  }
  try {
    const hosts = new HostTracker(o.hostIdleMs)
    const fleet = new FleetStage(rules, VERSION, o.detectionMemory)
    metrics.stateBudget.set(o.detectionMemory)
    const webhook = o.webhook !== undefined ? new WebhookOutput({ url: o.webhook, logger, metrics }) : undefined
    const findings = new FindingPipeline({ store, metrics, logger, webhook })
    // dedup floors wait for the findings pushed before them: a floor stored
    // ahead of its batch's finding would make that batch, resent after a
    // crash, a duplicate, and the finding would be lost
    const seqQueue: Array<{ mark: number, hosts: HostSummary[] }> = []
    const lastStats = new Map<number, WorkerStats>()
    /** Run a step of the main thread's detection work; an exception there is a bug, counted, and costs that step only. */
    const contained = async (where: string, step: () => Promise<void>): Promise<void> => {
      try {
        await step()
      } catch (err) {
        metrics.internalErrors.inc({ where })
        logger.error({ err, where }, 'an internal error was caught; the backend goes on (a Picket bug: please report it with this line)')
      }
    }
    const sink = {
      findings: async (events: Parameters<FindingPipeline['push']>[0]) => { await findings.push(events) },
      fleet: async (deltas: Parameters<FleetStage['apply']>[0]) => await contained('fleet', async () => {
        metrics.fleetDeltas.inc(deltas.length)
        fleet.apply(deltas, Date.now())
        await findings.push(fleet.drain())
      }),
      settled: async () => { await findings.settled() },
      hosts: (summaries: HostSummary[]) => { seqQueue.push({ mark: findings.mark, hosts: summaries }) },
      stats: (worker: number, s: WorkerStats) => {
        const w = String(worker)
        const prev = lastStats.get(worker)
        metrics.detectionRecords.inc({ worker: w }, Math.max(0, s.records - (prev?.records ?? 0)))
        metrics.detectionMatched.inc({ worker: w }, Math.max(0, s.matched - (prev?.matched ?? 0)))
        metrics.stateOverflow.inc({ worker: w }, Math.max(0, s.stateOverflow - (prev?.stateOverflow ?? 0)))
        for (const kind of STATE_KINDS) metrics.stateEvictions.inc({ kind }, Math.max(0, s.evictions[kind] - (prev?.evictions[kind] ?? 0)))
        metrics.hostsAged.inc({ map: 'actors' }, Math.max(0, s.hostsAged - (prev?.hostsAged ?? 0)))
        metrics.instanceFloorsForgotten.inc({ worker: w, reason: 'bound' }, Math.max(0, s.instancesEvicted - (prev?.instancesEvicted ?? 0)))
        metrics.instanceFloorsForgotten.inc({ worker: w, reason: 'age' }, Math.max(0, s.instancesExpired - (prev?.instancesExpired ?? 0)))
        metrics.stateGroups.set({ worker: w }, s.groups)
        metrics.stateBytes.set({ worker: w }, s.stateBytes)
        metrics.workerLoopDelay.set({ worker: w }, s.loopDelayMs)
        lastStats.set(worker, s)
      },
    }
    let floorsExpiredAt = 0
    const flushHosts = (): void => {
      const now = Date.now()
      try {
        const deltas = hosts.flush(now)
        if (deltas.length > 0) {
          const t0 = performance.now()
          store.recordHosts(deltas)
          metrics.storeWriteSeconds.observe({ kind: 'hosts' }, (performance.now() - t0) / 1000)
        }
        // a host's floors are pruned as it reports; those of hosts gone for good, here
        if (now - floorsExpiredAt >= 3600_000) { floorsExpiredAt = now; store.expireFloors(now) }
        let ready = 0
        while (ready < seqQueue.length && findings.stored(seqQueue[ready].mark)) ready++
        if (ready > 0) {
          store.recordSeqs(seqQueue.slice(0, ready).flatMap(e => e.hosts))
          seqQueue.splice(0, ready)
        }
      } catch (err) {
        logger.error({ err }, 'alert store: host counters not written')
      }
      for (const [cause, v] of Object.entries(hosts.dropTotals())) metrics.agentDrops.set({ cause }, v)
    }
    let bridge: Bridge
    let closeBridge: () => Promise<void>
    if (o.bridge !== undefined) {
      const cluster = await startClusterBridge({ servers: o.bridge, security: o.natsSecurity, partitions: o.partitions, rules, store, sink, registry: metrics.registry, logger })
      bridge = cluster.bridge
      closeBridge = cluster.close
    } else {
      bridge = new WorkerPoolBridge({
        workers: o.workers,
        rules: collection,
        captions,
        timing: o.timing,
        limits: o.limits,
        productVersion: VERSION,
        floorsOf: (hostId: string) => store.floorsOf(hostId),
        memoryBytes: o.detectionMemory,
        hostIdleMs: o.hostIdleMs,
        sink,
        logger,
        tickMs: o.tickMs,
        fleetRefreshMs: o.fleetRefreshMs,
        workerScript: o.detectionWorker,
      })
      await bridge.start()
      closeBridge = bridge.close.bind(bridge)
    }
    at(RANK.bridge, async () => {
      await closeBridge()
      fleet.flush(Date.now())
      void findings.push(fleet.drain())
      findings.stop()
      flushHosts()
    })
    const h0 = await bridge.health(5000)
    if (!h0.ok) throw new PicketError('PICKET_ERR_BRIDGE', `the detection workers started but do not answer (${h0.detail}); check the log above and --workers`)
    logger.info({ workers: o.workers, kind: bridge.kind }, 'detection workers alive')

    // counters kept elsewhere as cumulative totals, turned into increments
    const seen = { routes: 0, tracker: 0, fleet: { ...fleet.stats.evictions } }
    const workerGauges = (): void => {
      let forgotten = 0
      for (const w of bridge.snapshot()) {
        const worker = String(w.index)
        metrics.queueDepth.set({ worker }, w.queued)
        metrics.workerUp.set({ worker }, w.alive ? 1 : 0)
        metrics.workerRestarts.set({ worker }, w.restarts)
        forgotten += w.hostsForgotten
      }
      metrics.hostsAged.inc({ map: 'routes' }, forgotten - seen.routes)
      metrics.hostsAged.inc({ map: 'tracker' }, hosts.aged - seen.tracker)
      seen.routes = forgotten
      seen.tracker = hosts.aged
      for (const kind of STATE_KINDS) metrics.stateEvictions.inc({ kind }, fleet.stats.evictions[kind] - seen.fleet[kind])
      seen.fleet = { ...fleet.stats.evictions }
      metrics.fleetStateBytes.set(fleet.stats.stateBytes)
    }
    workerGauges()
    let lastRecords = 0
    let rate = 0
    timers.push(setInterval(() => {
      void contained('fleet', async () => {
        fleet.tick(Date.now())
        void findings.push(fleet.drain())
        metrics.openIncidents.set({ stage: 'fleet' }, fleet.stats.openIncidents)
      })
    }, o.tickMs))
    timers.push(setInterval(() => {
      flushHosts()
      void metrics.records.get().then(v => {
        const total = v.values[0]?.value ?? 0
        rate = rate * 0.5 + (total - lastRecords) * 0.5
        lastRecords = total
        metrics.recordsPerSecond.set(Math.round(rate))
      })
      let open = 0
      for (const s of lastStats.values()) open += s.openIncidents
      metrics.openIncidents.set({ stage: 'host' }, open)
      workerGauges()
    }, 1000))

    const collector = new Collector({ host: o.listen.host, port: o.listen.port, allowRemote: o.allowRemote, tls: o.tls, limits: o.limits, streams: o.streams, bridge, metrics, hosts, logger })
    const bound = await collector.start()
    at(RANK.collector, async () => { await collector.close() })
    const collectorAddress = formatHostPort(bound.host, bound.port)

    const health = async (): Promise<HealthReport> => {
      const b = await bridge.health(1000)
      let storeOk = true
      let storeError: string | undefined
      try { store.getHost('') } catch (err) { storeOk = false; storeError = (err as Error).message }
      const hints: string[] = []
      for (const w of b.workers) if (!w.alive) hints.push(`detection worker ${w.index} is not answering${w.lastError !== undefined ? ` (${w.lastError})` : ''}: batches of its hosts are answered RETRY and stay in the agents' spools`)
      if (collector.streams === 0) hints.push(`no agent is connected to the collector at ${collectorAddress}: check the agent's --collector address, or run picket inject-scan --collector ${collectorAddress}`)
      let recs = 0
      let matched = 0
      for (const s of lastStats.values()) { recs += s.records; matched += s.matched }
      if (recs > 0 && matched === 0) hints.push('records arrive but none matches a detection rule: check that they are network_activity (class_uid 4001) inbound Open/Refuse records, and the allow-list filter in the rules folder')
      // no path here: the hints are shown without a token too; store.path has it
      if (!storeOk) hints.push(`the alert store fails (${storeError ?? ''}): findings cannot be stored`)
      if (findings.failing) hints.push(`findings cannot be written to the alert store (see the log): ${findings.queued} wait in memory, and the batches that caused them stay unacked in the agents' spools`)
      const status = !b.reachable || !storeOk ? 'down' : !b.ok || findings.failing ? 'degraded' : 'ok'
      return {
        status,
        time: new Date().toISOString(),
        uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
        collector: { address: collectorAddress, streams: collector.streams, connections: collector.connections, hosts: hosts.size },
        bridge: b,
        store: { path: o.db, ok: storeOk, ...(storeError !== undefined ? { error: storeError } : {}) },
        detection: {
          openIncidents: { host: [...lastStats.values()].reduce((a, s) => a + s.openIncidents, 0), fleet: fleet.stats.openIncidents },
          fleet: { groups: fleet.stats.groups, stateBytes: fleet.stats.stateBytes, budgetBytes: fleet.stats.budgetBytes, evictions: fleet.stats.evictions },
          findingsQueued: findings.queued,
          lastFindingAt: findings.lastAt !== undefined ? new Date(findings.lastAt).toISOString() : undefined,
        },
        hints,
      }
    }

    const ctx: BackendContext = { store, bridge, metrics, logger, health, access: o.httpAccess, collectorAddress }
    let app: FastifyInstance | undefined
    let httpInfo: BackendHandle['http']
    if (o.http !== undefined) {
      const plugins = [...o.plugins]
      const cp = await consolePlugin(o, logger)
      if (cp !== undefined) plugins.push(cp)
      app = await createHttpServer({ ctx, plugins })
      const a = app
      at(RANK.http, async () => { await a.close() })
      await app.listen({ host: o.http.host, port: o.http.port })
      const addr = app.server.address()
      const port = typeof addr === 'object' && addr !== null ? addr.port : o.http.port
      const host = o.http.host
      httpInfo = { host, port, url: `http://${formatHostPort(host, port)}` }
    }
    if (webhook !== undefined) at(RANK.webhook, async () => { await webhook.close() })
    logger.info({ collector: collectorAddress, http: httpInfo?.url, db: o.db, workers: o.workers, httpTokens: o.httpAccess.tokens.size, anonymousReads: o.httpAccess.anonymousReads }, 'backend started')

    let closing: Promise<void> | undefined
    return {
      collector: { host: bound.host, port: bound.port, address: collectorAddress },
      http: httpInfo,
      store,
      bridge,
      metrics,
      app,
      rules,
      options: o,
      logger,
      health,
      flush: async () => {
        await bridge.flush()
        const now = Date.now()
        fleet.tick(now)
        fleet.flush(now)
        void findings.push(fleet.drain())
        findings.flushNow()
        flushHosts()
      },
      close: async () => {
        closing ??= (async () => {
          await unwind()
          logger.info('backend stopped')
        })()
        await closing
      },
    }
  } catch (err) {
    await unwind()
    throw err
  }
}
