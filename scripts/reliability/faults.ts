import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { routeHost } from '../../backend/bridge/pool.js'
import { AlertStore } from '../../backend/store/index.js'
import { rootPath } from '../../shared/paths.js'
import { startBackendProc, type BackendProc } from '../bench/lib/backend.js'
import { sleep } from '../bench/lib/proc.js'
import { freePort } from '../bench/lib/spawn.js'
import { injectScan } from '../injector/index.js'
import { startAgentProc, until, type AgentProc } from './agent.js'
import type { Drill, DrillContext, DrillResult, FaultRow } from './drill.js'
import { StallProxy } from './proxy.js'

// The fault drills: the faults test/agent/pipeline.test.ts, test/agent/cli.test.ts
// and test/backend/worker-crash.test.ts drive against test doubles, here
// against the real stack: `picket agent --source synth` processes shipping
// to a backend child process on a fixed port and alert store. Each drill's
// agent sends the same synthetic records (seed 1), so the baseline drill,
// with no fault, says how many findings they give.

const OUTAGE_MS = 3000

interface Stack {
  dir: string
  db: string
  port: number
  be: BackendProc
  hostId: string
}

async function stack (name: string, opts: { detectionWorker?: URL, env?: NodeJS.ProcessEnv } = {}): Promise<Stack> {
  const dir = mkdtempSync(join(tmpdir(), `picket-drill-${name}-`))
  const db = join(dir, 'picket.db')
  const port = await freePort()
  const be = await startBackendProc({ db, listen: `127.0.0.1:${port}`, workers: 2, ...opts })
  return { dir, db, port, be, hostId: `drill-${name}` }
}

/** What the backend made of it: findings of the host, and the host's counters from the store once the backend is stopped. */
async function settle (s: Stack, hosts: readonly string[]): Promise<{ findings: number, records: number, duplicateBatches: number }> {
  let findings = 0
  if (s.be.exit() === null) {
    await s.be.flush()
    findings = (await s.be.findings()).filter(f => f.host !== null && hosts.includes(f.host)).length
    await s.be.stop()
  }
  const store = AlertStore.open(s.db)
  let records = 0
  let duplicateBatches = 0
  try {
    for (const h of hosts) {
      const row = store.getHost(h)
      records += row?.records ?? 0
      duplicateBatches += row?.duplicateBatches ?? 0
    }
  } finally {
    store.close()
  }
  rmSync(s.dir, { recursive: true, force: true })
  return { findings, records, duplicateBatches }
}

function duplicates (records: number, sent: number, duplicateBatches: number): string {
  const twice = Math.max(0, records - sent)
  return `${duplicateBatches} batch${duplicateBatches === 1 ? '' : 'es'} answered DUPLICATE; ${twice} record${twice === 1 ? '' : 's'} counted twice`
}

const acked = async (a: AgentProc): Promise<number> => await a.metric('picket_agent_records_acked_total')
const pending = async (a: AgentProc): Promise<number> => await a.metric('picket_agent_spool_pending_records')

/** The findings the synthetic records give without a fault, once measured. */
let baselineFindings: number | undefined

interface AgentFlow {
  /** records the agent generates */
  total: number
  rate: number
  /** what happens to the stack once a quarter of the records are acked; returns when the broken part is back */
  fault?: (s: Stack, agent: AgentProc) => Promise<number>
  notes: (r: { lostCounters: boolean }) => string
}

