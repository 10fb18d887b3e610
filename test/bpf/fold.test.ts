import t from 'tap'
import { connect, createServer } from 'node:net'
import { ipv4At } from '../../agent/normalize/ip.js'
import { HEADER, KDIR, KIND, NET_EVENT, TCP } from '../../bpf/abi.js'
import { bootToWallNs, NetProbe, openRing } from '../../bpf/index.js'
import { makeDevice, makeMetadata } from '../../shared/ocsf/network.js'
import { EngineRig, pack, rulesDir } from '../backend/helpers/records.js'
import { requireReal } from '../helpers/env.js'
import { eventsIn, FOLD_RULES, outcome } from '../helpers/fold.js'
import { leanDecode } from '../helpers/lean.js'
import { recordsDuring } from '../helpers/ring.js'
import { listeningPorts, nmap } from '../helpers/scan.js'

// Folding in the kernel (net.bpf.c): a storm of one flow is a few records
// whose counts add up to its events; the first event of a flow in a window
// still goes out at once, so every distinct probe of a scan is its own record.

interface Rec { kind: number, laddr: string, raddr: string, lport: number, rport: number, direction: number, newstate: number, tgid: number, count: number, startNs: bigint, bootNs: bigint }

function read (slab: SharedArrayBuffer, length: number): Rec[] {
  const buf = new Uint8Array(slab)
  const dv = new DataView(slab)
  const out: Rec[] = []
  for (let p = 0; p < length; p += dv.getUint16(p + HEADER.size, true)) {
    out.push({
      kind: dv.getUint16(p + HEADER.kind, true),
      laddr: ipv4At(buf, p + NET_EVENT.laddr),
      raddr: ipv4At(buf, p + NET_EVENT.raddr),
      lport: dv.getUint16(p + NET_EVENT.lport, true),
      rport: dv.getUint16(p + NET_EVENT.rport, true),
      direction: buf[p + NET_EVENT.direction],
      newstate: buf[p + NET_EVENT.newstate],
      tgid: dv.getUint32(p + HEADER.tgid, true),
      count: dv.getUint32(p + NET_EVENT.count, true),
      startNs: dv.getBigUint64(p + NET_EVENT.start_ns, true),
      bootNs: dv.getBigUint64(p + HEADER.boot_ns, true),
    })
  }
  return out
}

/** A port nobody listens on: one the kernel just handed out and took back. */
async function closedPort (): Promise<number> {
  const s = createServer()
  await new Promise<void>(resolve => s.listen(0, '127.0.0.1', resolve))
  const port = (s.address() as { port: number }).port
  await new Promise(resolve => s.close(resolve))
  return port
}

/** `n` connects from `source` to 127.0.0.1:`port`, `parallel` at a time. */
async function storm (source: string, port: number, n: number, parallel = 100): Promise<number> {
  const one = async (): Promise<void> => await new Promise(resolve => {
    const c = connect({ host: '127.0.0.1', port, localAddress: source })
    c.on('error', () => resolve())
    c.on('connect', () => { c.destroy(); resolve() })
  })
  const started = performance.now()
  for (let i = 0; i < n; i += parallel) await Promise.all(Array.from({ length: Math.min(parallel, n - i) }, one))
  return performance.now() - started
}

/** Events a set of records stands for: a record alone is one, a summary its count. */
const events = (rs: readonly Rec[]): number => rs.reduce((n, r) => n + Math.max(1, r.count), 0)

const N = 2000

async function stormRecords (probe: NetProbe, source: string): Promise<{ resets: Rec[], connects: Rec[], ms: number, folded: number }> {
  const port = await closedPort()
  const before = probe.counters().folded ?? 0
  let ms = 0
  const recs = await recordsDuring(probe.ringFd, async () => {
    ms = await storm(source, port, N)
    // past the window, then the sweep the agent's timer would run
    await new Promise(resolve => setTimeout(resolve, 1100))
    if (probe.config.foldWindowMs > 0) probe.sweep()
  }, read)
  return {
    resets: recs.filter(r => r.kind === KIND.NET_RESET && r.raddr === source && r.lport === port),
    connects: recs.filter(r => r.kind === KIND.NET_STATE && r.newstate === TCP.SYN_SENT && r.laddr === source && r.rport === port),
    ms,
    folded: (probe.counters().folded ?? 0) - before,
  }
}

t.test(`a storm of ${N} connects to one closed port: a few records whose counts add up`, async t => {
  if (!requireReal(t, { bpf: true })) return
  const probe = NetProbe.open()
  t.teardown(() => probe.close())
  t.equal(probe.config.foldWindowMs, 1000, 'folding is on by default, 1 s')
  const { resets, connects, ms, folded } = await stormRecords(probe, '127.0.0.73')
  t.comment(`${N} connects in ${ms.toFixed(0)} ms: ${resets.length} RST records, ${connects.length} SYN_SENT records`)
  t.equal(events(resets), N, 'the RST records stand for every refused connect')
  t.equal(events(connects), N, 'the SYN_SENT records stand for every connect')
  // one record at once and one summary per window the storm spans
  const windows = Math.ceil(ms / 1000) + 1
  t.ok(resets.length <= 2 * windows, `${resets.length} RST records for ${windows} windows`)
  t.ok(connects.length <= 2 * windows, `${connects.length} SYN_SENT records for ${windows} windows`)
  t.equal(resets[0].count, 0, 'the first event of the flow went out alone, at once')
  t.equal(resets[0].direction, KDIR.INBOUND)
  for (const r of [...resets, ...connects].filter(r => r.count > 0)) {
    t.ok(r.startNs > 0n && r.startNs <= r.bootNs, 'a summary spans its first to its last repeat')
  }
  t.ok(connects.every(r => r.tgid === process.pid), 'an outbound connect\'s flow is its process\'s')
  t.ok(folded >= events(resets) - resets.length + events(connects) - connects.length, `the kernel counted ${folded} folded events, apart from drops`)
  t.equal(probe.counters().reset.reserveFailed, 0, 'no drops')
})

