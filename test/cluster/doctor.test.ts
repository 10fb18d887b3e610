import t from 'tap'
import { join } from 'node:path'
import { spawnPicket } from '../helpers/cli.js'
import { freePort } from '../helpers/nats.js'
import { tempDir } from '../backend/helpers/records.js'

// picket doctor names the hop that is broken, says how to fix it, and exits
// non-zero: here a bridge URL where no NATS server listens.

t.test('a broken bridge URL gives a failing line that names it, and a non-zero exit', async t => {
  const tmp = tempDir()
  t.teardown(tmp.cleanup)
  const url = `nats://127.0.0.1:${await freePort()}`
  const p = spawnPicket(['doctor', '--bridge', url, '--collector', `127.0.0.1:${await freePort()}`, '--db', join(tmp.dir, 'none.db')])
  const code = await p.exited
  t.equal(code, 1, 'exit code 1')
  const line = p.stdout().split('\n').find(l => l.startsWith('FAIL') && l.includes(`bridge ${url}`))
  t.ok(line, `a FAIL line names ${url}:\n${p.stdout()}`)
  t.match(p.stdout(), /fix: start nats-server -js at/, 'with its fix')
  t.match(p.stdout(), /FAIL\s+store .*none\.db\s+no such file/, 'a missing store fails too')
})
