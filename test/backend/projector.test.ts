import t from 'tap'
import { Packr } from 'msgpackr'
import { packRecords, unpackRecords, unpackValue } from '../../shared/codec.js'
import { expandRecord, type LeanContext } from '../../shared/ocsf/lean.js'
import { Projector, ScanError } from '../../backend/detection/projector.js'
import { cell, get } from './helpers/cells.js'
import { Prng } from '../../scripts/injector/prng.js'
import { buildPlan } from '../../scripts/injector/plan.js'

// The projector reads only the fields the rules need, without a full
// decode. It must agree with msgpackr on every value it reads, and enforce
// the limits on everything it skips.

const LIM = { maxStringBytes: 4096, maxDepth: 16, maxRecords: 100_000 }
const NOW = Date.now()

for (const wire of ['lean', 'full'] as const) {
  t.test(`agrees with expandRecord on injector records (real OCSF network_activity, ${wire} form)`, async t => {
    const plan = buildPlan({ hosts: 3, ports: 50, benign: 300, sources: 2, seed: 9, batchSize: 1000, wire })
    const paths = ['time', 'class_uid', 'activity_id', 'device.uid', 'device.hostname', 'src_endpoint.ip', 'src_endpoint.port', 'dst_endpoint.ip',
      'dst_endpoint.port', 'connection_info.protocol_num', 'connection_info.direction_id', 'status_detail', 'is_src_dst_assignment_known', 'metadata.product.name', 'nope.nothing', 'duration']
    const p = new Projector(paths, 4)
    let rows = 0
    for (const h of plan.hosts) {
      h.batches.forEach((b, i) => {
        const context = h.contexts[i]
        const n = p.scan(b, LIM, NOW, context)
        const ctx = (context.byteLength > 0 ? unpackValue(context) : {}) as LeanContext
        const full = unpackRecords(b).map(r => expandRecord(ctx, r))
        t.equal(n, full.length)
        for (let r = 0; r < n; r++) {
          for (let s = 0; s < paths.length; s++) {
            const want = get(full[r], paths[s])
            const got = cell(p, r, s)
            if (want !== got) t.fail(`row ${r} ${paths[s]}: ${String(got)} != ${String(want)}`)
          }
          rows++
        }
      })
    }
    t.equal(rows, 3 * 50 + 300)
    t.pass(`${rows} rows x ${paths.length} fields agree`)
  })
}

t.test('every msgpack type: read when projected, skipped when not', async t => {
  const p = new Projector(['a', 'b.c', 'big', 'neg', 'f32', 'f64', 'nil', 't', 'f', 's8', 's16', 'arr', 'obj', 'u64', 'i64', 'bin'])
  const packr = new Packr({ useRecords: false, useFloat32: 1 })
  const rec = {
    x: { deep: [1, 2, { y: 'z' }], bin: Buffer.from([1, 2, 3]) },
    a: 7,
    b: { c: 'see', d: 1 },
    big: 70000,
    neg: -3,
    f32: 1.5,
    f64: 0.1,
    nil: null,
    t: true,
    f: false,
    s8: 's'.repeat(40),
    s16: 'w'.repeat(300),
    arr: [1, 2],
    obj: { k: 1 },
    u64: 2 ** 40,
    i64: -(2 ** 40),
    bin: Buffer.from('abc'),
    ext: new Date(0),
  }
  const bytes = packr.pack([rec, { a: 'not a number' }])
  t.equal(p.scan(bytes, LIM, NOW), 2)
  t.same([...Array(16).keys()].map(s => cell(p, 0, s)), [7, 'see', 70000, -3, 1.5, Math.fround(0.1), null, true, false, 's'.repeat(40), 'w'.repeat(300), 'OTHER', 'OTHER', 2 ** 40, -(2 ** 40), 'OTHER'])
  t.equal(cell(p, 1, 0), 'not a number')
  t.equal(cell(p, 1, 1), undefined, 'absent fields are absent, not left over from the previous row')
  p.scan(packRecords([{ f64: 0.1, big: -70000, neg: -200 }]), LIM, NOW)
  t.same([cell(p, 0, 5), cell(p, 0, 2), cell(p, 0, 3)], [0.1, -70000, -200], 'float64, int32, int16 as the codec writes them')
})

