import t from 'tap'
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { rootPath } from '../../shared/paths.js'
import { spawnPicket, type PicketProcess } from '../helpers/cli.js'
import { requireReal } from '../helpers/env.js'
import { nmap } from '../helpers/scan.js'
import { findings } from './helpers/stack.js'

// `picket start`: the one command of the quick start.

function tempDir (): string {
  const d = mkdtempSync(join(tmpdir(), 'picket-start-'))
  chmodSync(d, 0o777) // writable by the unprivileged user too
  return d
}

/** Run a picket command as an unprivileged user with exactly `caps` (setpriv), in a clean environment. */
function spawnAs (caps: string[], args: string[]): PicketProcess {
  const list = caps.map(c => '+' + c.toLowerCase().replace(/^cap_/, '')).join(',')
  const capArgs = caps.length > 0
    ? [`--inh-caps=-all,${list}`, `--ambient-caps=-all,${list}`, `--bounding-set=-all,${list}`]
    : ['--inh-caps=-all', '--bounding-set=-all']
  const proc = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', ...capArgs,
    process.execPath, rootPath('bin', 'picket.js'), ...args], { cwd: tmpdir(), env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmpdir(), PICKET_LOG_PRETTY: '0' } })
  let out = ''; let err = ''
  proc.stdout.setEncoding('utf8').on('data', (d: string) => { out += d })
  proc.stderr.setEncoding('utf8').on('data', (d: string) => { err += d })
  const exited = new Promise<number | string>(resolve => proc.on('exit', (c, s) => resolve(c ?? s ?? -1)))
  let done = false
  void exited.then(() => { done = true })
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    exited,
    stop: async (sig = 'SIGINT') => { if (!done) proc.kill(sig); return await exited },
    waitFor: async (re, o = {}) => {
      const end = Date.now() + (o.timeoutMs ?? 30_000)
      for (;;) {
        const m = (o.stream === 'stdout' ? out : err).match(re)
        if (m !== null) return m
        if (done || Date.now() > end) throw new Error(`no ${String(re)}; stderr:\n${err.slice(-3000)}`)
        await new Promise(resolve => setTimeout(resolve, 25))
      }
    },
  }
}

const CONSOLE_LINE = /console\s+(http:\/\/[^/\s]+)\/\?access_token=(\S+)\s+\(triage as (\S+)\)/

t.test('without root, picket start explains capture and still serves the console', async t => {
  if (!requireReal(t, { root: true, commands: ['setpriv'] })) return
  const data = tempDir()
  t.teardown(() => rmSync(data, { recursive: true, force: true }))
  const args = ['start', '--data', data, '--listen', '127.0.0.1:0', '--console', '127.0.0.1:0', '--agent-metrics', '127.0.0.1:0']
  const p = spawnAs([], args)
  t.teardown(async () => { await p.stop('SIGKILL') })
  const m = await p.waitFor(CONSOLE_LINE)
  const [, origin, token, analyst] = m
  const err = p.stderr()
  t.match(err, /capture is off/)
  t.match(err, /CAP_BPF/)
  t.match(err, /CAP_PERFMON/)
  t.match(err, /sudo npm start/, 'says how to rerun')
  t.match(err, /picket inject-scan --collector 127\.0\.0\.1:\d+/, 'points at the injector')
  const page = await fetch(origin + '/')
  t.equal(page.status, 200, 'the console serves, read only, without a token')
  t.match(page.headers.get('content-type') ?? '', /text\/html/)
  const health = await fetch(origin + '/healthz')
  t.equal(health.status, 200, '/healthz is ok')

  // triage needs the token the first start wrote for the user who ran it
  const tokens = join(data, 'http-tokens')
  t.equal(statSync(tokens).mode & 0o777, 0o600, 'DATA/http-tokens is mode 0600')
  t.equal(statSync(tokens).uid, 65534, 'and belongs to the user who ran picket start')
  t.match(readFileSync(tokens, 'utf8'), `${decodeURIComponent(token)} ${analyst}\n`, 'the printed URL carries its token')
  t.equal(analyst, 'nobody', 'named after the local user')
  const triage = async (headers: Record<string, string>): Promise<number> =>
    (await fetch(origin + '/api/findings/no-such-id', { method: 'PATCH', headers: { 'content-type': 'application/json', ...headers }, body: '{"status":"resolved"}' })).status
  t.equal(await triage({}), 401, 'triage without a token is refused, on loopback too')
  t.equal(await triage({ authorization: `Bearer ${decodeURIComponent(token)}` }), 404, 'with the token it reaches the finding')
  t.equal(await p.stop('SIGINT'), 0, 'Ctrl-C exits cleanly')
  t.match(p.stderr(), /picket start: stopped/)

  const again = spawnAs([], args)
  t.teardown(async () => { await again.stop('SIGKILL') })
  t.equal((await again.waitFor(CONSOLE_LINE))[2], token, 'a second start keeps the token')
  t.equal(await again.stop('SIGINT'), 0)
})

