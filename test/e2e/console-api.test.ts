import { request, type IncomingMessage } from 'node:http'
import { join } from 'node:path'
import t from 'tap'
import type { FindingDetail, FindingList, HostList, ValidationErrorBody } from '../../backend/console/types.js'
import { rootPath } from '../../shared/paths.js'
import { ALICE, apiFixture, bearer, BOB, findingEvent } from './helpers/console-api.js'

// The console's JSON API through fastify's inject (and, for the event
// stream, a real socket): validation errors name every bad field, cursor
// pagination neither repeats nor skips, triage keeps who and when, the
// stream replays, keeps alive and lets go of clients that leave.

type Fields = ValidationErrorBody['fields']

function fieldNames (fields: Fields): string[] {
  return fields.map(f => `${f.in}:${f.field}`).sort()
}

t.test('GET /api/findings: a 400 names every invalid query parameter', async t => {
  const fx = await apiFixture()
  t.teardown(fx.close)
  const r = await fx.app.inject({ url: '/api/findings?status=new,bogus&limit=0&technique=X1046&since=yesterday&order=random&cursor=not%20base64&colour=red' })
  t.equal(r.statusCode, 400)
  const body = r.json<ValidationErrorBody>()
  t.equal(body.error, 'PICKET_ERR_VALIDATION')
  t.same(fieldNames(body.fields), ['query:colour', 'query:cursor', 'query:limit', 'query:order', 'query:since', 'query:status', 'query:technique'])
  const by = Object.fromEntries(body.fields.map(f => [f.field, f.message]))
  t.match(by.status, /must be one of: new, in_progress, resolved, false_positive/)
  t.match(by.limit, />= 1/)
  t.match(by.technique, /MITRE ATT&CK technique id such as T1046/)
  t.match(by.since, /ms since the epoch, an ISO 8601 date/)
  t.match(by.order, /created, updated, last_seen/)
  t.match(by.colour, /not a known parameter/)
  // the message says it all in one line too, for curl users
  for (const f of ['status', 'limit', 'technique', 'since', 'order', 'colour', 'cursor']) t.match(body.message, f)

  const range = await fx.app.inject({ url: '/api/findings?since=2025-02-30T00:00:00Z&until=1h' })
  t.equal(range.statusCode, 400)
  t.same(fieldNames(range.json<ValidationErrorBody>().fields), ['query:since'], 'a date that does not exist is named')
  const order = await fx.app.inject({ url: '/api/findings?since=5m&until=1h' })
  t.same(order.json<ValidationErrorBody>().fields, [{ field: 'until', in: 'query', message: 'must not be before since' }])
  const cursor = await fx.app.inject({ url: '/api/findings?cursor=abc' })
  t.equal(cursor.statusCode, 400)
  t.same(fieldNames(cursor.json<ValidationErrorBody>().fields), ['query:cursor'])
})

t.test('PATCH /api/findings/:id: a 400 names every invalid field', async t => {
  const fx = await apiFixture()
  t.teardown(fx.close)
  const ev = findingEvent()
  fx.store.applyFindingEvents([ev])
  const url = `/api/findings/${ev.summary.id}`
  const headers = bearer(ALICE)
  const r = await fx.app.inject({ method: 'PATCH', url, payload: { status: 'done', note: 42, by: 'me' }, headers })
  t.equal(r.statusCode, 400)
  const body = r.json<ValidationErrorBody>()
  t.same(fieldNames(body.fields), ['body:by', 'body:note', 'body:status'])
  t.match(body.fields.find(f => f.field === 'status')?.message, /must be one of: new, in_progress, resolved, false_positive/)
  t.match(body.fields.find(f => f.field === 'note')?.message, /must be a string/)
  t.match(body.fields.find(f => f.field === 'by')?.message, /not a known field \(known: status, note\)/)

  const missing = await fx.app.inject({ method: 'PATCH', url, payload: {}, headers })
  t.same(missing.json<ValidationErrorBody>().fields, [{ field: 'status', in: 'body', message: 'is required' }])
  const long = await fx.app.inject({ method: 'PATCH', url, payload: { status: 'resolved', note: 'x'.repeat(2001) }, headers })
  t.same(fieldNames(long.json<ValidationErrorBody>().fields), ['body:note'])
  const notJson = await fx.app.inject({ method: 'PATCH', url, payload: '{"status":', headers: { ...headers, 'content-type': 'application/json' } })
  t.equal(notJson.statusCode, 400)
  t.same(fieldNames(notJson.json<ValidationErrorBody>().fields), ['body:body'])
  const badId = await fx.app.inject({ method: 'PATCH', url: '/api/findings/%3Cscript%3E', payload: { status: 'resolved' }, headers })
  t.equal(badId.statusCode, 400)
  t.same(fieldNames(badId.json<ValidationErrorBody>().fields), ['params:id'])
  t.equal(fx.store.history(ev.summary.id).length, 1, 'nothing invalid reached the history')
})

