import type { StreamFinding, StreamHello, StreamHosts, StreamPing, StreamResync } from '../../types.js'
import { streamUrl } from './api.js'
import { setServerTime } from './format.js'

// The live connection: one EventSource on /api/stream. The browser resumes
// by itself after a dropped connection (it sends Last-Event-ID, the last
// finding's changeSeq). When the server refuses the stream (EventSource then
// gives up for good) or goes quiet past two keep-alives, we open a new one
// from the newest changeSeq we know.

export type LiveState = 'connecting' | 'live' | 'down'

export interface LiveHandlers {
  hello: (m: StreamHello) => void
  finding: (ev: StreamFinding) => void
  hosts: (ev: StreamHosts) => void
  resync: (ev: StreamResync) => void
  state: (s: LiveState, detail: string) => void
}

function parse<T> (e: Event): T | undefined {
  try { return JSON.parse((e as MessageEvent<string>).data) as T } catch { return undefined }
}

export class Live {
  readonly #h: LiveHandlers
  #es: EventSource | undefined
  #seq = 0
  #lastEventAt = 0
  #keepAliveMs = 15_000
  #retryMs = 1000
  #timer: number | undefined
  #watchdog: number | undefined

  constructor (h: LiveHandlers) {
    this.#h = h
  }

  /** The newest changeSeq the page has seen (lists and events): where a new stream resumes. */
  noteSeq (n: number): void {
    if (n > this.#seq) this.#seq = n
  }

  start (): void {
    this.#open()
    this.#watchdog = window.setInterval(() => {
      if (this.#es?.readyState === EventSource.OPEN && Date.now() - this.#lastEventAt > this.#keepAliveMs * 2.5) {
        this.#h.state('connecting', 'no keep-alive from the backend; reconnecting')
        this.#reopen(0)
      }
    }, 5000)
  }

  #open (): void {
    this.#h.state('connecting', 'connecting to the live stream')
    const es = new EventSource(streamUrl(this.#seq))
    this.#es = es
    const seen = (): void => { this.#lastEventAt = Date.now() }
    es.addEventListener('hello', (e) => {
      seen()
      const m = parse<StreamHello>(e)
      if (m === undefined) return
      setServerTime(m.serverTime)
      this.#keepAliveMs = m.keepAliveMs
      this.#retryMs = 1000
      this.#h.state('live', 'receiving findings and host health as they happen')
      this.#h.hello(m)
    })
    es.addEventListener('ping', (e) => {
      seen()
      const m = parse<StreamPing>(e)
      if (m !== undefined) setServerTime(m.serverTime)
    })
    es.addEventListener('finding', (e) => {
      seen()
      const m = parse<StreamFinding>(e)
      if (m === undefined) return
      this.noteSeq(m.finding.changeSeq)
      this.#h.finding(m)
    })
    es.addEventListener('hosts', (e) => {
      seen()
      const m = parse<StreamHosts>(e)
      if (m === undefined) return
      setServerTime(m.serverTime)
      this.#h.hosts(m)
    })
    es.addEventListener('resync', (e) => {
      seen()
      const m = parse<StreamResync>(e)
      if (m !== undefined) this.#h.resync(m)
    })
    es.addEventListener('error', () => {
      if (es !== this.#es) return
      if (es.readyState === EventSource.CLOSED) {
        this.#h.state('down', `live stream refused or lost; retrying in ${Math.round(this.#retryMs / 1000)} s`)
        this.#reopen(this.#retryMs)
        this.#retryMs = Math.min(30_000, this.#retryMs * 2)
      } else {
        this.#h.state('connecting', 'live stream interrupted; reconnecting')
      }
    })
  }

  #reopen (afterMs: number): void {
    this.#es?.close()
    this.#es = undefined
    if (this.#timer !== undefined) window.clearTimeout(this.#timer)
    this.#timer = window.setTimeout(() => { this.#timer = undefined; this.#open() }, afterMs)
  }

  stop (): void {
    this.#es?.close()
    if (this.#timer !== undefined) window.clearTimeout(this.#timer)
    if (this.#watchdog !== undefined) window.clearInterval(this.#watchdog)
  }
}
