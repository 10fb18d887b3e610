import * as grpc from '@grpc/grpc-js'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DEFAULT_LIMITS } from '../../backend/limits.js'
import { ERRORS } from '../../shared/errors.js'
import type { Ack } from '../../shared/proto/index.js'
import { BACKEND_NODE_ARGS, startBackendProc, type BackendProc } from '../bench/lib/backend.js'
import { peakRssBytes, rssBytes, sleep } from '../bench/lib/proc.js'
import { injectScan } from '../injector/index.js'
import { episodeSpecs, materialize, type Episode, type MutationClass } from './batches.js'
import { findCulprit, type Culprit } from './bisect.js'
import { ANSWER_MS, RawShipClient, wireBytes, type Answer, type EpisodeAnswers } from './ship.js'

// Runs the fuzzer against a live backend in a child process (its own RSS; a
// crash is its death): episodes from the seeded generator on `concurrency`
// Ship streams at once; an honest host's scan (16 ports from a source the
// fuzzer never uses) half-way through; then the checks. A backend that dies
// is counted as a crash, the episodes in flight are named, and it is
// restarted on the same alert store (up to maxCrashes times) so that one
// run reports every kind of defect it meets, not only the first.

export const DEFAULT_SEED = 0x5eed1
export const HONEST_HOST = 'honest-host'
export const HONEST_SOURCE = '198.18.0.77'
export const HONEST_PORTS = 16
/**
 * The RSS bound: the backend's idle RSS plus this. The backend runs with a
 * stated detection-state budget (FUZZ_DETECTION_MEMORY per worker), so the
 * bound covers that state, gRPC's buffers for the batches in flight (8
 * streams of batches up to max_batch_bytes, each decoded and copied) and V8's
 * heaps; a default budget (256 MiB per worker) would let honest state alone
 * outgrow any tight bound. Measured peaks on 2 cores: 189-237 MiB over idle
 * on Node 20, 219-223 MiB on Node 24 with BACKEND_NODE_ARGS (266-288 MiB without).
 */
// 288 since the SigmaHQ corpus (~140 rules compiled in each detection
// worker): peaks of 245-263 MiB over idle in CI runs on Node 24 (256 was hit by 7 MiB once)
export const RSS_HEADROOM_BYTES = 288 * 2 ** 20
export const FUZZ_DETECTION_MEMORY = 32 * 2 ** 20

export interface FuzzOptions {
  seed?: number
  /** messages to send (a Batch, or bytes standing in for one) */
  batches: number
  /** replay from this episode of the seed's stream */
  firstEpisode?: number
  /** episodes (Ship streams) at once; default 8 */
  concurrency?: number
  /** messages sent before the honest scan starts; default half; at `batches` or more, once every episode is answered */
  honestAt?: number
  /** backend deaths (each followed by a restart) after which the run stops sending; default 3 */
  maxCrashes?: number
  /** detection worker threads of the backend; default 2 */
  workers?: number
  /** after the run, replay each crash's suspects on fresh backends to name the episode that kills it */
  bisect?: boolean
  /** these episodes instead of the seed's generator (the reliability drills' targeted inputs) */
  episodes?: Iterable<EpisodeMaker>
  /** how long the backend idles after the run before its RSS is read again; default 1 s */
  settleMs?: number
  progress?: (p: { sent: number, of: number, crashes: number, rss: number }) => void
}

export interface Example { episode: number, batch: number, labels: string[], answer: string }
export interface Crash {
  afterBatches: number
  exit: number | string
  /** episodes whose streams were open when it died */
  inFlight: Array<{ episode: number, labels: string[] }>
  /** episodes answered in the 2 s before, newest first: what a batch causes after its Ack can kill it later */
  answeredLately: Array<{ episode: number, labels: string[] }>
  /** the end of its stderr, warnings left out */
  stderr: string
  /** the one episode that kills a fresh backend on its own, when bisect found it */
  culprit?: Culprit
}
export interface Findings<T> { count: number, examples: T[] }