t.test('404s say PICKET_ERR_NOT_FOUND', async t => {
  const fx = await apiFixture()
  t.teardown(fx.close)
  for (const [method, url] of [['GET', '/api/findings/no-such-id'], ['PATCH', '/api/findings/no-such-id'], ['GET', '/api/hosts/nohost'], ['GET', '/api/nothing/here']] as const) {
    const r = await fx.app.inject({ method, url, ...(method === 'PATCH' ? { payload: { status: 'resolved' }, headers: bearer(ALICE) } : {}) })
    t.equal(r.statusCode, 404, `${method} ${url}`)
    t.equal(r.json().error, 'PICKET_ERR_NOT_FOUND', `${method} ${url}`)
  }
})

t.test('GET /api/findings: cursor pagination returns every finding once, newest first, with filters', async t => {
  const fx = await apiFixture()
  t.teardown(fx.close)
  const base = Date.now() - 3_600_000
  const ids: string[] = []
  for (let i = 0; i < 120; i++) {
    const ev = findingEvent({ host: i % 3 === 0 ? 'db-1' : 'web-1', technique: i % 10 === 0 ? 'T1595' : 'T1046', firstSeen: base + i * 1000 })
    // created_at is the store's clock: one finding per ms, oldest first
    fx.store.applyFindingEvents([ev], base + i)
    ids.push(ev.summary.id)
  }
  const seen: string[] = []
  let cursor: string | undefined
  let pages = 0
  do {
    const r = await fx.app.inject({ url: `/api/findings?limit=50${cursor !== undefined ? `&cursor=${cursor}` : ''}` })
    t.equal(r.statusCode, 200)
    const page = r.json<FindingList>()
    t.equal(page.total, 120)
    t.equal(page.limit, 50)
    seen.push(...page.items.map(f => f.id))
    cursor = page.nextCursor
    pages++
  } while (cursor !== undefined && pages < 10)
  t.equal(pages, 3)
  t.same(seen, [...ids].reverse(), 'every finding once, newest first')

  const first = (await fx.app.inject({ url: '/api/findings?limit=1' })).json<FindingList>().items[0]
  t.equal(first.technique, 'T1046')
  t.equal(first.findingType, 'Port Scan')
  t.equal(first.techniqueName, 'Network Service Discovery')
  t.notOk('finding' in first, 'table rows leave the OCSF document out')

  const db = (await fx.app.inject({ url: '/api/findings?host=db-1&limit=500' })).json<FindingList>()
  t.equal(db.total, 40)
  t.ok(db.items.every(f => f.hostId === 'db-1'))
  const tech = (await fx.app.inject({ url: '/api/findings?technique=T1595' })).json<FindingList>()
  t.equal(tech.total, 12)
  const recent = (await fx.app.inject({ url: `/api/findings?since=${base + 100_000}&until=${new Date(base + 110_500).toISOString()}` })).json<FindingList>()
  t.equal(recent.total, 15, 'since/until in epoch ms and ISO 8601: last seen after since, first seen before until')

  fx.store.setStatus(ids[5], { status: 'resolved', actor: 'bob' })
  fx.store.setStatus(ids[6], { status: 'false_positive', actor: 'bob' })
  const open = (await fx.app.inject({ url: '/api/findings?status=new,in_progress&limit=500' })).json<FindingList>()
  t.equal(open.total, 118)
  const closed = (await fx.app.inject({ url: '/api/findings?status=resolved&status=false_positive' })).json<FindingList>()
  t.same(closed.items.map(f => f.id).sort(), [ids[5], ids[6]].sort(), 'repeated and comma-separated status both work')
})

