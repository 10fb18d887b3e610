import type { TriageStatus } from '../../../../shared/enums.js'
import type { ErrorBody, FindingDetail, FindingList, HostList, ValidationErrorBody } from '../../types.js'

// The page's side of the JSON API. The access token comes from the page's
// own URL, ?access_token=, which is how the page was opened; fetch sends it
// as a Bearer header, the event stream (which cannot set headers) in the
// query. The token also says who the analyst is: the backend records triage
// under its name, so the page sends no name of its own.

const token = new URLSearchParams(location.search).get('access_token') ?? undefined

export function accessToken (): string | undefined {
  return token !== '' ? token : undefined
}

export class ApiError extends Error {
  readonly status: number
  readonly code: string
  readonly fields: ValidationErrorBody['fields']
  constructor (status: number, body: { error?: string, message?: string, fields?: ValidationErrorBody['fields'] }) {
    super(body.message ?? `HTTP ${status}`)
    this.status = status
    this.code = body.error ?? `HTTP_${status}`
    this.fields = body.fields ?? []
  }
}

async function call<T> (method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' }
  const t = accessToken()
  if (t !== undefined) headers.authorization = `Bearer ${t}`
  if (body !== undefined) headers['content-type'] = 'application/json'
  let res: Response
  try {
    res = await fetch(path, { method, headers, body: body !== undefined ? JSON.stringify(body) : null, cache: 'no-store', credentials: 'same-origin' })
  } catch (err) {
    throw new ApiError(0, { message: `the backend is unreachable (${(err as Error).message})` })
  }
  const text = await res.text()
  let json: unknown
  try { json = text === '' ? {} : JSON.parse(text) } catch { json = { message: text.slice(0, 200) } }
  if (!res.ok) throw new ApiError(res.status, json as Partial<ErrorBody> & { fields?: ValidationErrorBody['fields'] })
  return json as T
}

export interface FindingFilters {
  status?: string
  host?: string
  technique?: string
  rule?: string
  since?: string
}

export async function listFindings (f: FindingFilters, cursor?: string, limit = 50): Promise<FindingList> {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(f)) if (typeof v === 'string' && v !== '') q.set(k, v)
  q.set('limit', String(limit))
  if (cursor !== undefined) q.set('cursor', cursor)
  return await call<FindingList>('GET', `/api/findings?${q.toString()}`)
}

export async function getFinding (id: string): Promise<FindingDetail> {
  return await call<FindingDetail>('GET', `/api/findings/${encodeURIComponent(id)}`)
}

export async function triage (id: string, status: TriageStatus, note: string): Promise<FindingDetail> {
  return await call<FindingDetail>('PATCH', `/api/findings/${encodeURIComponent(id)}`, { status, note })
}

export async function listHosts (cursor?: string, limit = 500): Promise<HostList> {
  const q = new URLSearchParams({ limit: String(limit) })
  if (cursor !== undefined) q.set('cursor', cursor)
  return await call<HostList>('GET', `/api/hosts?${q.toString()}`)
}

export function streamUrl (since: number | undefined): string {
  const q = new URLSearchParams()
  if (since !== undefined && since > 0) q.set('since', String(since))
  const t = accessToken()
  if (t !== undefined) q.set('access_token', t)
  const s = q.toString()
  return '/api/stream' + (s !== '' ? `?${s}` : '')
}
