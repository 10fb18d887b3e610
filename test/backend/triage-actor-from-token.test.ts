import t from 'tap'
import { join } from 'node:path'
import type { FindingDetail } from '../../backend/console/types.js'
import { startBackend } from '../../backend/server.js'
import { createLogger } from '../../shared/logger.js'
import { injectScan } from '../../scripts/injector/index.js'
import { httpRequest } from '../helpers/http.js'
import { newToken, writeTokensFile } from '../helpers/tokens.js'
import { tempDir } from './helpers/records.js'

// Defect 9 of issue 11: the triage actor was whatever X-Picket-Actor said,
// even in token mode, and a local user could triage without any token.

t.test('triage is recorded under the token\'s analyst whatever X-Picket-Actor says, and needs a token even from loopback (defect 9)', async t => {
  const tmp = tempDir('picket-triage-')
  t.teardown(tmp.cleanup)
  const alice = newToken()
  const httpTokensFile = writeTokensFile(tmp.dir, { alice, bob: newToken() })
  // reads without a token open, as under picket start: only writes need one
  const b = await startBackend({
    listen: '127.0.0.1:0', http: '127.0.0.1:0', httpTokensFile, httpAnonymousReads: true, db: join(tmp.dir, 'p.db'), workers: 1,
    logger: createLogger('test-triage', { level: 'fatal', pretty: false }),
  })
  t.teardown(b.close)
  const url = b.http?.url ?? ''
  await injectScan({ collector: b.collector.address, hostId: 'triage-9', ports: 20 })
  await b.flush()
  const id = b.store.listFindings({ host: 'triage-9' }).items[0]?.id ?? ''
  t.ok(id !== '', 'a finding to triage')
  const patch = async (headers: Record<string, string>, status: string): Promise<{ status: number, body: string }> =>
    await httpRequest(url, `/api/findings/${id}`, { method: 'PATCH', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ status, note: 'checked' }) })

  t.equal((await httpRequest(url, `/api/findings/${id}`)).status, 200, 'reading needs no token here')
  const anonymous = await patch({ 'x-picket-actor': 'mallory' }, 'false_positive')
  t.equal(anonymous.status, 401, 'a change without a token is refused, from loopback too')
  t.match(JSON.parse(anonymous.body), { error: 'PICKET_ERR_CONSOLE_TOKEN', message: /needs an access token/ })
  t.equal(b.store.history(id).length, 1, 'and did not reach the history')
  t.equal(b.store.getFinding(id)?.status, 'new')
  t.equal((await patch({ authorization: 'Bearer not-a-token-of-this-backend-at-all-00000000' }, 'resolved')).status, 401, 'an unknown token is refused')

  const res = await patch({ authorization: `Bearer ${alice}`, 'x-picket-actor': 'mallory' }, 'resolved')
  t.equal(res.status, 200)
  const d = JSON.parse(res.body) as FindingDetail
  t.match(d.history[d.history.length - 1], { actor: 'alice', to: 'resolved', note: 'checked' }, 'the token\'s analyst, not the header\'s name')
  t.notOk(b.store.history(id).some(h => h.actor === 'mallory'), 'the header\'s name is nowhere in the history')
})