export interface FuzzReport {
  seed: number
  firstEpisode: number
  episodes: number
  batches: number
  elapsedMs: number
  /** answers by kind: OK, DUPLICATE, REFUSED, RETRY, stream status, unanswered */
  answers: Record<string, number>
  /** refusals (and stream statuses) by reason */
  reasons: Record<string, number>
  /** batches per mutation class, by answer */
  byClass: Partial<Record<MutationClass, Record<string, number>>>
  /** REFUSED or RETRY acks without a registered PICKET_ERR_ code and a message; stream statuses without details */
  unnamed: Findings<Example>
  /** messages that got neither an Ack nor an error status */
  unanswered: Findings<Example>
  /** refusals with gRPC INTERNAL: the detection engine threw on the batch */
  internal: Findings<Example>
  /** OK acks for batches holding a record that breaks its contract (batches.ts violations()) */
  invalidAccepted: Findings<Example>
  /** acks that match no message sent */
  extraAcks: number
  /** the slowest answer after its message's last byte left, and the slowest message to leave, in ms, with their episodes */
  slowest: { answerMs: number, answerEpisode: number, writeMs: number, writeEpisode: number }
  /** the run stopped before `batches` because the backend died maxCrashes times */
  stoppedEarly: boolean
  /** messages in flight when the backend died (their answers are not judged) */
  lostToCrash: number
  crashes: Crash[]
  honest: { host: string, source: string, acks: string, findings: number, error?: string }
  health: { alive: boolean, code?: number, status?: string, error?: string }
  /** size of the /metrics page at the end */
  metricsBytes: number
  rss: { idle: number, peak: number, final: number, bound: number }
}

/** Builds one episode just before it is sent (records are stamped with `now`). */
export type EpisodeMaker = (now: number) => Episode

/** The seed's stream of generated episodes, from episode `first` on. */
export function * seededEpisodes (seed: number, first = 0): Generator<EpisodeMaker> {
  for (const { index, spec } of episodeSpecs(seed, first)) {
    yield now => materialize(spec, { seed, index, now, victim: HONEST_HOST, limits: DEFAULT_LIMITS })
  }
}

interface Life { be: BackendProc, client: RawShipClient, idle: number, peak: number }

const KEEP = 8

function add (f: Findings<Example>, e: Example): void {
  f.count++
  if (f.examples.length < KEEP) f.examples.push(e)
}

const named = (a: Ack): boolean => typeof a.error === 'string' && Object.hasOwn(ERRORS, a.error) && typeof a.message === 'string' && a.message.trim() !== ''

function answerKey (a: Answer): string {
  return a.k === 'ack' ? a.ack.status : a.k === 'status' ? 'stream status' : 'unanswered'
}

function describe (a: Answer): string {
  if (a.k === 'ack') return `${a.ack.status}${a.ack.error !== undefined && a.ack.error !== '' ? ` ${a.ack.error}` : ''}${a.ack.limit !== undefined && a.ack.limit !== '' ? ` (${a.ack.limit})` : ''}${a.ack.message !== undefined && a.ack.message !== '' ? `: ${a.ack.message.slice(0, 200)}` : ''}`
  if (a.k === 'status') return `stream ended ${grpc.status[a.code] ?? a.code}: ${a.details.slice(0, 200)}`
  return `no answer (${a.why})`
}

function reason (a: Answer): string | undefined {
  if (a.k === 'status') return `gRPC ${grpc.status[a.code] ?? a.code}`
  if (a.k !== 'ack' || (a.ack.status !== 'REFUSED' && a.ack.status !== 'RETRY')) return undefined
  const e = a.ack.error !== undefined && a.ack.error !== '' ? a.ack.error : '(no error code)'
  return `${a.ack.status === 'RETRY' ? 'RETRY ' : ''}${e}${a.ack.limit !== undefined && a.ack.limit !== '' ? ` ${a.ack.limit}` : ''}`
}

function readRss (pid: number): { rss: number, hwm: number } {
  try { return { rss: rssBytes(pid), hwm: peakRssBytes(pid) } } catch { return { rss: NaN, hwm: NaN } }
}

async function startLife (db: string, workers: number): Promise<Life> {
  const be = await startBackendProc({ db, workers, http: true, backend: { detectionMemory: FUZZ_DETECTION_MEMORY }, execArgv: [...BACKEND_NODE_ARGS] })
  await sleep(1000)
  const idle = readRss(be.pid).rss
  // reset VmHWM to the current RSS (proc(5), clear_refs "5"), so the peak is this run's
  try { writeFileSync(`/proc/${be.pid}/clear_refs`, '5') } catch {}
  return { be, client: new RawShipClient(be.address), idle, peak: idle }
}