t.test('as root, picket start captures a real scan, raises the finding, and stops with nothing left behind', async t => {
  if (!requireReal(t, { bpf: true, commands: ['nmap'] })) return
  const data = tempDir()
  t.teardown(() => rmSync(data, { recursive: true, force: true }))
  const p = spawnPicket(['start', '--data', data, '--listen', '127.0.0.1:0', '--console', '127.0.0.1:0', '--agent-metrics', '127.0.0.1:0'])
  t.teardown(async () => { await p.stop('SIGKILL') })
  await p.waitFor(/agent\s+capturing as host/)
  t.notMatch(p.stderr(), /capture is off/)
  await nmap({ type: '-sS', ports: '1-200', source: '127.0.0.91' })
  const end = Date.now() + 10_000
  let mine: Awaited<ReturnType<typeof findings>> = []
  while (Date.now() < end) {
    mine = (await findings(join(data, 'picket.db'))).filter(f => f.sources.includes('127.0.0.91'))
    if (mine.length > 0 && mine[0].ports >= 200) break
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  t.equal(mine.length, 1, 'one finding for the scan')
  t.equal(mine[0]?.ports, 200)
  t.equal(await p.stop('SIGINT'), 0, 'Ctrl-C exits 0')
  const m = /agent captured (\d+) records, (\d+) batches acked, (\d+) left in the spool/.exec(p.stderr())
  t.ok(m !== null, 'the agent reports its flush')
  t.ok(Number(m?.[1]) >= 200, 'captured the scan')
  t.equal(Number(m?.[3]), 0, 'nothing left unacked: every batch reached the collector')
})

t.test('the agent systemd unit\'s capabilities are enough to capture', async t => {
  if (!requireReal(t, { bpf: true, commands: ['nmap', 'setpriv'] })) return
  const unit = readFileSync(rootPath('scripts', 'systemd', 'picket-agent.service'), 'utf8')
  const caps = (/^AmbientCapabilities=(.*)$/m.exec(unit)?.[1] ?? '').split(/\s+/).filter(Boolean)
  t.same(caps.sort(), ['CAP_BPF', 'CAP_DAC_READ_SEARCH', 'CAP_PERFMON'], 'the unit grants exactly these')
  t.equal(/^CapabilityBoundingSet=(.*)$/m.exec(unit)?.[1].split(/\s+/).sort().join(' '), caps.join(' '), 'and bounds the service to them')
  const data = tempDir()
  t.teardown(() => rmSync(data, { recursive: true, force: true }))
  const backend = spawnPicket(['backend', '--listen', '127.0.0.1:0', '--http', '127.0.0.1:0', '--db', join(data, 'picket.db'), '--log-level', 'warn'])
  t.teardown(async () => { await backend.stop('SIGINT') })
  const collector = (await backend.waitFor(/collector on (\S+),/))[1]
  const agent = spawnAs(caps, ['agent', '--collector', collector, '--data', join(data, 'agent'), '--host-id', 'unit-host', '--log-level', 'info'])
  t.teardown(async () => { await agent.stop('SIGINT') })
  await agent.waitFor(/"msg":"[^"]*(capturing|started)[^"]*"/i)
  t.notMatch(agent.stderr(), /PICKET_ERR_BPF_PRIVILEGE/)
  await new Promise(resolve => setTimeout(resolve, 500))
  await nmap({ type: '-sS', ports: '1-100', source: '127.0.0.92' })
  const end = Date.now() + 10_000
  let mine: Awaited<ReturnType<typeof findings>> = []
  while (Date.now() < end && mine.length === 0) {
    mine = (await findings(join(data, 'picket.db'))).filter(f => f.sources.includes('127.0.0.92'))
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  t.equal(mine.length, 1, 'an agent with only the unit\'s capabilities captured the scan')
  t.equal(mine[0]?.hostId, 'unit-host')
})
