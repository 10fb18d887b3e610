import t from 'tap'
import { StatSlab } from '../../backend/detection/stat-slab.js'

t.test('a slab gives slots, takes them back for reuse, and grows past its first arrays', async t => {
  const s = new StatSlab()
  const slots = Array.from({ length: 1000 }, (_, i) => s.alloc(1_800_000_000_000 + i, 1_800_000_000_000 + i, 1))
  t.equal(new Set(slots).size, 1000, 'distinct slots')
  t.equal(s.size, 1000)
  s.add(slots[999], 1_800_000_000_999 + 5, 3)
  s.add(slots[999], 1_800_000_000_000, 1)
  t.same(s.stat(slots[999]), { first: 1_800_000_000_000, last: 1_800_000_001_004, count: 5 }, 'times kept whole past the grow')
  s.release(slots[10])
  s.release(slots[20])
  t.equal(s.size, 998)
  t.same([s.alloc(1, 1, 1), s.alloc(2, 2, 1)].sort((a, b) => a - b), [slots[10], slots[20]], 'freed slots are reused first')
  t.equal(s.first.length, 1024, 'no growth while free slots remain')
})

t.test('evidence by slot: kept whole, gone with its slot', async t => {
  const s = new StatSlab()
  const ev = { t: 1_800_000_000_123, rt: NaN, host: 'h', hostname: 'web-1', dtype: -1, sip: '198.51.100.7', sport: 40000, dip: '10.0.0.1', dport: 22, act: 5, cls: 4001, proto: 6, dir: 1 }
  const far = Array.from({ length: 600 }, () => s.alloc(0, 0, 1))
  s.evidence.put(far[599], ev)
  t.ok(s.evidence.has(far[599]))
  t.notOk(s.evidence.has(far[0]))
  t.same(s.evidence.get(far[599], 'h'), ev)
  s.release(far[599])
  t.notOk(s.evidence.has(far[599]), 'released with its slot')
})

t.test('a DNS record\'s evidence keeps its query name', async t => {
  const s = new StatSlab()
  const i = s.alloc(0, 0, 1)
  const ev = { t: 1_800_000_000_123, rt: NaN, host: 'h', hostname: 'web-1', dtype: -1, sip: '10.0.0.2', sport: 40000, dip: '10.0.0.53', dport: 53, act: 1, cls: 4003, proto: 17, dir: 2, qname: 'a.example.com' }
  s.evidence.put(i, ev)
  t.same(s.evidence.get(i, 'h'), ev)
  s.release(i)
  t.notOk(s.evidence.has(i))
})
