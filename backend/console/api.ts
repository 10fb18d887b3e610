import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { FindingState, TriageStatus } from '../../shared/enums.js'
import { isPicketError } from '../../shared/errors.js'
import type { BackendContext } from '../http.js'
import { LogLimiter } from '../log-limit.js'
import type { FindingOrder, FindingQuery } from '../store/index.js'
import { FINDINGS_QUERY, HOSTS_QUERY, ID_PARAMS, PATCH_BODY, STREAM_HEADERS, STREAM_QUERY, TOKEN_QUERY } from './schemas.js'
import type { StreamHub } from './stream.js'
import type { ErrorBody, FindingDetail, FindingList, HostList, HostView, ValidationErrorBody } from './types.js'
import { ConsoleValidator, validationBody, type Part } from './validation.js'
import { findingDetail, findingRow, hostView } from './views.js'

// The console's JSON API, mounted under /api:
//   GET   /api/findings       filters + cursor pagination
//   GET   /api/findings/:id   the full OCSF finding and its triage history
//   PATCH /api/findings/:id   { status, note? }: who (the access token's analyst) and when go into the history
//   GET   /api/hosts          agent health: last seen, rate, drops by cause, stale; limit + cursor pagination
//   GET   /api/hosts/:id
//   GET   /api/stream         Server-Sent Events (stream.ts)

export interface ApiOptions {
  staleAfterMs: number
  hub: StreamHub
}

interface FindingsQuery {
  status?: TriageStatus[]
  state?: FindingState
  host?: string
  source?: string
  technique?: string
  rule?: string
  since?: string
  until?: string
  q?: string
  order: FindingOrder
  limit: number
  cursor?: string
}

const DURATION_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }

/** A time as FINDINGS_QUERY's pattern admits it → ms since the epoch, or undefined when it names no real time. */
export function parseTime (s: string, now: number): number | undefined {
  if (s === 'now') return now
  if (/^[0-9]+$/.test(s)) return Number(s)
  const d = /^([0-9]+)([smhdw])$/.exec(s)
  if (d !== null) return now - Number(d[1]) * DURATION_MS[d[2]]
  const iso = s.replace(' ', 'T')
  // Date.parse rolls 2025-02-30 over into March; a filter on a day that does not exist is a mistake to report
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2}))?)?/.exec(iso)
  if (m === null) return undefined
  const [y, mo, day, hh = '0', mm = '0', ss = '0'] = m.slice(1).map(x => x ?? undefined) as string[]
  const check = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(day)))
  if (check.getUTCMonth() !== Number(mo) - 1 || check.getUTCDate() !== Number(day) || Number(hh) > 23 || Number(mm) > 59 || Number(ss) > 59) return undefined
  // a date-time without a zone is UTC here, as every time the console shows is
  const withZone = /T/.test(iso) && !/(Z|[+-][0-9]{2}:?[0-9]{2})$/.test(iso) ? iso + 'Z' : iso
  const t = Date.parse(withZone)
  return Number.isFinite(t) ? t : undefined
}

function badRequest (reply: FastifyReply, fields: ValidationErrorBody['fields']): FastifyReply {
  return reply.code(400).send(validationBody(fields))
}

/** A store page, or undefined when the cursor is not one this API returned. */
function pageOrBadCursor<P> (read: () => P): P | undefined {
  try {
    return read()
  } catch (err) {
    if (isPicketError(err, 'PICKET_ERR_VALIDATION') && /cursor/.test(err.message)) return undefined
    throw err
  }
}

async function badCursor (reply: FastifyReply): Promise<FastifyReply> {
  return await badRequest(reply, [{ field: 'cursor', in: 'query', message: 'is not a cursor this API returned (it belongs to other filters or is damaged); start again without it' }])
}

function notFound (reply: FastifyReply, message: string): FastifyReply {
  const body: ErrorBody = { error: 'PICKET_ERR_NOT_FOUND', message }
  return reply.code(404).send(body)
}