export async function runFuzz (o: FuzzOptions): Promise<FuzzReport> {
  const seed = o.seed ?? DEFAULT_SEED
  const first = o.firstEpisode ?? 0
  const concurrency = o.concurrency ?? 8
  const honestAt = o.honestAt ?? Math.floor(o.batches / 2)
  const maxCrashes = o.maxCrashes ?? 3
  const workers = o.workers ?? 2
  const dir = mkdtempSync(join(tmpdir(), 'picket-fuzz-'))
  const db = join(dir, 'picket.db')
  const t0 = Date.now()
  const empty = (): Findings<Example> => ({ count: 0, examples: [] })
  const r: FuzzReport = {
    seed, firstEpisode: first, episodes: 0, batches: 0, elapsedMs: 0, answers: {}, reasons: {}, byClass: {},
    unnamed: empty(), unanswered: empty(), internal: empty(), invalidAccepted: empty(), extraAcks: 0,
    slowest: { answerMs: 0, answerEpisode: -1, writeMs: 0, writeEpisode: -1 },
    stoppedEarly: false, lostToCrash: 0, crashes: [],
    honest: { host: HONEST_HOST, source: HONEST_SOURCE, acks: 'not sent', findings: 0 },
    health: { alive: false },
    metricsBytes: NaN,
    rss: { idle: NaN, peak: NaN, final: NaN, bound: NaN },
  }
  let life = await startLife(db, workers)
  r.rss.idle = life.idle
  r.rss.bound = life.idle + RSS_HEADROOM_BYTES
  let peak = life.idle
  const sample = setInterval(() => {
    const m = readRss(life.be.pid)
    const p = Math.max(m.rss, m.hwm)
    if (p > peak) peak = p
  }, 200)
  const makers = (o.episodes ?? seededEpisodes(seed, first))[Symbol.iterator]()
  const inFlight = new Map<number, Episode>()
  /** episodes answered lately: a finding is written after its batch is acked, so the one that kills the backend may be among them */
  const recent: Array<{ index: number, at: number, labels: string[] }> = []
  let sent = 0
  let stopped = false
  let closing = false
  let restarting: Promise<void> | undefined
  let honest: Promise<void> | undefined

  const sendHonest = async (): Promise<void> => {
    try {
      const s = await injectScan({ collector: life.be.address, hostId: HONEST_HOST, source: HONEST_SOURCE, ports: HONEST_PORTS, portBase: 3000, batchSize: HONEST_PORTS, seed: 1, timeoutMs: 30_000 })
      r.honest.acks = `${s.batches.ok} OK, ${s.batches.duplicate} DUPLICATE, ${s.batches.refused} REFUSED${s.firstRefusal !== undefined ? ` (${s.firstRefusal})` : ''}`
      delete r.honest.error
    } catch (err) {
      r.honest.error = (err as Error).message
    }
  }

  const crashOf = (be: BackendProc, exit: number | string): Crash => {
    const diedAt = Date.now()
    return {
      afterBatches: sent,
      exit,
      inFlight: [...inFlight.values()].map(ep => ({ episode: ep.index, labels: ep.shipments.flatMap(s => s.labels) })),
      answeredLately: recent.filter(e => diedAt - e.at < 2000).reverse().map(e => ({ episode: e.index, labels: e.labels })),
      stderr: be.stderr().split('\n').filter(line => !/"level":40/.test(line)).slice(-25).join('\n'),
    }
  }

  const watch = (l: Life): void => {
    void l.be.exited.then(async exit => {
      if (closing) return
      r.crashes.push(crashOf(l.be, exit))
      l.client.close()
      // past maxCrashes the fuzzing stops, but one more life runs the honest scan and the final checks
      if (r.crashes.length >= maxCrashes) { stopped = true; r.stoppedEarly = true }
      restarting = (async () => {
        life = await startLife(db, workers)
        watch(life)
        restarting = undefined
      })()
    })
  }
  watch(life)

  const record = (ep: Episode, { answers, extra, slowest }: EpisodeAnswers): void => {
    r.episodes++
    r.extraAcks += extra.length
    if (slowest.answerMs > r.slowest.answerMs) Object.assign(r.slowest, { answerMs: slowest.answerMs, answerEpisode: ep.index })
    if (slowest.writeMs > r.slowest.writeMs) Object.assign(r.slowest, { writeMs: slowest.writeMs, writeEpisode: ep.index })
    ep.shipments.forEach((s, i) => {
      const a = answers[i]
      const key = answerKey(a)
      r.answers[key] = (r.answers[key] ?? 0) + 1
      const why = reason(a)
      if (why !== undefined) r.reasons[why] = (r.reasons[why] ?? 0) + 1
      for (const c of s.classes) {
        const row = r.byClass[c] ??= {}
        row[key] = (row[key] ?? 0) + 1
      }
      const ex = (): Example => ({ episode: ep.index, batch: i, labels: s.labels, answer: describe(a) })
      if (a.k === 'none') add(r.unanswered, ex())
      else if (a.k === 'status' && a.details.trim() === '') add(r.unnamed, ex())
      else if (a.k === 'ack') {
        if ((a.ack.status === 'REFUSED' || a.ack.status === 'RETRY') && !named(a.ack)) add(r.unnamed, ex())
        if (a.ack.status === 'REFUSED' && a.ack.code === grpc.status.INTERNAL) add(r.internal, ex())
        if (a.ack.status === 'OK' && s.invalid.length > 0) add(r.invalidAccepted, { ...ex(), answer: `OK, though ${s.invalid.join('; ')}` })
      }
    })
  }

  const loop = async (): Promise<void> => {
    while (!stopped && sent < o.batches) {
      if (restarting !== undefined) { await restarting; continue }
      const next = makers.next()
      if (next.done === true) break
      const ep = next.value(Date.now())
      const wires = ep.shipments.map(wireBytes)
      sent += wires.length
      if (honest === undefined && sent >= honestAt && honestAt < o.batches) honest = sendHonest()
      const l = life
      inFlight.set(ep.index, ep)
      const res = await l.client.send(ep, wires)
      inFlight.delete(ep.index)
      // a stream cut by the backend's death can end before the death is seen here
      if (res.answers.some(a => a.k === 'status' && (a.code === grpc.status.UNAVAILABLE || a.code === grpc.status.CANCELLED))) await Promise.race([l.be.exited, sleep(2000)])
      if (l.be.exit() !== null) { r.lostToCrash += wires.length; continue }
      recent.push({ index: ep.index, at: Date.now(), labels: ep.shipments.flatMap(s => s.labels) })
      if (recent.length > 64) recent.shift()
      record(ep, res)
    }
  }
  const progress = o.progress !== undefined
    ? setInterval(() => o.progress?.({ sent, of: o.batches, crashes: r.crashes.length, rss: readRss(life.be.pid).rss }), 5000)
    : undefined
  try {
    await Promise.all(Array.from({ length: concurrency }, loop))
    await honest
    if (restarting !== undefined) await restarting
    r.batches = sent
    // a scan the fuzzer stopped from going through (a crash under it) is tried once more
    if (life.be.exit() === null && (honest === undefined || r.honest.error !== undefined)) await sendHonest()
    await sleep(100)
    if (restarting !== undefined) await restarting
    // from here a death is reported by the final checks, not followed by a restart
    closing = true
    const be = life.be
    try {
      await be.flush()
      for (let end = Date.now() + 5000; ; await sleep(250)) {
        const all = await be.findings()
        r.honest.findings = all.filter(f => f.host === HONEST_HOST && f.sources.includes(HONEST_SOURCE)).length
        if (r.honest.findings > 0 || Date.now() > end) break
        await be.flush()
      }
      try {
        const res = await fetch(`${be.http ?? ''}/healthz`, { signal: AbortSignal.timeout(5000) })
        r.health.code = res.status
        r.health.status = String(((await res.json()) as { status?: unknown }).status)
        r.metricsBytes = (await (await fetch(`${be.http ?? ''}/metrics`, { signal: AbortSignal.timeout(5000) })).arrayBuffer()).byteLength
      } catch (err) {
        r.health.error = (err as Error).message
      }
      await sleep(o.settleMs ?? 1000)
      r.rss.final = readRss(be.pid).rss
    } catch (err) {
      if (be.exit() === null) throw err
    }
    r.health.alive = be.exit() === null
    if (!r.health.alive) r.crashes.push(crashOf(be, be.exit() ?? -1))
  } finally {
    clearInterval(sample)
    if (progress !== undefined) clearInterval(progress)
    r.rss.peak = peak
    r.elapsedMs = Date.now() - t0
    stopped = true
    closing = true
    life.client.close()
    await life.be.stop()
    rmSync(dir, { recursive: true, force: true })
  }
  if (o.bisect === true && o.episodes === undefined) {
    for (const c of r.crashes) {
      const culprit = await findCulprit(seed, [...c.inFlight, ...c.answeredLately].map(e => e.episode), { victim: HONEST_HOST, workers })
      if (culprit !== undefined) c.culprit = culprit
    }
  }
  return r
}