t.test('GET /api/findings?rule=&technique=: server-side filters by rule and technique, validated; a rule finding\'s detail carries its rule\'s author and references', async t => {
  const fx = await apiFixture()
  t.teardown(fx.close)
  const nmap = '3e102cd9-a70d-4a7a-9508-403963092f31'
  const cron = '6c4e2f43-d94d-4ead-b64d-97e53fa2bd05'
  const sigma = rootPath('backend', 'rules', 'sigmahq', 'rules', 'linux')
  const seeds = [
    findingEvent({ host: 'a' }),
    findingEvent({ host: 'b' }),
    findingEvent({ host: 'a', rule: nmap, dataSource: 'process_activity', ruleFile: { file: join(sigma, 'process_creation', 'proc_creation_lnx_susp_network_utilities_execution.yml'), line: 1 } }),
    findingEvent({ host: 'b', rule: cron, technique: 'T1053.003', dataSource: 'file_activity', ruleFile: { file: join(sigma, 'file_event', 'file_event_lnx_susp_cron_file_created.yml'), line: 1 } }),
    findingEvent({ host: 'c', rule: cron, technique: 'T1053.003', dataSource: 'file_activity', ruleFile: { file: '/nonexistent/rule.yml', line: 1 } }),
    // a Sigma network_connection rule: network records, but one connection of a process, not a scan
    findingEvent({ host: 'c', rule: '83dcd9f6-9ca8-4af7-a16e-a1c7a6b51871', technique: 'T1059', dataSource: 'network_activity', ruleFile: { file: '/nonexistent/net.yml', line: 1, type: 'standalone' } }),
  ]
  fx.store.applyFindingEvents(seeds)
  const ids = (url: string): Promise<string[]> => fx.app.inject({ url }).then(r => r.json<FindingList>().items.map(f => f.id).sort())
  const idOf = (...i: number[]): string[] => i.map(k => seeds[k].summary.id).sort()

  t.same(await ids(`/api/findings?rule=${cron}`), idOf(3, 4), 'by rule: a Sigma rule id')
  t.same(await ids('/api/findings?rule=picket_t1046_port_scan'), idOf(0, 1), 'by rule: a Picket rule name')
  t.same(await ids('/api/findings?technique=T1046'), idOf(0, 1, 2), 'by technique')
  t.same(await ids(`/api/findings?technique=T1046&rule=${nmap}`), idOf(2), 'both together')
  t.same(await ids(`/api/findings?technique=T1053.003&rule=${nmap}`), [], 'both, matching nothing')
  t.same(await ids(`/api/findings?rule=${cron}&host=b`), idOf(3), 'with the other filters')

  const bad = await fx.app.inject({ url: `/api/findings?rule=${encodeURIComponent('<img src=x>')}&technique=t1046.1` })
  t.equal(bad.statusCode, 400)
  const fields = bad.json<ValidationErrorBody>().fields
  t.same(fieldNames(fields), ['query:rule', 'query:technique'])
  t.match(Object.fromEntries(fields.map(f => [f.field, f.message])).rule, /a rule id or name/)
  t.equal((await fx.app.inject({ url: `/api/findings?rule=${'a'.repeat(129)}` })).statusCode, 400, 'a rule longer than 128 characters')
  t.equal((await fx.app.inject({ url: '/api/findings?rule=' })).statusCode, 400, 'an empty rule')

  const rows = (await fx.app.inject({ url: '/api/findings?limit=10' })).json<FindingList>().items
  t.same(Object.fromEntries(rows.map(r => [r.id, r.dataSource])), Object.fromEntries(seeds.map(e => [e.summary.id, (e.finding.finding_info.data_sources ?? [])[0]])), 'each row names its event class')
  t.same(rows.filter(r => r.scan).map(r => r.id).sort(), idOf(0, 1), 'and whether it is a scan (the page shows ports for scans only)')

  const proc = (await fx.app.inject({ url: `/api/findings/${seeds[2].summary.id}` })).json<FindingDetail>()
  t.equal(proc.dataSource, 'process_activity')
  t.match(proc.ruleInfo, { id: nmap, title: 'Linux Network Service Scanning Tools Execution', level: 'low', author: /Alejandro Ortuno/ }, 'the rule as its file states it')
  t.equal(proc.ruleInfo?.references.length, 3, 'with its references')
  t.ok(proc.ruleInfo?.references.every(r => r.startsWith('https://')))
  const gone = (await fx.app.inject({ url: `/api/findings/${seeds[4].summary.id}` })).json<FindingDetail>()
  t.equal(gone.ruleInfo, null, 'a rule file that is gone: no rule info, and no error')
  const scan = (await fx.app.inject({ url: `/api/findings/${seeds[0].summary.id}` })).json<FindingDetail>()
  t.equal(scan.ruleInfo, null, 'a finding that names no rule file')
})