export async function registerApi (api: FastifyInstance, ctx: BackendContext, o: ApiOptions): Promise<void> {
  const { store } = ctx
  const validator = new ConsoleValidator()
  api.setValidatorCompiler(validator.compiler)
  // a failing store fails every request: one line per 10 s says so, with the count
  const failures = new LogLimiter(ctx.logger.child({ component: 'console-api' }))
  api.addHook('onClose', async () => { failures.flush() })

  api.addHook('onSend', async (_req, reply, payload) => {
    if (!reply.hasHeader('cache-control')) void reply.header('cache-control', 'no-store')
    return payload
  })

  api.setErrorHandler(async (err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    if (err.validation !== undefined) {
      const part = (err.validationContext ?? 'body') as Part
      return await badRequest(reply, validator.fieldsOf(req, { part, errors: err.validation as never }))
    }
    if (isPicketError(err, 'PICKET_ERR_NOT_FOUND')) return await notFound(reply, err.message)
    if (isPicketError(err, 'PICKET_ERR_VALIDATION')) {
      const field = /^(\w+)/.exec(err.message)?.[1] ?? 'request'
      return await badRequest(reply, [{ field, in: 'query', message: err.message.replace(/^\w+\s+/, '') }])
    }
    if (typeof err.code === 'string' && err.code.startsWith('FST_ERR_CTP_') && (err.statusCode ?? 500) < 500) {
      // body parsing: not JSON, empty, wrong content type, too large
      if (err.statusCode === 400) return await badRequest(reply, [{ field: 'body', in: 'body', message: err.message }])
      return await reply.code(err.statusCode ?? 400).send({ error: err.code, message: err.message } satisfies ErrorBody)
    }
    if (isPicketError(err)) {
      failures.error(err.code, { err, path: req.routeOptions.url }, 'console API request failed')
      return await reply.code(503).send({ error: err.code, message: err.message } satisfies ErrorBody)
    }
    if ((err.statusCode ?? 500) < 500) return await reply.code(err.statusCode ?? 400).send({ error: err.code ?? 'Bad Request', message: err.message } satisfies ErrorBody)
    failures.error('internal', { err, path: req.routeOptions.url }, 'console API request failed')
    return await reply.code(500).send({ error: 'Internal Server Error', message: 'the request failed inside the backend; the backend log has the details' } satisfies ErrorBody)
  })

  api.setNotFoundHandler(async (req, reply) => {
    return await notFound(reply, `no API route ${req.method} ${req.url.split('?')[0]}; the routes are GET /api/findings, GET|PATCH /api/findings/:id, GET /api/hosts, GET /api/hosts/:id, GET /api/stream`)
  })

  // ?status=new,in_progress is the same as ?status=new&status=in_progress
  api.addHook('preValidation', async (req) => {
    const q = req.query as Record<string, unknown> | undefined
    if (q === undefined || q.status === undefined) return
    const list = (Array.isArray(q.status) ? q.status : [q.status]).flatMap(s => String(s).split(',')).map(s => s.trim()).filter(s => s !== '')
    q.status = list
  })

  api.get<{ Querystring: FindingsQuery }>('/findings', { schema: { querystring: FINDINGS_QUERY } }, async (req, reply) => {
    const q = req.query
    const now = Date.now()
    const fields: ValidationErrorBody['fields'] = []
    const since = q.since !== undefined ? parseTime(q.since, now) : undefined
    const until = q.until !== undefined ? parseTime(q.until, now) : undefined
    if (q.since !== undefined && since === undefined) fields.push({ field: 'since', in: 'query', message: 'is not a real date' })
    if (q.until !== undefined && until === undefined) fields.push({ field: 'until', in: 'query', message: 'is not a real date' })
    if (since !== undefined && until !== undefined && until < since) fields.push({ field: 'until', in: 'query', message: 'must not be before since' })
    if (fields.length > 0) return await badRequest(reply, fields)
    const query: FindingQuery = {
      order: q.order,
      limit: q.limit,
      ...(q.status !== undefined && q.status.length > 0 ? { status: q.status } : {}),
      ...(q.state !== undefined ? { state: q.state } : {}),
      ...(q.host !== undefined ? { host: q.host } : {}),
      ...(q.source !== undefined ? { source: q.source } : {}),
      ...(q.technique !== undefined ? { technique: q.technique } : {}),
      ...(q.rule !== undefined ? { rule: q.rule } : {}),
      ...(since !== undefined ? { since } : {}),
      ...(until !== undefined ? { until } : {}),
      ...(q.q !== undefined ? { q: q.q } : {}),
      ...(q.cursor !== undefined && q.cursor !== '' ? { cursor: q.cursor } : {}),
    }
    const page = pageOrBadCursor(() => store.listFindings(query))
    if (page === undefined) return await badCursor(reply)
    const body: FindingList = { items: page.items.map(findingRow), total: page.total, limit: q.limit, ...(page.nextCursor !== undefined ? { nextCursor: page.nextCursor } : {}) }
    return body
  })

  api.get<{ Params: { id: string }, Querystring: Record<string, string> }>('/findings/:id', { schema: { params: ID_PARAMS, querystring: TOKEN_QUERY } }, async (req, reply) => {
    const f = store.getFinding(req.params.id)
    if (f === undefined) return await notFound(reply, `no finding has id ${req.params.id}`)
    const body: FindingDetail = findingDetail(f, store.history(f.id))
    return body
  })

  api.patch<{ Params: { id: string }, Body: { status: TriageStatus, note?: string } }>('/findings/:id', {
    schema: { params: ID_PARAMS, querystring: TOKEN_QUERY, body: PATCH_BODY },
  }, async (req, reply) => {
    // who comes from the credential alone (a header would let anyone write any
    // name); the access check lets no change without a token get this far
    const actor = req.analyst
    if (actor === null) return await reply.code(401).send({ error: 'PICKET_ERR_CONSOLE_TOKEN', message: 'changing a finding needs an access token' } satisfies ErrorBody)
    const f = store.setStatus(req.params.id, { status: req.body.status, actor, note: req.body.note?.trim() ?? '' })
    req.log.info({ finding: f.id, status: f.status, actor }, 'finding triaged')
    const body: FindingDetail = findingDetail(f, store.history(f.id))
    return body
  })

  api.get<{ Querystring: { limit: number, cursor?: string } }>('/hosts', { schema: { querystring: HOSTS_QUERY } }, async (req, reply) => {
    const q = req.query
    const now = Date.now()
    const page = pageOrBadCursor(() => store.listHosts({ limit: q.limit, staleBefore: now - o.staleAfterMs, ...(q.cursor !== undefined && q.cursor !== '' ? { cursor: q.cursor } : {}) }))
    if (page === undefined) return await badCursor(reply)
    const body: HostList = {
      items: page.items.map(h => hostView(h, now, o.staleAfterMs)),
      total: page.total,
      stale: page.stale ?? 0,
      limit: q.limit,
      ...(page.nextCursor !== undefined ? { nextCursor: page.nextCursor } : {}),
      serverTime: now,
      staleAfterMs: o.staleAfterMs,
    }
    return body
  })

  api.get<{ Params: { id: string }, Querystring: Record<string, string> }>('/hosts/:id', {
    schema: { params: { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 256 } } }, querystring: TOKEN_QUERY },
  }, async (req, reply) => {
    const h = store.getHost(req.params.id)
    if (h === undefined) return await notFound(reply, `no host has id ${req.params.id}; hosts appear once their agent ships a batch`)
    const body: HostView = hostView(h, Date.now(), o.staleAfterMs)
    return body
  })

  api.get<{ Querystring: { since?: number }, Headers: { 'last-event-id'?: string } }>('/stream', {
    schema: { querystring: STREAM_QUERY, headers: STREAM_HEADERS },
  }, async (req, reply) => { await o.hub.handle(req, reply) })
}