/** The checks a run must pass, each failure as a sentence; empty when it passed. */
export function failedChecks (r: FuzzReport): string[] {
  const out: string[] = []
  if (r.crashes.length > 0) out.push(`the backend died ${r.crashes.length} time(s)`)
  if (!r.health.alive || r.health.code === undefined) out.push('the backend or its /healthz did not answer at the end')
  if (r.unnamed.count > 0) out.push(`${r.unnamed.count} refusal(s) did not name their reason`)
  if (r.unanswered.count > 0) out.push(`${r.unanswered.count} message(s) got no answer`)
  if (r.internal.count > 0) out.push(`${r.internal.count} batch(es) made the detection engine throw`)
  if (r.invalidAccepted.count > 0) out.push(`${r.invalidAccepted.count} batch(es) with a record that breaks its contract were acked OK`)
  if (r.honest.findings !== 1) out.push(`the honest scan gave ${r.honest.findings} findings, not 1`)
  if (!(r.rss.peak <= r.rss.bound)) out.push(`peak RSS ${mib(r.rss.peak)} went past the bound ${mib(r.rss.bound)}`)
  return out
}

const list = (es: ReadonlyArray<{ episode: number }>): string => es.slice(0, 10).map(e => e.episode).join(', ') + (es.length > 10 ? ', …' : '')
const mib = (b: number): string => Number.isFinite(b) ? `${(b / 2 ** 20).toFixed(0)} MiB` : 'n/a'