t.test('PATCH /api/findings/:id records who (the token\'s analyst), when and the note, and the OCSF status follows', async t => {
  const fx = await apiFixture()
  t.teardown(fx.close)
  const ev = findingEvent()
  fx.store.applyFindingEvents([ev])
  const url = `/api/findings/${ev.summary.id}`
  const t0 = Date.now()
  const ack = await fx.app.inject({ method: 'PATCH', url, payload: { status: 'in_progress' }, headers: bearer(BOB) })
  t.equal(ack.statusCode, 200)
  const res = await fx.app.inject({ method: 'PATCH', url, payload: { status: 'resolved', note: '  blocked at the edge  ' }, headers: bearer(ALICE) })
  t.equal(res.statusCode, 200)
  const d = res.json<FindingDetail>()
  t.equal(d.status, 'resolved')
  t.equal((d.finding as { status_id: number }).status_id, 4)
  t.match(d.history, [
    { actor: 'picket', from: null, to: 'new' },
    { actor: 'bob', from: 'new', to: 'in_progress', note: '' },
    { actor: 'alice', from: 'in_progress', to: 'resolved', note: 'blocked at the edge' },
  ])
  t.ok(d.history[2].at >= t0 && d.history[2].at <= Date.now())
  const again = (await fx.app.inject({ url })).json<FindingDetail>()
  t.same(again.history, d.history, 'GET returns the same history')
  t.ok(Array.isArray((again.finding as { evidences: unknown[] }).evidences), 'the detail carries the OCSF evidences')
  t.equal(res.headers['cache-control'], 'no-store')
})

t.test('GET /api/hosts: last seen, rate, drops by cause, stale', async t => {
  const fx = await apiFixture({ console: { staleAfterMs: 60_000 } })
  t.teardown(fx.close)
  const now = Date.now()
  fx.store.recordHosts([
    { hostId: 'web-1', hostname: 'web-1.prod', agentVersion: '0.1.0', lastSeen: now, records: 500, batches: 5, bytes: 100_000, recordsPerSec: 50, capturedTotal: 520, drops: { kernel_reserve: 12, spool_eviction: 3 }, refusedBatches: 1, duplicateBatches: 0 },
    { hostId: 'db-1', lastSeen: now - 10 * 60_000, records: 10, batches: 1, bytes: 1000, recordsPerSec: 0, refusedBatches: 0, duplicateBatches: 0 },
  ])
  const r = await fx.app.inject({ url: '/api/hosts' })
  t.equal(r.statusCode, 200)
  const list = r.json<HostList>()
  t.equal(list.staleAfterMs, 60_000)
  const web = list.items.find(h => h.hostId === 'web-1')
  const db = list.items.find(h => h.hostId === 'db-1')
  t.match(web, { hostname: 'web-1.prod', recordsPerSec: 50, stale: false, dropsTotal: 15, refusedBatches: 1, drops: { kernel_reserve: 12, kernel_recursion: 0, slab_starvation: 0, spool_eviction: 3, decode_error: 0, refused: 0 } })
  t.match(db, { stale: true, dropsTotal: 0 })
  t.match((await fx.app.inject({ url: '/api/hosts/web-1' })).json(), { hostId: 'web-1', stale: false })
})

