import t from 'tap'
import { packValue } from '../../shared/codec.js'
import { expandRecord, type LeanContext } from '../../shared/ocsf/lean.js'
import { Projector, RecordError, ScanError } from '../../backend/detection/projector.js'
import { RecordChecks } from '../../backend/detection/field-checks.js'
import { Prng } from '../../scripts/injector/prng.js'
import { cell, get } from './helpers/cells.js'

// The projector reads lean records ([shape, v1, ...] described by the
// batch's context) and merges the context's shared fields into each row. The
// meaning of a lean batch is what expandRecord (shared/ocsf/lean.ts) makes
// of it: the columns must hold exactly the values of the expanded records,
// for every mix of lean and full-form records, and a context that does not
// describe its records is refused with a ScanError that says what is wrong.

const LIM = { maxStringBytes: 4096, maxDepth: 16, maxRecords: 100_000 }
const NOW = Date.now()

/** What the projector should hold for an expanded value: a map it walks into is MAP, other containers OTHER. */
function want (v: unknown, path: string, paths: readonly string[]): unknown {
  if (v === null || typeof v !== 'object') return v
  if (Array.isArray(v) || v instanceof Uint8Array) return 'OTHER'
  return paths.some(q => q.startsWith(path + '.')) ? 'MAP' : 'OTHER'
}

/** Scan the batch and compare every projected path of every row with expandRecord: what differs. */
function differences (paths: string[], ctx: LeanContext | undefined, records: unknown[]): string[] {
  const p = new Projector(paths, 2)
  const n = p.scan(packValue(records), LIM, NOW, ctx !== undefined ? packValue(ctx) : undefined)
  const bad: string[] = n === records.length ? [] : [`${n} rows for ${records.length} records`]
  records.forEach((rec, r) => {
    const full = expandRecord(ctx ?? {}, rec)
    paths.forEach((path, s) => {
      const w = want(get(full, path), path, paths)
      const g = cell(p, r, s)
      if (w !== g) bad.push(`row ${r} ${path}: projected ${String(g)}, expanded ${String(w)}`)
    })
  })
  return bad
}

const DEVICE = { type_id: 1, type: 'Server', hostname: 'web-1', uid: 'host-a', ip: '10.0.0.5' }
const METADATA = { version: '1.8.0', product: { name: 'Picket', vendor_name: 'Picket', version: '0.1.0' }, log_name: 'picket.net' }
const PATHS = ['time', 'class_uid', 'device.uid', 'device.hostname', 'device.ip', 'metadata.product.name', 'metadata.product.vendor_name', 'metadata.version', 'src_endpoint.ip', 'src_endpoint.port', 'unmapped', 'device', 'metadata.product']

t.test('shared fields are merged as expandRecord merges them', async t => {
  const ctx: LeanContext = {
    shared: { metadata: METADATA, device: DEVICE },
    shapes: [
      ['class_uid', 'time', 'src_endpoint.ip', 'src_endpoint.port'],
      ['class_uid', 'time', 'device.ip'],
      ['class_uid', 'metadata.product.version'],
      ['device'],
      ['metadata.version', 'unmapped', 'src_endpoint'],
    ],
  }
  const records: unknown[] = [
    [0, 4001, NOW, '198.51.100.7', 40000],
    [0, 4001, NOW, null, 40001],
    [0, 4001],
    [1, 4001, NOW, '10.9.9.9'],
    [1, 4001, NOW, null],
    [2, 4001, '9.9'],
    [3, 'not a device'],
    [3, { uid: 'host-a', extra: 1 }],
    [3, null],
    [3, [1, 2]],
    [4, '1.7.0', { x: 1 }, { ip: '203.0.113.1', port: 9 }],
    [4, null, [1], { port: 10 }],
    { class_uid: 4001, device: { ip: '10.1.1.1' } },
    { class_uid: 4001, device: null, metadata: { product: { name: 'Other' } } },
    { class_uid: 4001, device: { uid: null } },
    { time: NOW },
  ]
  t.same(differences(PATHS, ctx, records), [], 'every field of every row is what expandRecord gives')
  t.same(differences(PATHS, undefined, records.filter(r => !Array.isArray(r))), [], 'the same for full-form records without a context')
})