t.test('a record that is neither a map nor a lean record is refused, with its index and what it is', async t => {
  const p = new Projector(['a'])
  for (const [rec, what] of [[5, 'a number'], ['x', 'a string'], [null, 'nil'], [true, 'a boolean'], [Buffer.from('b'), 'binary']] as const) {
    t.throws(() => p.scan(packRecords([{ a: 1 }, rec as unknown as object]), LIM, NOW), { name: 'RecordError', record: 1, message: `record 1: the record is ${what}, not a map or a lean record [shape, value, ...]; each record is one OCSF object` })
  }
  t.throws(() => p.scan(packRecords([{ a: 1 }, [1]]), LIM, NOW), { name: 'ScanError', message: "record 1 has shape 1, but the batch's context lists 0 shapes; send the shapes a batch's records use in that batch's context" }, 'an array is a lean record: without a context it has no shape')
})

function limitOf (f: () => unknown): string | undefined {
  try { f() } catch (err) { return err instanceof ScanError ? err.limit ?? 'none' : `not a ScanError: ${String(err)}` }
  return 'no error'
}

t.test('limits: string length, nesting depth, record count', async t => {
  const p = new Projector(['a'])
  const str = packRecords([{ a: 1, b: { c: 'x'.repeat(101) } }])
  t.equal(limitOf(() => p.scan(str, { ...LIM, maxStringBytes: 100 }, NOW)), 'max_string_bytes', 'a skipped string counts too')
  t.equal(p.scan(str, { ...LIM, maxStringBytes: 101 }, NOW), 1)
  const key = packRecords([{ ['k'.repeat(200)]: 1 }])
  t.equal(limitOf(() => p.scan(key, { ...LIM, maxStringBytes: 100 }, NOW)), 'max_string_bytes', 'keys count')
  const deep = packRecords([{ a: { b: { c: [1, [2]] } } }])
  t.equal(limitOf(() => p.scan(deep, { ...LIM, maxDepth: 4 }, NOW)), 'max_depth')
  t.equal(p.scan(deep, { ...LIM, maxDepth: 5 }, NOW), 1, 'record 1, a 2, b 3, c 4, inner array 5')
  const many = packRecords(Array.from({ length: 11 }, () => ({ a: 1 })))
  t.equal(limitOf(() => p.scan(many, { ...LIM, maxRecords: 10 }, NOW)), 'max_records')
})

t.test('malformed input is refused, never read past its end', async t => {
  const p = new Projector(['a', 'b'])
  const good = packRecords([{ a: 1, b: 'two' }, { a: 3 }])
  t.equal(p.scan(good, LIM, NOW), 2)
  for (let cut = 1; cut < good.length; cut++) {
    t.throws(() => p.scan(good.subarray(0, cut), LIM, NOW), { name: 'ScanError' }, `truncated at ${cut}`)
  }
  t.throws(() => p.scan(Buffer.concat([good, Buffer.from([0xc0])]), LIM, NOW), /after its last record/)
  t.throws(() => p.scan(Buffer.from([0x81, 0xa1, 0x61, 0x01]), LIM, NOW), /not a msgpack array/)
  t.throws(() => p.scan(Buffer.from([0x91, 0x81, 0xa1, 0x61, 0xc1]), LIM, NOW), /invalid msgpack byte 0xc1/)
  t.throws(() => p.scan(new Uint8Array(0), LIM, NOW), /empty/)
  t.equal(limitOf(() => p.scan(Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff]), LIM, NOW)), 'max_records', 'a huge array header')
  t.throws(() => p.scan(Buffer.from([0x91, 0xdf, 0x7f, 0xff, 0xff, 0xff]), LIM, NOW), { name: 'ScanError' }, 'a huge map header over few bytes')
  // random bytes: only ScanError, never another exception or a hang
  const rng = new Prng(3)
  for (let i = 0; i < 2000; i++) {
    const buf = Buffer.from(Array.from({ length: 1 + rng.int(64) }, () => rng.int(256)))
    buf[0] = 0x90 | (rng.int(4))
    try { p.scan(buf, LIM, NOW) } catch (err) { if (!(err instanceof ScanError)) t.fail(`random input threw ${(err as Error).name}: ${(err as Error).message}`) }
  }
  t.pass('random inputs handled')
})