/** The report as text: what a person reads after a run. */
export function formatFuzzReport (r: FuzzReport): string {
  const kv = (o: Record<string, number>): string => Object.entries(o).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${v} × ${k}`).join(', ')
  const lines = [
    `fuzz: seed ${r.seed}, episodes ${r.firstEpisode}..${r.firstEpisode + r.episodes - 1}, ${r.batches} messages in ${(r.elapsedMs / 1000).toFixed(1)} s`,
    `  answers     ${kv(r.answers)}`,
    `  reasons     ${kv(r.reasons)}`,
    `  crashes     ${r.crashes.length}${r.lostToCrash > 0 ? ` (${r.lostToCrash} messages in flight lost with them)` : ''}`,
    ...r.crashes.flatMap((c, i) => [
      `    #${i + 1} after ${c.afterBatches} messages, exit ${c.exit}; ${c.inFlight.length} episode(s) in flight (${list(c.inFlight)}), ${c.answeredLately.length} answered in the 2 s before (${list(c.answeredLately)})`,
      ...(c.culprit !== undefined
        ? [`      culprit, alone it kills a fresh backend: episode ${c.culprit.episode}: ${c.culprit.labels.join(' | ').slice(0, 400)}`]
        : [`      to name the episode that killed it: npm run fuzz -- --seed ${r.seed} --from ${r.firstEpisode} --count ${c.afterBatches} (replays the suspects on fresh backends, half at a time)`]),
      ...c.stderr.split('\n').filter(l => l.trim() !== '').slice(-8).map(l => `      | ${l.slice(0, 300)}`),
    ]),
    `  unnamed     ${r.unnamed.count} refusals without a registered PICKET_ERR_ code and a message`,
    `  unanswered  ${r.unanswered.count} messages without an Ack or an error status`,
    `  internal    ${r.internal.count} refusals because the engine threw (gRPC INTERNAL)`,
    `  unchecked   ${r.invalidAccepted.count} batches acked OK though a record breaks its contract`,
    ...(r.extraAcks > 0 ? [`  extra acks  ${r.extraAcks}`] : []),
    `  slowest     answer ${r.slowest.answerMs} ms after its message's last byte left (episode ${r.slowest.answerEpisode}; due within ${ANSWER_MS} ms), message ${r.slowest.writeMs} ms to leave (episode ${r.slowest.writeEpisode})`,
    `  honest      ${r.honest.host} from ${r.honest.source}, ${HONEST_PORTS} ports: ${r.honest.acks}${r.honest.error !== undefined ? `; failed: ${r.honest.error}` : ''}; ${r.honest.findings} finding(s), expected 1`,
    `  health      ${r.health.alive ? `alive${r.crashes.length > 0 ? ` (after ${r.crashes.length} restart(s))` : ''}, /healthz ${r.health.code ?? 'no answer'} ${r.health.status ?? r.health.error ?? ''}` : 'the backend is not running'}`,
    `  rss         idle ${mib(r.rss.idle)}, peak ${mib(r.rss.peak)} (bound ${mib(r.rss.bound)}), after ${mib(r.rss.final)}`,
  ]
  for (const [name, f] of [['unnamed', r.unnamed], ['unanswered', r.unanswered], ['internal', r.internal], ['unchecked', r.invalidAccepted]] as const) {
    for (const e of f.examples.slice(0, 4)) lines.push(`  e.g. ${name}: episode ${e.episode} batch ${e.batch} [${e.labels.join(' | ').slice(0, 240)}] → ${e.answer.slice(0, 240)}`)
  }
  const classes = Object.entries(r.byClass).map(([c, row]) => `    ${c.padEnd(10)} ${kv(row)}`)
  return [...lines, '  by mutation class:', ...classes].join('\n')
}