t.test('security headers, the DNS-rebinding guard, and the access token', async t => {
  const fx = await apiFixture()
  t.teardown(fx.close)
  const r = await fx.app.inject({ url: '/api/findings' })
  const csp = String(r.headers['content-security-policy'])
  t.match(csp, "script-src 'self'")
  t.match(csp, "frame-ancestors 'none'")
  t.match(csp, "require-trusted-types-for 'script'")
  t.notMatch(csp, /unsafe-inline|unsafe-eval|https?:/, 'no inline script, no eval, no remote origin')
  t.equal(r.headers['x-content-type-options'], 'nosniff')
  t.equal(r.headers['referrer-policy'], 'no-referrer')
  const health = await fx.app.inject({ url: '/healthz' })
  t.equal(health.statusCode, 200, '/healthz still answers')
  t.equal(health.headers['x-content-type-options'], 'nosniff')

  const rebound = await fx.app.inject({ url: '/api/findings', headers: { host: 'attacker.example:8080' } })
  t.equal(rebound.statusCode, 403, 'a DNS name in Host is refused when there is no token')
  t.equal(rebound.json().error, 'PICKET_ERR_CONSOLE_TOKEN')
  for (const host of ['127.0.0.1:8080', 'localhost:8080', '[::1]:8080', '10.1.2.3']) {
    t.equal((await fx.app.inject({ url: '/api/findings', headers: { host } })).statusCode, 200, host)
  }

  const tok = await apiFixture({ anonymousReads: false })
  t.teardown(tok.close)
  t.equal((await tok.app.inject({ url: '/api/findings' })).statusCode, 401)
  t.equal((await tok.app.inject({ url: '/api/findings', headers: { authorization: 'Bearer wrong' } })).statusCode, 401)
  t.equal((await tok.app.inject({ url: '/api/findings', headers: bearer(ALICE) })).statusCode, 200)
  t.equal((await tok.app.inject({ url: `/api/findings?access_token=${ALICE}` })).statusCode, 200, 'the token in the query (EventSource)')
  t.equal((await tok.app.inject({ url: '/api/findings', headers: { host: 'picket.example.org', ...bearer(ALICE) } })).statusCode, 200, 'with a token, a host name is fine')
  t.equal((await fx.app.inject({ url: '/api/findings', headers: { host: 'picket.example.org', authorization: 'Bearer wrong' } })).statusCode, 401, 'a wrong token is refused, never read as no token')
})

t.test('GET / without a built page says how to build it', async t => {
  const fx = await apiFixture({ console: { pageDir: '/nonexistent/picket-console' } })
  t.teardown(fx.close)
  const r = await fx.app.inject({ url: '/' })
  t.equal(r.statusCode, 503)
  t.match(r.body, 'npm run build')
  t.equal((await fx.app.inject({ url: '/api/findings' })).statusCode, 200, 'the API works without the page')
})

interface Sse { res: IncomingMessage, text: () => string, events: () => Array<{ event: string, id?: string, data: unknown }>, close: () => void }

async function openStream (port: number, path: string, headers: Record<string, string> = {}): Promise<Sse> {
  return await new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      let buf = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { buf += d })
      res.on('error', () => {})
      resolve({
        res,
        text: () => buf,
        events: () => buf.split('\n\n').filter(b => /^(id|event): /m.test(b)).map(b => {
          const ev = /^event: (.*)$/m.exec(b)?.[1] ?? 'message'
          const id = /^id: (.*)$/m.exec(b)?.[1]
          const data = /^data: (.*)$/m.exec(b)?.[1]
          return { event: ev, ...(id !== undefined ? { id } : {}), data: data !== undefined ? JSON.parse(data) : undefined }
        }),
        close: () => { req.destroy() },
      })
    })
    req.on('error', reject)
    req.end()
  })
}

