import t from 'tap'
import { join } from 'node:path'
import { startBackend } from '../../backend/server.js'
import { createLogger } from '../../shared/logger.js'
import { openEventStream, type OpenStream } from '../helpers/http.js'
import { newToken, writeTokensFile } from '../helpers/tokens.js'
import { tempDir } from './helpers/records.js'

// Defect 10 of issue 11: the console's 64 live streams were one pool, so
// anyone who could reach a loopback console could hold all of them and
// leave the analysts without live views.

t.test('streams without a token are capped on their own; an analyst\'s stream still connects (defect 10)', async t => {
  const tmp = tempDir('picket-streams-')
  t.teardown(tmp.cleanup)
  const token = newToken()
  const httpTokensFile = writeTokensFile(tmp.dir, { erin: token })
  const b = await startBackend({
    listen: '127.0.0.1:0', http: '127.0.0.1:0', httpTokensFile, httpAnonymousReads: true, db: join(tmp.dir, 'p.db'), workers: 1,
    logger: createLogger('test-streams', { level: 'fatal', pretty: false }),
  })
  const open: OpenStream[] = []
  t.teardown(async () => { for (const s of open) s.close(); await b.close() })
  const url = b.http?.url ?? ''

  // as many as the old shared limit: all of them from anyone on this host
  for (let i = 0; i < 64; i++) open.push(await openEventStream(url, '/api/stream'))
  const served = open.filter(s => s.status === 200).length
  t.equal(served, 8, 'eight streams without a token, the rest refused')
  t.match(open.find(s => s.status === 503)?.text(), /8 live streams without an access token.*open the console with its access token/, 'a refusal says which limit, and the way around it')

  const mine = await openEventStream(url, `/api/stream?access_token=${token}`)
  open.push(mine)
  t.equal(mine.status, 200, 'the analyst\'s stream connects')
  const end = Date.now() + 5000
  while (!mine.text().includes('event: hello') && Date.now() < end) await new Promise(resolve => setTimeout(resolve, 20))
  t.match(mine.text(), /"analyst":"erin"/, 'and says whose it is')
})
