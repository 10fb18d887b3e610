import t from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { spawnBackend } from '../backend/helpers/backend-process.js'
import { tempDir } from '../backend/helpers/records.js'
import { makeCa, SERVER_EXT } from '../helpers/certs.js'
import { spawnPicket } from '../helpers/cli.js'
import { hasCommand } from '../helpers/env.js'
import { freePort } from '../helpers/nats.js'

// picket doctor names the hop that is broken, says how to fix it, and exits
// non-zero: a bridge URL where no NATS server listens, an agent with no
// /metrics, TLS flags that do not match the collector. And on a working
// single-process stack it says ok for the agent, the collector's TLS and the
// opt-in round trip (an injected scan reaching the store as a finding).

const line = (out: string, re: RegExp): string | undefined => out.split('\n').find(l => re.test(l))

async function doctor (args: string[]): Promise<{ code: number | string, out: string }> {
  const p = spawnPicket(['doctor', ...args])
  const code = await p.exited
  return { code, out: p.stdout() }
}

t.test('a broken bridge URL gives a failing line that names it, and a non-zero exit', async t => {
  const tmp = tempDir()
  t.teardown(tmp.cleanup)
  const url = `nats://127.0.0.1:${await freePort()}`
  const { code, out } = await doctor(['--bridge', url, '--collector', `127.0.0.1:${await freePort()}`, '--db', join(tmp.dir, 'none.db'), '--no-agent'])
  t.equal(code, 1, 'exit code 1')
  t.ok(line(out, new RegExp(`^FAIL.*bridge ${url}`)), `a FAIL line names ${url}:\n${out}`)
  t.match(out, /fix: start nats-server -js at/, 'with its fix')
  t.match(out, /FAIL\s+store .*none\.db\s+no such file/, 'a missing store fails too')
  t.notMatch(out, /round trip/, 'no round trip unless asked')
})

t.test('agent, collector TLS and round trip on a running backend and agent', async t => {
  const tmp = tempDir()
  t.teardown(tmp.cleanup)
  const db = join(tmp.dir, 'p.db')
  const backend = await spawnBackend(db)
  t.teardown(async () => { await backend.stop() })
  const metricsPort = await freePort()
  const agent = spawnPicket(['agent', '--collector', backend.collector, '--source', 'synth', '--synth-rate', '200', '--host-id', 'doctor-agent', '--data', join(tmp.dir, 'agent'), '--metrics', String(metricsPort), '--log-level', 'warn'])
  t.teardown(async () => { await agent.stop('SIGTERM') })
  const agentAt = `127.0.0.1:${metricsPort}`
  // connected and capturing before the doctor looks
  for (let i = 0; ; i++) {
    const text = await fetch(`http://${agentAt}/metrics`).then(async r => await r.text()).catch(() => '')
    if (/^picket_agent_connected 1/m.test(text) && /^picket_agent_records_captured_total [1-9]/m.test(text)) break
    if (i > 200) throw new Error(`the agent did not connect and capture:\n${agent.stderr()}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }

  await t.test('all ok, with the round trip', async t => {
    const { code, out } = await doctor(['--collector', backend.collector, '--db', db, '--agent-metrics', agentAt, '--round-trip'])
    t.match(out, new RegExp(`ok\\s+agent ${agentAt}\\s+running, connected to its collector; \\d+ records acked`), out)
    t.match(out, /ok\s+agent capture\s+attached: \d+ kernel events matched, \d+ records captured/)
    t.match(out, /ok\s+agent drops\s+none/)
    t.match(out, /ok\s+collector TLS \S+\s+plaintext on both sides/)
    t.match(out, /ok\s+round trip\s+a 20-port scan of doctor-round-trip-\d+ reached the store as a finding in \d+ ms/)
    t.notMatch(out, /FAIL\s+(agent|collector|store|round trip)/)
    t.ok(code === 0 || /FAIL\s+(tracefs|tracepoint|cgroup)/.test(out), 'exit 0 unless the machine lacks tracefs or cgroup v2')
  })

  await t.test('no agent /metrics at the address: a FAIL line with its fix', async t => {
    const at = `127.0.0.1:${await freePort()}`
    const { code, out } = await doctor(['--collector', backend.collector, '--db', db, '--agent-metrics', at])
    t.equal(code, 1)
    t.ok(line(out, new RegExp(`^FAIL\\s+agent ${at}\\s+no /metrics there`)), out)
    t.match(out, /fix: start the agent .* --agent-metrics/)
  })

  await t.test('agents given a CA, a collector speaking plaintext: TLS does not match', async t => {
    const ca = join(tmp.dir, 'some-ca.crt')
    writeFileSync(ca, 'not used: the collector never gets that far\n')
    const { code, out } = await doctor(['--collector', backend.collector, '--db', db, '--no-agent', '--tls-ca', ca])
    t.equal(code, 1)
    t.match(out, /FAIL\s+collector TLS \S+\s+the agents are given --tls-ca, but the collector does not speak TLS/, out)
    t.match(out, /fix: start picket backend with --tls-cert and --tls-key/)
  })

  await t.test('a collector without detection behind it: the round trip fails and says where to look', async t => {
    // a finding never comes when the scan goes to a collector whose store is another
    const other = join(tmp.dir, 'other.db')
    const b2 = await spawnBackend(other)
    t.teardown(async () => { await b2.stop() })
    const { code, out } = await doctor(['--collector', b2.collector, '--db', db, '--no-agent', '--round-trip', '--round-trip-timeout', '3s'])
    t.equal(code, 1)
    t.match(out, /FAIL\s+round trip\s+the scan of doctor-round-trip-\d+ was acked, but no finding reached .*p\.db within 3000 ms/, out)
  })
})

t.test('a TLS collector: ok with the agents\' CA, FAIL without it', { skip: hasCommand('openssl') ? false : 'needs openssl to make test certificates' }, async t => {
  const tmp = tempDir()
  t.teardown(tmp.cleanup)
  const pki = makeCa(tmp.dir)
  const server = pki.leaf('server', 'localhost', SERVER_EXT)
  const db = join(tmp.dir, 'p.db')
  const backend = await spawnBackend(db, ['--tls-cert', server.cert, '--tls-key', server.key])
  t.teardown(async () => { await backend.stop() })
  const good = await doctor(['--collector', backend.collector, '--db', db, '--no-agent', '--tls-ca', pki.ca, '--round-trip'])
  t.match(good.out, new RegExp(`ok\\s+collector TLS \\S+\\s+certificate verified by ${pki.ca.replace(/[.]/g, '\\.')}`), good.out)
  t.match(good.out, /ok\s+round trip/, 'the round trip goes over TLS')
  const none = await doctor(['--collector', backend.collector, '--db', db, '--no-agent'])
  t.equal(none.code, 1)
  t.match(none.out, /FAIL\s+collector TLS \S+\s+the collector speaks TLS, but the agents are given no --tls-ca/, none.out)
  mkdirSync(join(tmp.dir, 'other'))
  const stranger = makeCa(join(tmp.dir, 'other'))
  const wrong = await doctor(['--collector', backend.collector, '--db', db, '--no-agent', '--tls-ca', stranger.ca])
  t.equal(wrong.code, 1)
  t.match(wrong.out, /FAIL\s+collector TLS \S+\s+.*certificate/, `another CA fails verification:\n${wrong.out}`)
  t.match(wrong.out, /fix: the collector's certificate must be signed by the agents' --tls-ca/)
})