t.test('--fold-window 0: every event is a record of its own', async t => {
  if (!requireReal(t, { bpf: true })) return
  const probe = NetProbe.open({ foldWindowMs: 0 })
  t.teardown(() => probe.close())
  const { resets, connects, folded } = await stormRecords(probe, '127.0.0.74')
  t.equal(resets.length, N)
  t.equal(connects.length, N)
  t.ok(resets.every(r => r.count === 0), 'no summaries')
  t.equal(folded, 0, 'nothing folded')
})

t.test('a SYN scan with folding on: still one record per closed port, each at once', async t => {
  if (!requireReal(t, { bpf: true, commands: ['nmap', 'ss'] })) return
  const probe = NetProbe.open({ programs: { state: false, icmp: false } })
  t.teardown(() => probe.close())
  const open = await listeningPorts('tcp')
  const recs = await recordsDuring(probe.ringFd, async () => await nmap({ type: '-sS', ports: '1-500', source: '127.0.0.75' }), read)
  const mine = recs.filter(r => r.raddr === '127.0.0.75')
  const closed = [...Array(500).keys()].map(i => i + 1).filter(p => !open.has(p))
  t.same(mine.map(r => r.lport).sort((a, b) => a - b), closed, 'one record per closed port')
  t.ok(mine.every(r => r.count === 0), 'none of them a summary')
})

t.test('flush: the repeats of a window still open are summarised when capture stops', async t => {
  if (!requireReal(t, { bpf: true })) return
  const probe = NetProbe.open({ foldWindowMs: 60_000 })
  t.teardown(() => probe.close())
  const port = await closedPort()
  const recs = await recordsDuring(probe.ringFd, async () => {
    await storm('127.0.0.76', port, 300)
    probe.sweep()
  }, read)
  const resets = (rs: Rec[]): Rec[] => rs.filter(r => r.kind === KIND.NET_RESET && r.raddr === '127.0.0.76' && r.lport === port)
  t.equal(resets(recs).length, 1, 'within its 60 s window the sweep leaves the repeats folded')
  const flushed = await recordsDuring(probe.ringFd, async () => { probe.flush() }, read)
  t.equal(events(resets(recs)) + events(resets(flushed)), 300, 'flush summarises the rest')
  t.equal(resets(flushed).length, 1)
})

t.test('real scans and a storm seen by two probes at once, folding on and off: the same findings', async t => {
  if (!requireReal(t, { bpf: true, commands: ['nmap'] })) return
  const probes = { on: NetProbe.open(), off: NetProbe.open({ foldWindowMs: 0 }) }
  t.teardown(() => { probes.on.close(); probes.off.close() })
  const rings = { on: openRing(probes.on.ringFd), off: openRing(probes.off.ringFd) }
  t.teardown(() => { rings.on.close(); rings.off.close() })
  const slab = new SharedArrayBuffer(8 << 20)
  const drain = (k: 'on' | 'off'): Uint8Array => {
    const parts: Uint8Array[] = []
    for (;;) {
      const r = rings[k].drain(slab, 0, slab.byteLength, 10)
      if (r.records === 0) break
      parts.push(new Uint8Array(slab, 0, r.bytes).slice())
    }
    return Buffer.concat(parts)
  }
  drain('on'); drain('off')
  await nmap({ type: '-sS', ports: '1-1000', source: '127.0.0.77' })
  await nmap({ type: '-sU', ports: '1-100', source: '127.0.0.78' })
  await storm('127.0.0.79', await closedPort(), 1000)
  await new Promise(resolve => setTimeout(resolve, 1100))
  probes.on.flush()
  const src = { hostId: 'fold-kernel', hostname: 'fold-kernel', agentVersion: 'test' }
  const shared = { metadata: makeMetadata(src), device: makeDevice(src) }
  const dir = rulesDir(FOLD_RULES)
  t.teardown(dir.cleanup)
  const now = Date.now() + 1000
  const found: Record<string, string[]> = {}
  const records: Record<string, Array<Record<string, unknown>>> = {}
  for (const k of ['on', 'off'] as const) {
    const env = { ...probes[k].decodeInfo, bootToWallNs: bootToWallNs() }
    const { res, objects } = leanDecode(drain(k), env, shared)
    t.equal(res.errors, 0, `folding ${k}: every record decodes`)
    records[k] = objects as unknown as Array<Record<string, unknown>>
    const rig = new EngineRig(dir.dir)
    for (let i = 0; i < objects.length; i += 500) rig.sendBatch(src.hostId, pack(objects.slice(i, i + 500)), now)
    rig.tick(now + 2000)
    found[k] = outcome(rig)
  }
  const mine = (k: string, ip: string): Array<Record<string, unknown>> => records[k].filter(r => (r.src_endpoint as { ip?: string } | undefined)?.ip === ip)
  t.comment(`folding on: ${records.on.length} records, off: ${records.off.length}`)
  t.ok(mine('on', '127.0.0.79').length < 20 && mine('off', '127.0.0.79').length >= 1000, 'the storm folded')
  t.equal(eventsIn(mine('on', '127.0.0.79')), eventsIn(mine('off', '127.0.0.79')), 'and its events all counted')
  for (const ip of ['127.0.0.77', '127.0.0.78', '127.0.0.79']) t.ok(found.off.some(f => f.includes(ip)), `a finding for ${ip}`)
  t.same(found.on, found.off, 'the same findings, with folding on and off')
})
