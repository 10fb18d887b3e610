import t from 'tap'
import { NET_EVENT } from '../../bpf/abi.js'
import { kernelDrops, NetProbe, openRing } from '../../bpf/index.js'
import { requireReal } from '../helpers/env.js'
import { nmap } from '../helpers/scan.js'

// Drops are counted, never hidden: a deliberately tiny ring flooded by a scan
// while nobody drains must report reservation failures, and what user space
// receives plus what the kernel dropped must equal what the kernel emitted.

t.test('a tiny ring flooded by a scan counts its drops exactly', async t => {
  if (!requireReal(t, { bpf: true, commands: ['nmap'] })) return
  const probe = NetProbe.open({ ringBytes: 4096, wakeupBytes: 1 << 30, programs: { state: false, icmp: false }, foldWindowMs: 0 })
  t.teardown(() => probe.close())
  const ring = openRing(probe.ringFd)
  t.teardown(() => ring.close())
  const slab = new SharedArrayBuffer(1 << 20)
  while (ring.drain(slab, 0, slab.byteLength, 0).records > 0) { /* empty the ring of anything before the scan */ }
  const before = probe.counters()
  let received = 0
  // nobody drains while nmap floods: 1000 RSTs into a ring that holds ~36
  await nmap({ type: '-sS', ports: '1-1000', source: '127.0.0.69' })
  for (;;) {
    const r = ring.drain(slab, 0, slab.byteLength, 10)
    if (r.records === 0) break
    received += r.records
  }
  const after = probe.counters()
  const matched = after.reset.matched - before.reset.matched
  const dropped = kernelDrops(after) - kernelDrops(before)
  t.ok(matched >= 1000, `kernel emitted ${matched} reset events`)
  t.ok(dropped > 0, `drops counted: ${dropped}`)
  t.ok(received > 0 && received < 100, `a small ring holds few records: received ${received}`)
  t.equal(received + dropped, matched, 'received + dropped = emitted')
})

t.test('a ring large enough loses nothing and the counters agree', async t => {
  if (!requireReal(t, { bpf: true, commands: ['nmap'] })) return
  const probe = NetProbe.open({ programs: { state: false, icmp: false }, foldWindowMs: 0 })
  t.teardown(() => probe.close())
  const ring = openRing(probe.ringFd)
  t.teardown(() => ring.close())
  const slab = new SharedArrayBuffer(1 << 20)
  while (ring.drain(slab, 0, slab.byteLength, 0).records > 0) { /* empty */ }
  const before = probe.counters()
  await nmap({ type: '-sS', ports: '1-500', source: '127.0.0.70' })
  let received = 0
  let ragged = 0
  for (;;) {
    const r = ring.drain(slab, 0, 4096, 10) // small regions: records that don't fit stay for the next call
    if (r.records === 0) break
    if (r.bytes !== r.records * NET_EVENT.SIZEOF) ragged++
    received += r.records
  }
  t.equal(ragged, 0, 'every drain returns whole records only')
  const after = probe.counters()
  t.equal(kernelDrops(after) - kernelDrops(before), 0, 'no drops')
  t.equal(received, after.reset.matched - before.reset.matched, 'every emitted record received')
  t.ok(received >= 500)
})
