import t from 'tap'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import pino from 'pino'
import { LogLimiter } from '../../backend/log-limit.js'
import { startBackend } from '../../backend/server.js'
import { packRecords } from '../../shared/codec.js'
import { AgentStream, connectCollector } from '../../scripts/injector/index.js'
import { httpRequest } from '../helpers/http.js'
import { probeRecord, tempDir } from './helpers/records.js'

// Defect 17 of issue 11: every refused batch logged a line of its own, so
// a client that sends bad batches as fast as it can fills the disk and
// buries every other line. The counters count each one; the log says what
// and how often.

type Line = Record<string, unknown>

function capture (level = 'warn'): { logger: pino.Logger, lines: () => Line[] } {
  const chunks: string[] = []
  const stream = new Writable({ write (c: Buffer, _e, cb) { chunks.push(c.toString()); cb() } })
  return { logger: pino({ level }, stream), lines: () => chunks.join('').split('\n').filter(l => l !== '').map(l => JSON.parse(l) as Line) }
}

/** Every event is in some line: the line itself, plus the ones it says were held back. */
function accounted (lines: Line[]): number {
  return lines.reduce((n, l) => n + 1 + Number(l.suppressed), 0)
}

t.test('1,000 refused batches make a handful of log lines, each carrying how many were suppressed (defect 17)', async t => {
  const tmp = tempDir('picket-flood-')
  t.teardown(tmp.cleanup)
  const cap = capture()
  const b = await startBackend({ listen: '127.0.0.1:0', http: false, db: join(tmp.dir, 'p.db'), workers: 1, console: false, limits: { maxRecords: 10 }, logger: cap.logger })
  let closed = false
  t.teardown(async () => { if (!closed) await b.close() })
  const client = connectCollector(b.collector.address)
  t.teardown(() => { client.close() })
  const host = 'flood-17'
  const recs = packRecords(Array.from({ length: 11 }, (_, i) => probeRecord(host, { t: Date.now(), src: '198.51.100.17', port: 2000 + i })))
  const s = new AgentStream(client, host)
  let refused = 0
  for (let seq = 1; seq <= 1000; seq += 50) {
    const acks = await Promise.all(Array.from({ length: 50 }, (_, i) => s.sendRaw({ host_id: host, seq: seq + i, count: 11, records: recs, hostname: host, agent_version: 'test' })))
    refused += acks.filter(a => a.status === 'REFUSED').length
  }
  await s.end()
  t.equal(refused, 1000, 'every batch refused')
  await b.close()
  closed = true
  const lines = cap.lines().filter(l => l.limit !== undefined)
  t.ok(lines.length >= 1 && lines.length <= 5, `${lines.length} lines for 1,000 refusals`)
  t.ok(lines.every(l => typeof l.suppressed === 'number'), 'each line carries the suppressed count')
  t.equal(accounted(lines), 1000, 'and together they account for every refusal')
})

t.test('refused HTTP requests are logged once per reason per interval, with counts', async t => {
  const tmp = tempDir('picket-flood-')
  t.teardown(tmp.cleanup)
  const cap = capture()
  const b = await startBackend({ listen: '127.0.0.1:0', http: '127.0.0.1:0', db: join(tmp.dir, 'p.db'), workers: 1, console: false, logger: cap.logger })
  const url = b.http?.url ?? ''
  for (let i = 0; i < 200; i++) t.equal((await httpRequest(url, '/metrics', { headers: { host: 'evil.example' } })).status, 403)
  await b.close()
  // the HTTP refusals' lines (the rule loader also logs a reason, for each corpus rule it leaves out)
  const lines = cap.lines().filter(l => l.reason !== undefined && l.status !== undefined)
  t.ok(lines.length >= 1 && lines.length <= 3, `${lines.length} lines for 200 refusals`)
  t.equal(accounted(lines), 200)
  t.match(lines[0], { reason: 'rebinding', status: 403, path: '/metrics' })
})

t.test('the limiter: one line per key per interval, then a summary of what it held back', async t => {
  const cap = capture()
  const limiter = new LogLimiter(cap.logger, 100)
  for (let i = 0; i < 10; i++) limiter.warn('a', { i }, 'refused a')
  limiter.warn('b', {}, 'refused b')
  t.same(cap.lines().map(l => [l.msg, l.suppressed]), [['refused a', 0], ['refused b', 0]], 'the first of each key at once')
  await new Promise(resolve => setTimeout(resolve, 250))
  const summary = cap.lines()[2]
  t.match(summary, { i: 9, suppressed: 8, msg: /^refused a \(and 8 more like this in the last 100 ms\)$/ }, 'when the interval ends: the newest held back, and how many more')
  t.equal(cap.lines().length, 3, 'nothing for a key with nothing held back')
  limiter.warn('a', {}, 'refused a')
  limiter.flush()
  t.equal(accounted(cap.lines().filter(l => String(l.msg).startsWith('refused a'))), 11, 'flush leaves nothing uncounted')
})