t.test('random batches: lean and full records over random shared fields agree with expandRecord', async t => {
  const rng = new Prng(12)
  const keys = ['a', 'b', 'c']
  const paths: string[] = []
  for (const x of keys) {
    paths.push(x)
    for (const y of keys) {
      paths.push(`${x}.${y}`)
      for (const z of keys) paths.push(`${x}.${y}.${z}`)
    }
  }
  const scalar = (): unknown => [1, 'two', true, false, null, 3.5, [1], { } as unknown][rng.int(8)]
  const object = (depth: number): Record<string, unknown> => {
    const o: Record<string, unknown> = {}
    for (const k of keys) {
      if (rng.int(3) === 0) continue
      o[k] = depth < 3 && rng.int(2) === 0 ? object(depth + 1) : scalar()
    }
    return o
  }
  let checked = 0
  const bad: string[] = []
  for (let round = 0; round < 150; round++) {
    const shapes: string[][] = []
    for (let s = 0; s < 3; s++) {
      // leaves of a random object: never one path inside another
      const leaves: string[] = []
      const walk = (o: Record<string, unknown>, prefix: string): void => {
        for (const [k, v] of Object.entries(o)) {
          const path = prefix === '' ? k : `${prefix}.${k}`
          if (v !== null && typeof v === 'object' && !Array.isArray(v) && rng.int(3) > 0 && Object.keys(v).length > 0) walk(v as Record<string, unknown>, path)
          else leaves.push(path)
        }
      }
      walk(object(1), '')
      shapes.push(leaves)
    }
    const ctx: LeanContext = { shapes, ...(rng.int(4) > 0 ? { shared: object(1) } : {}) }
    const records: unknown[] = Array.from({ length: 8 }, () => {
      if (rng.int(4) === 0) return object(1)
      const s = rng.int(shapes.length)
      const n = rng.int(shapes[s].length + 1)
      return [s, ...Array.from({ length: n }, () => rng.int(3) === 0 ? object(2) : scalar())]
    })
    bad.push(...differences(paths, ctx, records).map(d => `round ${round}: ${d}`))
    checked += records.length
  }
  t.same(bad.slice(0, 20), [], `${checked} random records, each field as expandRecord gives it`)
})

function refusal (ctx: unknown, records: unknown, limits = LIM): string {
  const p = new Projector(PATHS)
  try {
    p.scan(packValue(records), limits, NOW, Buffer.isBuffer(ctx) ? ctx : packValue(ctx))
  } catch (err) {
    if (!(err instanceof ScanError)) return `not a ScanError: ${String(err)}`
    return `${err instanceof RecordError ? 'RecordError' : err.limit ?? 'decode'}: ${err.message}`
  }
  return 'accepted'
}

