import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ServerResponse } from 'node:http'
import type { Logger } from '../../shared/logger.js'
import { LogLimiter } from '../log-limit.js'
import type { AlertStore, FindingChange, HostRow } from '../store/index.js'
import { SECURITY_HEADERS } from './security.js'
import type { StreamFinding, StreamHello, StreamHosts, StreamPing, StreamResync } from './types.js'
import { findingRow, hostView } from './views.js'

// GET /api/stream: Server-Sent Events. One listener on the store fans out to
// every client, so a hundred open consoles cost one listener, not two hundred.
// Finding events carry `id: <changeSeq>`: a browser that reconnects sends it
// back as Last-Event-ID and gets what it missed from the store. A client
// that cannot keep up (its socket buffer grows past maxBufferedBytes) is cut
// off; it reconnects and catches up the same way, so nothing is lost and a
// slow reader never holds memory hostage. Streams without an access token
// have a cap of their own, so anyone who can reach a loopback console cannot
// take the analysts' streams.

export interface StreamOptions {
  keepAliveMs: number
  staleAfterMs: number
  maxClients: { authorised: number, anonymous: number }
  maxBufferedBytes: number
  /** findings replayed on reconnect before the client is told to resync */
  replayLimit: number
}

interface Client { res: ServerResponse, id: number, authorised: boolean }

function frame (event: string, data: unknown, id?: number): string {
  // JSON.stringify escapes CR and LF, so attacker strings cannot end the data line
  return `${id !== undefined ? `id: ${id}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`
}

export class StreamHub {
  readonly #store: AlertStore
  readonly #o: StreamOptions
  readonly #log: LogLimiter
  readonly #clients = new Set<Client>()
  #anonymous = 0
  #nextId = 1
  #timer: NodeJS.Timeout | undefined
  #closed = false

  readonly #onFinding = (c: FindingChange): void => {
    const msg: StreamFinding = { kind: c.kind, finding: findingRow(c.finding) }
    this.#broadcast(frame('finding', msg, c.finding.changeSeq))
  }

  readonly #onHosts = (rows: HostRow[]): void => {
    const now = Date.now()
    const msg: StreamHosts = { serverTime: now, items: rows.map(r => hostView(r, now, this.#o.staleAfterMs)) }
    this.#broadcast(frame('hosts', msg))
  }

  constructor (store: AlertStore, opts: StreamOptions, log: Logger) {
    this.#store = store
    this.#o = opts
    this.#log = new LogLimiter(log)
  }

  get clients (): number { return this.#clients.size }

  start (): void {
    this.#store.on('finding', this.#onFinding)
    this.#store.on('hosts', this.#onHosts)
    this.#timer = setInterval(() => {
      const ping: StreamPing = { serverTime: Date.now() }
      this.#broadcast(frame('ping', ping))
    }, this.#o.keepAliveMs)
    this.#timer.unref()
  }

  /** End every stream (before the server closes: open streams would keep it waiting). */
  close (): void {
    if (this.#closed) return
    this.#closed = true
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#store.off('finding', this.#onFinding)
    this.#store.off('hosts', this.#onHosts)
    for (const c of this.#clients) c.res.end()
    this.#clients.clear()
    this.#anonymous = 0
    this.#log.flush()
  }

  #drop (c: Client): void {
    if (this.#clients.delete(c) && !c.authorised) this.#anonymous--
  }

  #write (c: Client, text: string): void {
    const res = c.res
    if (res.destroyed || res.writableEnded) { this.#drop(c); return }
    res.write(text)
    if (res.writableLength > this.#o.maxBufferedBytes) {
      this.#log.warn('slow', { client: c.id, buffered: res.writableLength }, 'console stream client too slow; disconnecting it (it resumes from its last event id)')
      this.#drop(c)
      res.destroy()
    }
  }

  #broadcast (text: string): void {
    for (const c of this.#clients) this.#write(c, text)
  }

  async handle (req: FastifyRequest<{ Querystring: { since?: number }, Headers: { 'last-event-id'?: string } }>, reply: FastifyReply): Promise<void> {
    const authorised = req.analyst !== null
    const { authorised: maxAuthorised, anonymous: maxAnonymous } = this.#o.maxClients
    const full = authorised ? this.#clients.size - this.#anonymous >= maxAuthorised : this.#anonymous >= maxAnonymous
    if (this.#closed || full) {
      const message = authorised
        ? `the console already serves ${maxAuthorised} live streams with an access token; close some console tabs`
        : `the console already serves ${maxAnonymous} live streams without an access token; close some console tabs, or open the console with its access token (?access_token=<token>)`
      this.#log.warn(authorised ? 'full' : 'full-anonymous', { authorised, streams: this.#clients.size }, 'console stream refused: too many open')
      await reply.code(503).header('retry-after', '10').send({ error: 'PICKET_ERR_LIMIT', message })
      return
    }
    const lastHeader = req.headers['last-event-id']
    const since = lastHeader !== undefined && lastHeader !== '' ? Number(lastHeader) : req.query.since
    reply.hijack()
    const res = reply.raw
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    })
    req.socket.setNoDelay(true)
    req.socket.setKeepAlive(true)
    const c: Client = { res, id: this.#nextId++, authorised }
    const hello: StreamHello = { serverTime: Date.now(), staleAfterMs: this.#o.staleAfterMs, keepAliveMs: this.#o.keepAliveMs, analyst: req.analyst }
    res.write(`retry: 2000\n\n${frame('hello', hello)}`)
    if (since !== undefined && Number.isFinite(since)) {
      // synchronous from here to add(): no store event can slip in between
      const missed = this.#store.changesSince(since, this.#o.replayLimit)
      for (const f of missed) res.write(frame('finding', { kind: 'replay', finding: findingRow(f) } satisfies StreamFinding, f.changeSeq))
      if (missed.length >= this.#o.replayLimit) {
        res.write(frame('resync', { reason: `more than ${this.#o.replayLimit} findings changed while disconnected` } satisfies StreamResync))
      }
    }
    this.#clients.add(c)
    if (!authorised) this.#anonymous++
    const drop = (): void => { this.#drop(c) }
    res.on('close', drop)
    res.on('error', drop)
    req.raw.on('close', drop)
  }
}
