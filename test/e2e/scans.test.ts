import t from 'tap'
import { createServer, request, Agent } from 'node:http'
import { connect, createServer as createTcpServer, type Server } from 'node:net'
import { requireReal } from '../helpers/env.js'
import { nmap } from '../helpers/scan.js'
import { findings, startStack, type FindingSummary, type Stack } from './helpers/stack.js'

// The whole system, as an operator runs it: real `picket backend` and
// `picket agent` processes, real nmap scans from their own loopback source
// addresses. Each scan must give exactly one T1046 finding naming its source,
// stored within 5 s of the scan's end; benign traffic must give none.

const DEADLINE_MS = 5000
// after the finding appears, keep watching this long for a duplicate
const SETTLE_MS = 2500

async function waitForFinding (stack: Stack, source: string, since: number): Promise<{ f: FindingSummary, ms: number }> {
  const end = since + DEADLINE_MS + 10_000
  for (;;) {
    const all = await findings(stack.db)
    const mine = all.filter(f => f.sources.includes(source))
    if (mine.length > 0) return { f: mine[0], ms: Date.now() - since }
    if (Date.now() > end) throw new Error(`no finding for ${source} ${Date.now() - since} ms after the scan; agent stderr:\n${stack.agent.stderr().slice(-2000)}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

async function checkScan (t: Tap.Test, stack: Stack, source: string, scan: () => Promise<unknown>, minPorts: number): Promise<void> {
  await scan()
  const scanEnd = Date.now()
  const { ms } = await waitForFinding(stack, source, scanEnd)
  t.ok(ms <= DEADLINE_MS, `finding stored ${ms} ms after the scan ended (limit ${DEADLINE_MS} ms)`)
  // the finding is updated as the rest of the scan lands; no second one may appear
  await new Promise(resolve => setTimeout(resolve, SETTLE_MS))
  const mine = (await findings(stack.db)).filter(x => x.sources.includes(source))
  t.equal(mine.length, 1, `exactly one finding names ${source}`)
  const f = mine[0]
  t.equal(f.technique, 'T1046')
  t.equal(f.finding.finding_info?.attacks?.[0]?.tactic?.uid, 'TA0007')
  t.equal(f.hostId, stack.hostId, 'the scanned host')
  t.same(f.sources, [source], 'only that source')
  t.ok(f.ports >= minPorts, `${f.ports} ports probed (at least ${minPorts})`)
}

/**
 * Findings not in `before` that name one of `ports`. Benign traffic that
 * raised a finding would name its own ports; other engineers' traffic on this
 * machine (NATS peers redialling, test servers) may raise findings of its own
 * meanwhile, which say nothing about the traffic under test.
 */
async function newFindingsOn (stack: Stack, before: readonly FindingSummary[], ports: readonly number[]): Promise<FindingSummary[]> {
  const old = new Set(before.map(f => f.id))
  const named = (f: FindingSummary): boolean => {
    const list = f.finding.unmapped?.picket?.ports
    return Array.isArray(list) && list.some((p: { port?: number }) => ports.includes(Number(p.port)))
  }
  return (await findings(stack.db)).filter(f => !old.has(f.id) && named(f))
}

type Tap = typeof t
declare namespace Tap { type Test = Parameters<Parameters<typeof t.test>[1]>[0] }

t.test('real scans against real agent and backend processes', async t => {
  if (!requireReal(t, { bpf: true, commands: ['nmap'] })) return
  const stack = await startStack()
  t.teardown(async () => { await stack.close() })
  const open: Server[] = []
  t.teardown(() => { for (const s of open) s.close() })
  // a couple of open ports, so scans see open and closed
  for (const port of [18281, 18282]) {
    const s = createTcpServer(sock => sock.destroy())
    await new Promise<void>(resolve => s.listen(port, '127.0.0.1', resolve))
    open.push(s)
  }

  await t.test('nmap -sS (SYN scan)', async t => {
    await checkScan(t, stack, '127.0.0.81', async () => await nmap({ type: '-sS', ports: '1-1000', source: '127.0.0.81' }), 1000)
  })
  await t.test('nmap -sT (connect scan)', async t => {
    await checkScan(t, stack, '127.0.0.82', async () => await nmap({ type: '-sT', ports: '1-200,18281,18282', source: '127.0.0.82' }), 200)
  })
  await t.test('nmap -sU on 100 ports (UDP scan)', async t => {
    await checkScan(t, stack, '127.0.0.83', async () => await nmap({ type: '-sU', ports: '1-100', source: '127.0.0.83' }), 100)
  })
  await t.test('nmap -sS over IPv6 on ::1', async t => {
    await checkScan(t, stack, '::1', async () => await nmap({ type: '-sS', ports: '1-300', target: '::1' }), 300)
  })

  await t.test('benign: an HTTP server under load, many clients on one port', async t => {
    const before = await findings(stack.db)
    const server = createServer((_req, res) => { res.end('ok') })
    await new Promise<void>(resolve => server.listen(18283, '127.0.0.1', resolve))
    t.teardown(() => { server.close() })
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 20 })
    const get = async (agent: Agent | false): Promise<void> => await new Promise((resolve, reject) => {
      const r = request({ host: '127.0.0.1', port: 18283, path: '/', agent }, res => { res.resume(); res.on('end', resolve) })
      r.on('error', reject)
      r.end()
    })
    let requests = 0
    const until = Date.now() + 3000
    const clients = Array.from({ length: 50 }, async (_, i) => {
      while (Date.now() < until) { await get(i % 2 === 0 ? keepAlive : false); requests++ }
    })
    await Promise.all(clients)
    keepAlive.destroy()
    await new Promise(resolve => setTimeout(resolve, SETTLE_MS))
    t.ok(requests > 500, `${requests} requests from 50 clients`)
    t.same(await newFindingsOn(stack, before, [18283]), [], 'no new finding')
  })

  await t.test('benign: repeated connections to a few known ports', async t => {
    const before = await findings(stack.db)
    const ports = [18281, 18282, 18283]
    const server = createServer((_req, res) => { res.end('ok') })
    await new Promise<void>(resolve => server.listen(18283, '127.0.0.1', resolve))
    t.teardown(() => { server.close() })
    let n = 0
    for (let round = 0; round < 100; round++) {
      for (const port of ports) {
        await new Promise<void>(resolve => { const c = connect(port, '127.0.0.1', () => { c.end(); n++; resolve() }); c.on('error', () => resolve()) })
      }
    }
    await new Promise(resolve => setTimeout(resolve, SETTLE_MS))
    t.equal(n, 300, 'connections made')
    t.same(await newFindingsOn(stack, before, ports), [], 'no new finding')
  })
})

// The IPv6 TCP scan above already made a finding for ::1, the only IPv6
// loopback source; this scan gets a stack of its own so its finding is its own.
// Closed UDP ports over IPv6 answer with ICMPv6 port unreachable, which no
// tracepoint carries: the agent sees them from the packet probe's cgroup_skb
// egress program, in the network class.
t.test('nmap -6 -sU on ::1 against real agent and backend processes', async t => {
  if (!requireReal(t, { bpf: true, commands: ['nmap'] })) return
  const stack = await startStack()
  t.teardown(async () => { await stack.close() })
  await checkScan(t, stack, '::1', async () => await nmap({ type: '-sU', ports: '1000-1100', target: '::1' }), 100)
})