t.test('a context that does not describe its records is refused, saying what is wrong', async t => {
  const shapes = [['class_uid', 'time']]
  const ok: unknown[] = [[0, 4001, NOW]]
  t.equal(refusal({ shapes }, ok), 'accepted')
  t.equal(refusal({ shapes, other: { future: 1 } }, ok), 'accepted', 'keys other than shared and shapes are skipped, as expandRecord skips them')
  const cases: Array<[string, unknown, unknown, RegExp]> = [
    ['a context that is not a map', [shapes], ok, /^decode: context is an array, not a msgpack map/],
    ['shared that is not a map', { shared: 'device', shapes }, ok, /^decode: context\.shared is a string, not a map/],
    ['shapes that are not an array', { shapes: { 0: ['time'] } }, ok, /^decode: context\.shapes is a map, not an array of shapes/],
    ['a shape that is not an array', { shapes: ['time'] }, ok, /^decode: context\.shapes\[0\] is a string, not an array of OCSF field paths/],
    ['a path that is not a string', { shapes: [['time', 7]] }, ok, /^decode: context\.shapes\[0\]\[1\] is a number, not a field path string/],
    ['a path into a prototype', { shapes: [['class_uid', '__proto__.polluted']] }, ok, /^decode: context\.shapes\[0\]\[1\]: field path '__proto__\.polluted' names '__proto__', which is no OCSF field/],
    ['a path with an empty segment', { shapes: [['class_uid', 'device..uid']] }, ok, /^decode: context\.shapes\[0\]\[1\]: field path 'device\.\.uid' has an empty segment/],
    ['an empty path', { shapes: [['']] }, [[0, 1]], /^decode: context\.shapes\[0\]\[0\]: a field path must be a non-empty string/],
    ['a path named twice', { shapes: [['time', 'time']] }, ok, /^decode: context\.shapes\[0\] names 'time' twice/],
    ['a path inside another', { shapes: [['device', 'device.uid']] }, ok, /^decode: context\.shapes\[0\] names both 'device' and 'device\.uid'/],
    ['a shape index not in the context', { shapes }, [[0, 4001, NOW], [1, 4001]], /^decode: record 1 has shape 1, but the batch's context lists 1 shape; send the shapes/],
    ['more values than the shape has paths', { shapes }, [[0, 4001, NOW, 'extra']], /^decode: record 0 has 3 values for the 2 fields of its shape 0; a lean record holds at most one value per field/],
    ['an empty lean record', { shapes }, [[]], /^decode: record 0 is an empty array; a lean record is \[shape, value, \.\.\.\]/],
    ['a shape index that is a string', { shapes }, [['0', 4001]], /^decode: record 0 is an array that starts with a string; a lean record starts with its shape's index/],
    ['a negative shape index', { shapes }, [[-1, 4001]], /^decode: record 0 is an array that starts with a number; a lean record starts with its shape's index/],
    ['a key named twice', Buffer.from([0x82, 0xa6, ...Buffer.from('shapes'), 0x90, 0xa6, ...Buffer.from('shapes'), 0x90]), ok, /^decode: context names 'shapes' twice/],
    ['bytes after the map', Buffer.concat([packValue({ shapes }), Buffer.from([0xc0])]), ok, /^decode: context has 1 bytes after its map/],
    ['a truncated context', packValue({ shapes }).subarray(0, 8), ok, /^decode: context is truncated/],
    ['a context key that is not a string', Buffer.from([0x81, 0x01, 0x90]), ok, /^decode: context has a key that is a number; its keys are the strings shared and shapes/],
    ['a long path', { shapes: [['x'.repeat(200)]] }, ok, /^max_string_bytes: a string of 200 bytes is over max_string_bytes 100/],
    ['a deep shared object', { shared: { a: { b: { c: { d: 1 } } } }, shapes }, ok, /^max_depth: context nest 4 levels deep, over max_depth 3/],
  ]
  for (const [what, ctx, records, re] of cases) {
    const lim = what === 'a long path' ? { ...LIM, maxStringBytes: 100 } : what === 'a deep shared object' ? { ...LIM, maxDepth: 3 } : LIM
    t.match(refusal(ctx, records, lim), re, what)
  }
  t.match(refusal({ shapes: Array.from({ length: 5000 }, () => []) }, ok), /^decode: context\.shapes lists 5000 shapes, over 4096/, 'a bounded number of shapes')
  t.match(refusal({ shapes: Array.from({ length: 20 }, (_, i) => Array.from({ length: 1000 }, (_, j) => `f${i}_${j}`)) }, ok), /^decode: context\.shapes lists more than 16384 field paths/, 'a bounded number of paths')
  // random bytes as a context: only ScanError, never another exception or a hang
  const rng = new Prng(5)
  for (let i = 0; i < 2000; i++) {
    const buf = Buffer.from(Array.from({ length: 1 + rng.int(48) }, () => rng.int(256)))
    if (rng.int(2) === 0) buf[0] = 0x80 | rng.int(3)
    const r = refusal(buf, ok)
    if (r.startsWith('not a ScanError')) t.fail(`random context: ${r}`)
  }
  t.pass('random contexts handled')
})

t.test('a record of a class no rule reads keeps only the base fields, and none of its other fields is checked', async t => {
  const paths = ['time', 'class_uid', 'device.uid', 'src_endpoint.ip', 'dst_endpoint.port', 'process.name']
  const checks = new RecordChecks(paths)
  const p = new Projector(paths, 4, checks, { base: [0, 1, 2], classes: [{ uid: 4001, slots: [3, 4] }], classSlot: 1 })
  const ctx = packValue({ shared: { device: { uid: 'h' } }, shapes: [['class_uid', 'time', 'src_endpoint.ip', 'dst_endpoint.port', 'process.name']] })
  const records = [
    [0, 4001, NOW, '198.51.100.1', 22, 'sshd'],
    [0, 1007, NOW, 'not-an-ip', 99999, 'bash'],
    { class_uid: 1007, time: NOW, src_endpoint: { ip: 'not-an-ip' }, process: { name: 'sh' } },
    { class_uid: 4001, time: NOW, src_endpoint: { ip: '198.51.100.2' }, process: { name: 'nc' } },
  ]
  t.equal(p.scan(packValue(records), LIM, NOW, ctx), 4, 'values no rule of their class reads are not checked')
  t.same([0, 1, 2, 3].map(r => p.cols.cls[r]), [0, -1, -1, 0], 'each row knows its class among the routed ones')
  t.same([0, 1, 2, 3, 4, 5].map(s => cell(p, 0, s)), [NOW, 4001, 'h', '198.51.100.1', 22, undefined], 'a network row keeps the network fields, not process.name')
  t.same([0, 1, 2, 3, 4, 5].map(s => cell(p, 1, s)), [NOW, 1007, 'h', undefined, undefined, undefined], 'a process row keeps only the base fields')
  t.same([0, 1, 2, 3, 4, 5].map(s => cell(p, 2, s)), [NOW, 1007, 'h', undefined, undefined, undefined], 'the same for a full-form process record (the shared device applies to it too)')
  t.same([0, 1, 2, 3, 4, 5].map(s => cell(p, 3, s)), [NOW, 4001, 'h', '198.51.100.2', undefined, undefined])
  t.throws(() => p.scan(packValue([[0, 4001, NOW, 'not-an-ip']]), LIM, NOW, ctx), { name: 'RecordError', message: /^record 0: src_endpoint\.ip 'not-an-ip' is not an IPv4 or IPv6 address/ }, 'the class that reads a field still checks it')
  t.throws(() => p.scan(packValue([[0, 1007, 1]]), LIM, NOW, ctx), { name: 'RecordError', message: /^record 0: time 1 / }, 'the base fields are checked whatever the class')
})