async function agentDrill (name: string, ctx: DrillContext, flow: AgentFlow): Promise<DrillResult> {
  const s = await stack(name)
  const dataDir = join(s.dir, 'agent')
  const agent = await startAgentProc({ collector: `127.0.0.1:${s.port}`, dataDir, hostId: s.hostId, total: flow.total, rate: flow.rate })
  let recoverMs: number | undefined
  let sentAcked = 0
  try {
    let backAt: number | undefined
    if (flow.fault !== undefined) {
      if (!(await until(async () => await acked(agent) >= flow.total / 4, 60_000))) throw new Error(`${name}: the agent never got a quarter of its records acked; its stderr:\n${agent.stderr()}`)
      ctx.log(`${name}: fault`)
      backAt = await flow.fault(s, agent)
    }
    const done = await until(async () => await acked(agent) >= flow.total && await pending(agent) === 0, 120_000)
    if (done && backAt !== undefined) recoverMs = Date.now() - backAt
    sentAcked = await acked(agent)
  } finally {
    await agent.stop('SIGTERM')
  }
  const r = await settle(s, [s.hostId])
  const expected = baselineFindings ?? r.findings
  if (flow.fault === undefined) baselineFindings = r.findings
  const row: FaultRow = {
    recordsSent: flow.total,
    recordsAcked: sentAcked,
    findingsExpected: expected,
    findingsStored: r.findings,
    duplicates: duplicates(r.records, flow.total, r.duplicateBatches),
    recoverMs,
    notes: [flow.notes({ lostCounters: r.records < flow.total }), `The backend counted ${r.records.toLocaleString('en-US')} records for the host.`].filter(x => x !== '').join(' '),
  }
  return { kind: 'fault', row }
}

/** Take the backend down with `end`, keep it down OUTAGE_MS, start it again on the same port and store. */
function outage (end: (be: BackendProc) => Promise<void>): (s: Stack) => Promise<number> {
  return async s => {
    await end(s.be)
    await sleep(OUTAGE_MS)
    s.be = await startBackendProc({ db: s.db, listen: `127.0.0.1:${s.port}`, workers: 2 })
    return Date.now()
  }
}

const N = (ctx: DrillContext): number => ctx.quick ? 8000 : 20_000
const RATE = 4000

export const FAULT_DRILLS: Record<string, Drill> = {
  baseline: {
    title: 'no fault (baseline)',
    what: `\`picket agent --source synth\` sends 20,000 records (${RATE}/s; each from its own source, so the rules see a distributed scan) to a backend; nothing breaks. Its findings are what the drills below expect.`,
    kind: 'fault',
    run: async ctx => await agentDrill('baseline', ctx, { total: N(ctx), rate: RATE, notes: () => '' }),
  },
  'collector-down': {
    title: 'collector down while the agent runs',
    what: `As the baseline; once a quarter is acked, the backend is stopped cleanly, stays down ${OUTAGE_MS / 1000} s while the agent spools, and starts again on the same port and alert store. Recovery: from its restart until the agent's spool is empty.`,
    kind: 'fault',
    run: async ctx => await agentDrill('collector-down', ctx, {
      total: N(ctx),
      rate: RATE,
      fault: outage(async be => { await be.stop() }),
      notes: () => 'A restart closes the findings it left open (sliding windows start empty), so a scan that spans it is reported twice.',
    }),
  },
  'backend-kill': {
    title: 'backend SIGKILL while the agent runs',
    what: `As the collector drill, but the backend is killed (SIGKILL) instead of stopped, and restarted after ${OUTAGE_MS / 1000} s.`,
    kind: 'fault',
    run: async ctx => await agentDrill('backend-kill', ctx, {
      total: N(ctx),
      rate: RATE,
      fault: outage(async be => { await be.kill() }),
      notes: r => r.lostCounters ? 'The host counters of the last second before the kill were never written (they are flushed once a second), so the backend\'s record count is short of what it accepted.' : '',
    }),
  },
  'agent-kill': {
    title: 'agent SIGKILL with batches in flight, then replay',
    what: 'The agent ships through a relay; once a quarter is acked the relay stalls (batches in flight, unacked), the agent spools the rest and is killed (SIGKILL); the relay then delivers what it held (the collector takes it, its acks go nowhere) and cuts the connection; a new agent on the same data folder replays its spool. Recovery: from the new agent\'s start until its spool is empty.',
    kind: 'fault',
    run: async ctx => await agentKill(ctx),
  },
  'worker-crash': {
    title: 'detection worker crash mid-batch',
    what: 'Two hosts\' 100-port scans (10 batches each) go to a backend whose detection worker for one of them dies on its first batch (test/fixtures/crashing-detection-worker.ts); the batch in flight is answered RETRY and resent, the slot restarts. Recovery: from the crash until the crashed host\'s last batch is acked.',
    kind: 'fault',
    run: async () => await workerCrash(),
  },
}

