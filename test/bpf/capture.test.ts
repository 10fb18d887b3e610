import t from 'tap'
import { connect, createServer, type Server } from 'node:net'
import { NET_ACTIVITY, DIRECTION } from '../../shared/ocsf/constants.js'
import type { NetworkActivity } from '../../shared/ocsf/types.js'
import { spawnPicket } from '../helpers/cli.js'
import { IN_CI, requireReal } from '../helpers/env.js'
import { findOcsfSchemaDir, validateNetworkActivity } from '../../shared/ocsf/schema.js'
import { listeningPorts, nmap, nmapPorts } from '../helpers/scan.js'

// `picket capture` against the real kernel while real nmap scans loopback.

async function capture<T> (fn: () => Promise<T>): Promise<{ records: NetworkActivity[], summary: Record<string, unknown>, result: T }> {
  const p = spawnPicket(['capture'])
  await p.waitFor(/capture: attached/)
  const result = await fn()
  await new Promise(resolve => setTimeout(resolve, 300))
  const code = await p.stop('SIGINT')
  if (code !== 0) throw new Error(`picket capture exited ${code}: ${p.stderr()}`)
  const records = p.stdout().split('\n').filter(l => l.length > 0).map(l => JSON.parse(l) as NetworkActivity)
  const m = /capture-summary (.*)/.exec(p.stderr())
  return { records, summary: m !== null ? JSON.parse(m[1]) : {}, result }
}

async function listen (port: number, host = '127.0.0.1'): Promise<Server> {
  const s = createServer(sock => sock.destroy())
  await new Promise<void>((resolve, reject) => { s.once('error', reject); s.listen(port, host, resolve) })
  return s
}

// one record of each distinct shape must validate against OCSF 1.8.0
function validateShapes (t: { same: (a: unknown, b: unknown, m?: string) => void, fail: (m: string) => void }, records: NetworkActivity[]): void {
  if (findOcsfSchemaDir() === undefined) {
    if (IN_CI) t.fail('CI=true and the OCSF 1.8.0 schema folder is missing')
    return
  }
  const seen = new Map<string, NetworkActivity>()
  for (const r of records) seen.set(`${r.type_uid}/${r.connection_info?.direction_id}/${r.connection_info?.protocol_num}/${r.connection_info?.protocol_ver_id}`, r)
  for (const [shape, r] of seen) t.same(validateNetworkActivity(r), [], `captured ${r.type_name} (${shape}) validates against OCSF 1.8.0`)
}

const from = (ip: string) => (r: NetworkActivity): boolean => r.src_endpoint?.ip === ip

t.test('SYN scan: one Refuse record per closed port probed', async t => {
  if (!requireReal(t, { bpf: true, commands: ['nmap', 'ss'] })) return
  const open = await listeningPorts('tcp')
  const { records, summary } = await capture(async () => await nmap({ type: '-sS', ports: '1-1000', source: '127.0.0.66' }))
  const refused = records.filter(from('127.0.0.66')).filter(r => r.activity_id === NET_ACTIVITY.REFUSE)
  const perPort = new Map<number, number>()
  for (const r of refused) perPort.set(r.dst_endpoint!.port!, (perPort.get(r.dst_endpoint!.port!) ?? 0) + 1)
  let closed = 0
  const wrong: string[] = []
  for (let port = 1; port <= 1000; port++) {
    const n = perPort.get(port) ?? 0
    if (open.has(port)) { if (n !== 0) wrong.push(`open port ${port} has ${n} Refuse`) } else {
      closed++
      if (n !== 1) wrong.push(`closed port ${port} has ${n} Refuse records`)
    }
  }
  t.ok(closed > 900, `${closed} closed ports probed`)
  t.same(wrong, [], 'exactly one Refuse per closed port, none for open ones')
  t.equal(refused.length, closed)
  const r = refused[0]
  t.equal(r.class_uid, 4001)
  t.equal(r.type_uid, 400105)
  t.equal(r.dst_endpoint?.ip, '127.0.0.1')
  t.equal(r.connection_info?.direction_id, DIRECTION.INBOUND)
  t.equal(r.connection_info?.protocol_name, 'tcp')
  t.match(r.status_detail, /NO_SOCKET/)
  t.ok(Math.abs(r.time - Date.now()) < 60_000, 'time is wall-clock milliseconds')
  t.equal((summary.drops as Record<string, number>).kernel_reserve, 0, 'no drops')
  validateShapes(t, records)
})

t.test('connect scan: Refuse for closed ports, Open for the open one, outbound records from nmap', async t => {
  if (!requireReal(t, { bpf: true, commands: ['nmap'] })) return
  const server = await listen(18181)
  t.teardown(() => { server.close() })
  const { records, result } = await capture(async () => await nmap({ type: '-sT', ports: '1-100,18181', source: '127.0.0.67' }))
  t.same(nmapPorts(result.stdout, 'open'), [18181], 'nmap saw the open port')
  const mine = records.filter(from('127.0.0.67'))
  const refusedPorts = new Set(mine.filter(r => r.activity_id === NET_ACTIVITY.REFUSE).map(r => r.dst_endpoint?.port))
  const closedByNmap = 100 - nmapPorts(result.stdout, 'open').filter(p => p <= 100).length
  t.equal(refusedPorts.size, closedByNmap, 'every closed port refused')
  t.notOk(refusedPorts.has(18181))
  const inboundOpen = mine.filter(r => r.activity_id === NET_ACTIVITY.OPEN && r.connection_info?.direction_id === DIRECTION.INBOUND)
  t.same(inboundOpen.map(r => r.dst_endpoint?.port), [18181], 'one inbound Open, on the open port')
  const outboundOpen = mine.filter(r => r.activity_id === NET_ACTIVITY.OPEN && r.connection_info?.direction_id === DIRECTION.OUTBOUND)
  t.ok(outboundOpen.length >= 101, `nmap's own connects are outbound Opens (${outboundOpen.length})`)
  t.ok(outboundOpen.every(r => r.actor?.process?.name === 'nmap'), 'attributed to the nmap process')
  const closes = mine.filter(r => r.activity_id === NET_ACTIVITY.CLOSE)
  t.ok(closes.length >= 101, `Close records (${closes.length})`)
  validateShapes(t, records)
})