async function until (f: () => boolean, ms = 3000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

t.test('GET /api/stream: events, keep-alives, replay from Last-Event-ID, clients let go on disconnect', async t => {
  const fx = await apiFixture({ console: { keepAliveMs: 100, maxAnonymousStreams: 2, staleAfterMs: 60_000 } })
  await fx.app.listen({ host: '127.0.0.1', port: 0 })
  const port = (fx.app.server.address() as { port: number }).port
  let closed = false
  t.teardown(async () => { if (!closed) await fx.close() })

  const a = await openStream(port, '/api/stream')
  t.equal(a.res.statusCode, 200)
  t.match(a.res.headers['content-type'], 'text/event-stream')
  t.match(String(a.res.headers['content-security-policy']), "default-src 'none'")
  await until(() => a.events().some(e => e.event === 'hello'), 2000, 'hello')
  t.match(a.events()[0], { event: 'hello', data: { staleAfterMs: 60_000, keepAliveMs: 100, analyst: null } })

  const ev = findingEvent({ hostname: 'evil\n\nevent: finding\ndata: {"forged":true}' })
  fx.store.applyFindingEvents([ev])
  fx.store.setStatus(ev.summary.id, { status: 'in_progress', actor: 'carol' })
  fx.store.recordHosts([{ hostId: 'web-1', lastSeen: Date.now(), records: 1, batches: 1, bytes: 10, recordsPerSec: 1, refusedBatches: 0, duplicateBatches: 0 }])
  await until(() => a.events().filter(e => e.event === 'finding').length >= 2 && a.events().some(e => e.event === 'hosts'), 2000, 'finding and hosts events')
  const findings = a.events().filter(e => e.event === 'finding')
  t.match(findings.map(e => e.data), [{ kind: 'created', finding: { id: ev.summary.id, status: 'new' } }, { kind: 'triaged', finding: { id: ev.summary.id, status: 'in_progress' } }])
  t.ok(findings.every(e => e.id !== undefined && Number(e.id) > 0), 'finding events carry their changeSeq as id')
  t.notOk(a.events().some(e => (e.data as { forged?: boolean } | undefined)?.forged === true), 'a newline in a hostname cannot forge an event')
  t.equal((findings[0].data as { finding: { hostname: string } }).finding.hostname, ev.finding.device?.hostname, 'the hostname arrives intact, as data')
  t.match(a.events().find(e => e.event === 'hosts')?.data, { items: [{ hostId: 'web-1', stale: false }] })
  await until(() => a.events().filter(e => e.event === 'ping').length >= 2, 2000, 'keep-alives')

  // a reconnecting browser sends Last-Event-ID: it gets what changed after it
  const firstId = findings[0].id as string
  const b = await openStream(port, '/api/stream', { 'last-event-id': firstId })
  await until(() => b.events().some(e => e.event === 'finding'), 2000, 'replay')
  t.match(b.events().filter(e => e.event === 'finding').map(e => e.data), [{ kind: 'replay', finding: { status: 'in_progress' } }], 'only the change after Last-Event-ID')

  // both slots taken: a third is refused; once a client leaves its slot is free again
  const c = await openStream(port, '/api/stream')
  t.equal(c.res.statusCode, 503, 'maxAnonymousStreams reached')
  c.close()
  a.close()
  b.close()
  let d: Sse | undefined
  for (let i = 0; i < 20 && d?.res.statusCode !== 200; i++) {
    d?.close()
    d = await openStream(port, '/api/stream')
    if (d.res.statusCode !== 200) await new Promise(resolve => setTimeout(resolve, 50))
  }
  t.equal(d?.res.statusCode, 200, 'disconnected clients were let go')
  t.equal(fx.store.listenerCount('finding'), 1, 'one store listener, however many clients')

  // an open stream does not hold up shutdown
  const t0 = Date.now()
  await fx.close()
  closed = true
  t.ok(Date.now() - t0 < 2000, `closed in ${Date.now() - t0} ms with a stream open`)
  t.equal(fx.store.listenerCount('finding'), 0, 'the store listener is removed on close')
})