async function agentKill (ctx: DrillContext): Promise<DrillResult> {
  const total = N(ctx)
  const s = await stack('agent-kill')
  const proxy = await StallProxy.start({ host: '127.0.0.1', port: s.port })
  const dataDir = join(s.dir, 'agent')
  const run = { collector: proxy.address, dataDir, hostId: s.hostId, rate: RATE }
  let first: AgentProc | undefined = await startAgentProc({ ...run, total })
  let second: AgentProc | undefined
  let firstAcked = 0
  let recoverMs: number | undefined
  let secondAcked = 0
  try {
    if (!(await until(async () => await acked(first as AgentProc) >= total / 4, 60_000))) throw new Error('agent-kill: no acks before the stall')
    proxy.stall()
    await sleep(300) // acks already on their way are in, the next batches are held
    firstAcked = await acked(first)
    await until(async () => await (first as AgentProc).metric('picket_agent_records_spooled_total') >= total, 60_000)
    ctx.log('agent-kill: SIGKILL')
    await first.stop('SIGKILL')
    first = undefined
    await proxy.release()
    const startedAt = Date.now()
    second = await startAgentProc({ ...run, total: 0 })
    const ok = await until(async () => await (second as AgentProc).metric('picket_agent_batches_acked_total') > 0 && await pending(second as AgentProc) === 0, 120_000)
    if (ok) recoverMs = Date.now() - startedAt
    secondAcked = await acked(second)
  } finally {
    await first?.stop('SIGKILL')
    await second?.stop('SIGTERM')
    await proxy.close()
  }
  const r = await settle(s, [s.hostId])
  return {
    kind: 'fault',
    row: {
      recordsSent: total,
      recordsAcked: firstAcked + secondAcked,
      findingsExpected: baselineFindings ?? r.findings,
      findingsStored: r.findings,
      duplicates: duplicates(r.records, total, r.duplicateBatches),
      recoverMs,
      notes: `The first agent had ${firstAcked.toLocaleString('en-US')} records acked; its replacement replayed and had ${secondAcked.toLocaleString('en-US')} acked. The backend counted ${r.records.toLocaleString('en-US')} records for the host.`,
    },
  }
}

async function workerCrash (): Promise<DrillResult> {
  const crashHost = 'drill-crash-host'
  let calmHost = ''
  for (let i = 0; calmHost === ''; i++) if (routeHost(`drill-calm-${i}`, 2) !== routeHost(crashHost, 2)) calmHost = `drill-calm-${i}`
  const dir = mkdtempSync(join(tmpdir(), 'picket-drill-worker-crash-'))
  const marker = join(dir, 'crashed')
  const s = await stack('worker-crash', {
    detectionWorker: pathToFileURL(rootPath('test', 'fixtures', 'crashing-detection-worker.ts')),
    env: { CRASHING_WORKER_HOST: crashHost, CRASHING_WORKER_MARKER: marker },
  })
  let crashedDoneAt = 0
  const [crashed, calm] = await Promise.all([
    injectScan({ collector: s.be.address, hostId: crashHost, ports: 100, batchSize: 10, seed: 11 }).then(r => { crashedDoneAt = Date.now(); return r }),
    injectScan({ collector: s.be.address, hostId: calmHost, ports: 100, batchSize: 10, seed: 12 }),
  ])
  let crashAt: number | undefined
  try { crashAt = statSync(marker).mtimeMs } catch {}
  rmSync(dir, { recursive: true, force: true })
  const r = await settle(s, [crashHost, calmHost])
  const sent = crashed.records.total + calm.records.total
  return {
    kind: 'fault',
    row: {
      recordsSent: sent,
      recordsAcked: (crashed.batches.ok + calm.batches.ok) * 10,
      findingsExpected: 2,
      findingsStored: r.findings,
      duplicates: `${crashed.batches.retried + calm.batches.retried} RETRY answers, each batch resent; ${Math.max(0, r.records - sent)} records counted twice`,
      recoverMs: crashAt !== undefined ? crashedDoneAt - crashAt : undefined,
      notes: crashAt === undefined ? 'The worker did not crash: the fixture\'s marker file was never made.' : `The calm host saw ${calm.batches.retried} RETRY.`,
    },
  }
}