t.test('UDP scan: ICMP port unreachable gives Refuse with protocol udp', async t => {
  if (!requireReal(t, { bpf: true, commands: ['nmap', 'ss'] })) return
  const open = await listeningPorts('udp')
  const { records } = await capture(async () => await nmap({ type: '-sU', ports: '1-100', source: '127.0.0.68' }))
  const refused = records.filter(from('127.0.0.68')).filter(r => r.activity_id === NET_ACTIVITY.REFUSE)
  t.ok(refused.every(r => r.connection_info?.protocol_name === 'udp' && r.connection_info.protocol_num === 17), 'all udp')
  t.ok(refused.every(r => r.dst_endpoint?.ip === '127.0.0.1' && r.connection_info?.direction_id === DIRECTION.INBOUND))
  t.ok(refused.every(r => /port unreachable \(type 3 code 3\)/.test(r.status_detail ?? '')))
  const ports = new Set(refused.map(r => r.dst_endpoint?.port))
  const expected = [...Array(100).keys()].map(i => i + 1).filter(p => !open.has(p))
  t.same([...ports].sort((a, b) => a! - b!), expected, 'every closed UDP port refused')
  validateShapes(t, refused)
})

t.test('IPv6 UDP scan: ICMPv6 port unreachable gives Refuse with protocol udp (the network class)', async t => {
  if (!requireReal(t, { bpf: true, commands: ['nmap', 'ss'] })) return
  const open = await listeningPorts('udp')
  const { records } = await capture(async () => await nmap({ type: '-sU', ports: '1000-1100', target: '::1' }))
  const refused = records.filter(from('::1')).filter(r => r.activity_id === NET_ACTIVITY.REFUSE && r.connection_info?.protocol_num === 17)
  t.ok(refused.every(r => r.dst_endpoint?.ip === '::1' && r.connection_info?.direction_id === DIRECTION.INBOUND && r.connection_info.protocol_ver_id === 6))
  const ports = new Set(refused.map(r => r.dst_endpoint?.port))
  const expected = [...Array(101).keys()].map(i => i + 1000).filter(p => !open.has(p))
  t.same([...ports].sort((a, b) => a! - b!), expected, 'every closed UDP port refused')
  validateShapes(t, refused)
})

t.test('IPv6: a connect to a closed port on ::1 gives a Refuse record with IPv6 addresses', async t => {
  if (!requireReal(t, { bpf: true })) return
  const { records } = await capture(async () => await new Promise<void>(resolve => {
    const s = connect(9, '::1')
    s.on('error', () => resolve())
    s.on('connect', () => { s.destroy(); resolve() })
  }))
  const refused = records.filter(r => r.activity_id === NET_ACTIVITY.REFUSE && r.dst_endpoint?.port === 9)
  t.equal(refused.length, 1)
  t.equal(refused[0].src_endpoint?.ip, '::1')
  t.equal(refused[0].dst_endpoint?.ip, '::1')
  t.equal(refused[0].connection_info?.protocol_ver_id, 6)
  const outbound = records.filter(r => r.activity_id === NET_ACTIVITY.OPEN && r.dst_endpoint?.port === 9)
  t.equal(outbound.length, 1, 'the connect itself is an outbound Open')
  t.equal(outbound[0].connection_info?.direction_id, DIRECTION.OUTBOUND)
  validateShapes(t, records)
})

t.test('Listen and inbound Open on a real server', async t => {
  if (!requireReal(t, { bpf: true })) return
  const { records } = await capture(async () => {
    const s = await listen(18182)
    await new Promise<void>(resolve => { const c = connect(18182, '127.0.0.1', () => { c.end(); setTimeout(resolve, 50) }) })
    await new Promise(resolve => s.close(resolve))
  })
  const listenRec = records.filter(r => r.activity_id === NET_ACTIVITY.LISTEN && r.dst_endpoint?.port === 18182)
  t.equal(listenRec.length, 1, 'one Listen')
  t.equal(listenRec[0].src_endpoint, undefined, 'a listening socket has only its own endpoint')
  t.equal(listenRec[0].actor?.process?.pid, process.pid, 'attributed to the listening process')
  const inbound = records.filter(r => r.activity_id === NET_ACTIVITY.OPEN && r.connection_info?.direction_id === DIRECTION.INBOUND && r.dst_endpoint?.port === 18182)
  t.equal(inbound.length, 1, 'one inbound Open')
  t.ok((inbound[0].src_endpoint?.port ?? 0) > 0, 'inbound Open carries the peer port')
  const closes = records.filter(r => r.activity_id === NET_ACTIVITY.CLOSE && (r.dst_endpoint?.port === 18182))
  t.ok(closes.length >= 2, 'both ends close')
  validateShapes(t, records)
})
