import t from 'tap'
import { spawn } from 'node:child_process'
import { closeSync, existsSync, openSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import pino from 'pino'
import { crc32, crc32Js } from '../../agent/crc32.js'
import { Spool, type Eviction } from '../../agent/ship/spool.js'
import { isPicketError } from '../../shared/errors.js'
import { rootPath } from '../../shared/paths.js'

// The disk spool: append-only checksummed segments, acks in any order,
// a torn tail cut off at open, a bound kept by evicting the oldest segment,
// and nothing lost to SIGKILL once append() returned.

function logSink (): { log: pino.Logger, lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({ write (chunk: Buffer, _enc, cb) { lines.push(JSON.parse(String(chunk))); cb() } })
  return { log: pino({ level: 'debug' }, stream), lines }
}

function payload (seq: number, size = 100): Buffer {
  const b = Buffer.alloc(size, seq & 0xff)
  b.writeUInt32LE(seq, 0)
  return b
}

function segments (dir: string): string[] {
  return readdirSync(dir).filter(n => n.startsWith('seg-')).sort()
}

t.test('crc32: zlib and the fallback agree', async t => {
  const data = Buffer.from('The quick brown fox jumps over the lazy dog')
  t.equal(crc32Js(data), 0x414fa339, 'known IEEE value')
  t.equal(crc32(data), 0x414fa339)
  t.equal(crc32Js(data.subarray(10), crc32Js(data.subarray(0, 10))), 0x414fa339, 'incremental')
})

t.test('append, read back, ack in any order; seq starts at 1 and survives a restart', async t => {
  const dir = t.testdir()
  const { log } = logSink()
  let s = Spool.open({ dir, maxBytes: 1 << 20, segmentBytes: 64 << 10, log })
  t.equal(s.nextSeq, 1)
  for (let i = 1; i <= 5; i++) t.equal(s.append(payload(i), i * 10, 1000 + i).seq, i)
  t.same(s.read(3), { seq: 3, count: 30, createdMs: 1003, records: payload(3) })
  t.equal(s.nextPending(1), 1)
  s.ack(3); s.ack(1)
  t.equal(s.ackedThrough, 1, 'the watermark only covers the contiguous prefix')
  t.equal(s.nextPending(2), 2)
  t.equal(s.nextPending(3), 4, 'acked batches are skipped')
  t.equal(s.read(3), undefined, 'an acked batch is not read again')
  t.equal(s.ack(3), false, 'a second ack is a no-op')
  s.ack(2)
  t.equal(s.ackedThrough, 3)
  t.match(s.stats(), { pendingBatches: 2, pendingRecords: 90 })
  s.close()
  t.ok(existsSync(join(dir, 'acked')), 'the watermark is written at close')
  t.notOk(existsSync(join(dir, 'lock')), 'the lock is released')

  s = Spool.open({ dir, maxBytes: 1 << 20, segmentBytes: 64 << 10, log })
  t.equal(s.nextSeq, 6, 'seq continues after a restart')
  t.equal(s.firstPending(), 4, 'replay starts at the first unacked batch')
  t.same(s.read(4), { seq: 4, count: 40, createdMs: 1004, records: payload(4) }, 'read back from disk after the restart')
  t.same(s.read(5)?.records, payload(5))
  t.equal(s.append(payload(6), 1).seq, 6)
  s.ack(4); s.ack(5); s.ack(6)
  t.match(s.stats(), { pendingBatches: 0, pendingRecords: 0, ackedThrough: 6 })
  s.close()
  s = Spool.open({ dir, maxBytes: 1 << 20, segmentBytes: 64 << 10, log })
  t.equal(s.nextSeq, 7, 'a fully acked spool still knows the next seq')
  t.equal(s.firstPending(), 7)
  s.close()
})

t.test('segments roll at their size; a segment wholly acked is deleted', async t => {
  const dir = t.testdir()
  const { log } = logSink()
  const s = Spool.open({ dir, maxBytes: 1 << 20, segmentBytes: 4096, log })
  for (let i = 1; i <= 40; i++) s.append(payload(i, 1000), 1)
  const segs = segments(dir)
  t.ok(segs.length >= 10, `${segs.length} segments of ~4 KiB`)
  t.equal(segs[0], 'seg-00000000000000000001.pks', 'named by their first seq')
  for (const n of segs) t.ok(statSync(join(dir, n)).size <= 4096 + 1040, `${n} stays near its size`)
  for (let i = 1; i <= 20; i++) s.ack(i)
  await new Promise(resolve => setTimeout(resolve, 50)) // deletion runs off the main thread
  const left = segments(dir)
  t.ok(left.length < segs.length, `acked segments deleted (${segs.length} → ${left.length})`)
  t.ok(Number(left[0].slice(4, 24)) <= 21, 'the segment holding seq 21 stays')
  t.equal(s.stats().segments, left.length)
  s.close()
})

t.test('on-disk format: header, frames and checksums as documented', async t => {
  const dir = t.testdir()
  const { log } = logSink()
  let s = Spool.open({ dir, maxBytes: 1 << 20, segmentBytes: 1 << 16, log })
  s.append(Buffer.from('hello'), 7, 1234, { context: Buffer.from('ctx') })
  s.close()
  const b = readFileSync(join(dir, segments(dir)[0]))
  t.equal(b.subarray(0, 8).toString('latin1'), 'PKSPSEG2')
  t.equal(b.readBigUInt64LE(8), 1n, 'first seq in the header')
  const f = b.subarray(16)
  t.equal(f.readUInt32LE(0), 0x46534b50, 'frame magic')
  t.equal(f.readUInt32LE(4), 8, 'payload length: context and records')
  t.equal(f.readUInt32LE(8), 7, 'record count')
  t.equal(f.readBigUInt64LE(16), 1n, 'seq')
  t.equal(f.readBigUInt64LE(24), 1234n, 'created ms')
  t.equal(f.readUInt32LE(32), 3, 'context length')
  t.equal(f.readUInt32LE(36), 0)
  t.equal(f.subarray(40).toString(), 'ctxhello', 'the context, then the records')
  const crc = crc32(f.subarray(16, 40), crc32(f.subarray(0, 12), crc32(f.subarray(40))))
  t.equal(f.readUInt32LE(12), crc, 'crc32 over the payload, then the header without the crc')
  s = Spool.open({ dir, maxBytes: 1 << 20, segmentBytes: 1 << 16, log })
  t.same(s.read(1), { seq: 1, count: 7, createdMs: 1234, records: Buffer.from('hello'), context: Buffer.from('ctx') }, 'read back from disk with its context')
  s.close()
})

/** A segment as the spool wrote it before the lean wire (format 1: 32-byte frame headers, no context). */
function segmentV1 (firstSeq: number, frames: Array<{ records: Buffer, count: number, createdMs: number }>): Buffer {
  const parts = [Buffer.from('PKSPSEG1', 'latin1'), Buffer.alloc(8)]
  parts[1].writeBigUInt64LE(BigInt(firstSeq))
  frames.forEach((fr, i) => {
    const h = Buffer.alloc(32)
    h.writeUInt32LE(0x46534b50, 0)
    h.writeUInt32LE(fr.records.length, 4)
    h.writeUInt32LE(fr.count, 8)
    h.writeBigUInt64LE(BigInt(firstSeq + i), 16)
    h.writeBigUInt64LE(BigInt(fr.createdMs), 24)
    h.writeUInt32LE(crc32(h.subarray(16, 32), crc32(h.subarray(0, 12), crc32(fr.records))), 12)
    parts.push(h, fr.records)
  })
  return Buffer.concat(parts)
}

t.test('a spool written before the lean wire (format 1) is read and sent as it is; new batches go to a new segment', async t => {
  const dir = t.testdir()
  const { log } = logSink()
  const old = [1, 2, 3].map(i => ({ records: payload(i), count: i, createdMs: 500 + i }))
  writeFileSync(join(dir, 'seg-00000000000000000001.pks'), segmentV1(1, old))
  let s = Spool.open({ dir, maxBytes: 1 << 20, segmentBytes: 1 << 16, log })
  t.match(s.stats(), { pendingBatches: 3, pendingRecords: 6, nextSeq: 4 })
  t.same(s.read(2), { seq: 2, count: 2, createdMs: 502, records: payload(2) }, 'an old batch: its full-form records, no context')
  t.equal(s.append(payload(4), 4, 504, { context: Buffer.from('c') }).seq, 4, 'seq goes on')
  t.same(segments(dir), ['seg-00000000000000000001.pks', 'seg-00000000000000000004.pks'], 'the old segment is never appended to')
  s.close()
  s = Spool.open({ dir, maxBytes: 1 << 20, segmentBytes: 1 << 16, log })
  t.same([1, 2, 3, 4].map(i => s.read(i)), [...old.map((o, i) => ({ seq: i + 1, ...o })), { seq: 4, count: 4, createdMs: 504, records: payload(4), context: Buffer.from('c') }], 'both formats read back after a restart')
  // a torn old segment is cut like a new one
  s.close()
  const seg = join(dir, 'seg-00000000000000000001.pks')
  truncateSync(seg, statSync(seg).size - 10)
  s = Spool.open({ dir, maxBytes: 1 << 20, segmentBytes: 1 << 16, log })
  t.equal(s.read(3), undefined, 'the torn old frame is gone')
  t.same(s.read(2)?.records, payload(2))
  for (const seq of [1, 2, 4]) s.ack(seq)
  t.equal(s.stats().pendingBatches, 0)
  s.close()
})

t.test('a torn tail (a write cut short by SIGKILL) is detected, truncated and logged, not fatal', async t => {
  const dir = t.testdir()
  const { log, lines } = logSink()
  let s = Spool.open({ dir, maxBytes: 1 << 20, segmentBytes: 1 << 16, log })
  for (let i = 1; i <= 5; i++) s.append(payload(i), 1)
  s.close()
  const seg = join(dir, segments(dir)[0])
  const full = statSync(seg).size
  truncateSync(seg, full - 40) // the last frame lost its end
  s = Spool.open({ dir, maxBytes: 1 << 20, segmentBytes: 1 << 16, log })
  t.equal(s.nextSeq, 5, 'four whole batches remain; seq 5 is written again')
  t.equal(statSync(seg).size, full - 140, 'the torn frame is cut off')
  t.ok(lines.some(l => l.level === 40 && /torn write/.test(String(l.msg)) && l.problem === 'torn frame payload'), 'a warning names the problem')
  t.ok(s.stats().truncatedBytes > 0)
  t.equal(s.append(payload(5), 1).seq, 5)
  s.close()
  s = Spool.open({ dir, maxBytes: 1 << 20, segmentBytes: 1 << 16, log })
  t.same([1, 2, 3, 4, 5].map(i => s.read(i)?.records), [1, 2, 3, 4, 5].map(i => payload(i)), 'the segment is whole again')
  s.close()
})

t.test('a frame that fails its checksum ends the segment there', async t => {
  const dir = t.testdir()
  const { log, lines } = logSink()
  let s = Spool.open({ dir, maxBytes: 1 << 20, segmentBytes: 1 << 16, log })
  for (let i = 1; i <= 5; i++) s.append(payload(i), 1)
  s.close()
  const seg = join(dir, segments(dir)[0])
  const fd = openSync(seg, 'r+')
  writeSync(fd, Buffer.from([0xee]), 0, 1, 16 + 2 * 140 + 40 + 50) // a bit flip in batch 3's payload
  closeSync(fd)
  s = Spool.open({ dir, maxBytes: 1 << 20, segmentBytes: 1 << 16, log })
  t.equal(s.nextSeq, 3)
  t.equal(s.firstPending(), 1)
  t.ok(lines.some(l => l.problem === 'checksum mismatch'))
  s.close()
  // a segment whose header is garbage holds nothing
  writeFileSync(join(dir, 'seg-00000000000000000100.pks'), 'not a segment at all')
  s = Spool.open({ dir, maxBytes: 1 << 20, segmentBytes: 1 << 16, log })
  t.notOk(existsSync(join(dir, 'seg-00000000000000000100.pks')), 'discarded')
  t.ok(lines.some(l => /bad header/.test(String(l.msg))))
  t.equal(s.nextSeq, 3)
  s.close()
})

t.test('bounded: past maxBytes the oldest segment is evicted and its unacked records counted', async t => {
  const dir = t.testdir()
  const { log, lines } = logSink()
  const s = Spool.open({ dir, maxBytes: 20_000, segmentBytes: 5000, log })
  const evictions: Eviction[] = []
  s.onEvict = e => evictions.push(e)
  let over = 0
  for (let i = 1; i <= 110; i++) {
    s.append(payload(i, 968), 10)
    if (i === 1) s.ack(1) // acked before eviction: not a drop
    if (s.stats().bytes > 20_000) over++
  }
  t.equal(over, 0, 'never past the bound')
  t.ok(evictions.length > 0)
  const evictedSeqs = evictions.flatMap(e => e.seqs)
  const st = s.stats()
  t.equal(st.evictedBatches, evictedSeqs.length)
  t.equal(st.evictedRecords, evictedSeqs.length * 10)
  t.equal(evictions.reduce((n, e) => n + e.records, 0), st.evictedRecords)
  t.notOk(evictedSeqs.includes(1), 'an acked batch is never counted as evicted')
  t.same(evictedSeqs, Array.from({ length: evictedSeqs.length }, (_, i) => i + 2), 'the oldest go first, in order')
  t.equal(s.firstPending(), evictedSeqs.at(-1)! + 1, 'sending resumes after the evicted ones')
  t.equal(st.pendingBatches + st.evictedBatches + 1, 110, 'pending + evicted + acked = appended')
  t.ok(lines.some(l => /over its bound/.test(String(l.msg))))
  s.close()
  const again = Spool.open({ dir, maxBytes: 20_000, segmentBytes: 5000, log })
  t.equal(again.firstPending(), evictedSeqs.at(-1)! + 1, 'and after a restart too')
  t.equal(again.nextSeq, 111)
  again.close()
})

t.test('one agent per spool: a live owner is refused, a dead one is taken over', async t => {
  const dir = t.testdir()
  const { log, lines } = logSink()
  const s = Spool.open({ dir, maxBytes: 1 << 20, segmentBytes: 1 << 16, log })
  t.throws(() => Spool.open({ dir, maxBytes: 1 << 20, segmentBytes: 1 << 16, log }), /already open in this process/)
  s.close()
  writeFileSync(join(dir, 'lock'), String(process.ppid))
  try {
    Spool.open({ dir, maxBytes: 1 << 20, segmentBytes: 1 << 16, log })
    t.fail('a spool locked by a live process must not open')
  } catch (err) {
    t.ok(isPicketError(err, 'PICKET_ERR_SPOOL'))
    t.match((err as Error).message, new RegExp(`in use by process ${process.ppid}`))
  }
  writeFileSync(join(dir, 'lock'), '999999999') // no such process
  const taken = Spool.open({ dir, maxBytes: 1 << 20, segmentBytes: 1 << 16, log })
  t.ok(lines.some(l => /taking it over/.test(String(l.msg))))
  t.equal(readFileSync(join(dir, 'lock'), 'utf8'), String(process.pid))
  taken.close()
})

t.test('a damaged ack watermark means replay everything, not a failure', async t => {
  const dir = t.testdir()
  const { log, lines } = logSink()
  let s = Spool.open({ dir, maxBytes: 1 << 20, segmentBytes: 1 << 16, log })
  for (let i = 1; i <= 3; i++) s.append(payload(i), 1)
  s.ack(1); s.ack(2)
  s.close()
  writeFileSync(join(dir, 'acked'), 'garbage!garbage!')
  s = Spool.open({ dir, maxBytes: 1 << 20, segmentBytes: 1 << 16, log })
  t.equal(s.firstPending(), 1, 'the collector answers DUPLICATE to what it already has')
  t.equal(s.nextSeq, 4)
  t.ok(lines.some(l => /watermark is damaged/.test(String(l.msg))))
  s.close()
})

t.test('SIGKILL at any moment loses no batch whose append() returned', async t => {
  const dir = t.testdir()
  // the writer records, after each append() returns, how many returned
  const progress = join(dir, '..', `progress-${process.pid}`)
  writeFileSync(progress, Buffer.alloc(8))
  const script = `
    import { Spool } from ${JSON.stringify(rootPath('agent', 'ship', 'spool.ts'))}
    import pino from 'pino'
    import { openSync, writeSync } from 'node:fs'
    const s = Spool.open({ dir: ${JSON.stringify(dir)}, maxBytes: 1 << 30, segmentBytes: 256 << 10, log: pino({ level: 'silent' }) })
    const p = openSync(${JSON.stringify(progress)}, 'r+')
    const body = Buffer.alloc(3000, 7)
    const n = Buffer.alloc(8)
    for (let i = 1; ; i++) {
      body.writeUInt32LE(i, 0)
      s.append(body, i)
      n.writeUInt32LE(i, 0)
      writeSync(p, n, 0, 8, 0)
    }`
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: rootPath(), stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  let exited = false
  const exit = new Promise(resolve => child.on('exit', () => { exited = true; resolve(undefined) }))
  child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d })
  const returned = (): number => readFileSync(progress).readUInt32LE(0)
  const deadline = Date.now() + 30_000
  while (returned() < 2000 && !exited && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 10))
  if (exited || Date.now() >= deadline) {
    child.kill('SIGKILL')
    t.fail(`the writer process ended early or stalled: ${err.slice(-2000)}`)
    return
  }
  child.kill('SIGKILL')
  await exit
  const acknowledged = returned()
  const { log } = logSink()
  const s = Spool.open({ dir, maxBytes: 1 << 30, segmentBytes: 256 << 10, log })
  t.ok(s.nextSeq - 1 >= acknowledged, `every batch append() returned for is there (${acknowledged} returned, ${s.nextSeq - 1} recovered)`)
  let bad = 0
  for (let seq = 1; seq < s.nextSeq; seq++) {
    const b = s.read(seq)
    if (b === undefined || b.records.readUInt32LE(0) !== seq || b.count !== seq) bad++
  }
  t.equal(bad, 0, 'every recovered batch reads back whole, in seq order')
  t.ok(segments(dir).length > 1, 'across several segments')
  s.close()
})
