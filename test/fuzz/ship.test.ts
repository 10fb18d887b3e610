import t from 'tap'
import { DEFAULT_LIMITS } from '../../backend/limits.js'
import { sleep } from '../../scripts/bench/lib/proc.js'
import { startBackendProc } from '../../scripts/bench/lib/backend.js'
import { bigBatch, plainShipment, scanRecords, type Shipment } from '../../scripts/fuzz/batches.js'
import { RawShipClient, wireBytes } from '../../scripts/fuzz/ship.js'

// The fuzz harness judges each message by the answer it pairs with it, so
// the pairing and the wait are what its checks stand on. Both are tried here
// against a live backend: acks overtake each other on a stream (the
// collector's own refusals go out at once, the detection plane's answers
// later), and a message held up in HTTP/2 flow control is not one left
// unanswered.

const HOST = 'fuzz-ship-host'
const scan = { ports: 4, firstPort: 1000, stride: 1, open: false, udp: false, v6: false, ageMs: 0, spacingMs: 1 }

function shipment (seq: number, o: { hostId?: string, records?: readonly unknown[] | Uint8Array, label: string }): Shipment {
  return plainShipment({ seed: 1, episode: 1, hostId: o.hostId ?? HOST, seq: BigInt(seq), records: o.records ?? scanRecords(scan, 4, HOST, 1, Date.now()), classes: ['none'], label: o.label })
}

t.test('acks that overtake each other are paired with the messages they answer when a stream sends one seq twice', async t => {
  const be = await startBackendProc({ workers: 1 })
  const client = new RawShipClient(be.address)
  t.teardown(async () => { client.close(); await be.stop() })
  // as in seed 388817 episode 3189: the second seq 1 claims host ' ' with record 0's device.uid a number;
  // the collector refuses it before the detection plane answers the first, so its REFUSED comes first
  const bad = scanRecords(scan, 4, HOST, 1, Date.now())
  ;(bad[0].device as Record<string, unknown>).uid = 28733
  const shipments = [shipment(1, { label: 'a scan' }), shipment(1, { hostId: ' ', records: bad, label: 'seq 1 again, host \' \', a numeric device.uid' })]
  const ep = { index: 1, hostId: HOST, shipments }
  const res = await client.send(ep, shipments.map(wireBytes))
  t.match(res.answers[0], { k: 'ack', ack: { host_id: HOST, seq: 1, status: 'OK' } }, `the scan is answered OK (${JSON.stringify(res.answers[0])})`)
  t.match(res.answers[1], { k: 'ack', ack: { host_id: ' ', seq: 1, status: 'REFUSED', error: 'PICKET_ERR_HOST_ID' } }, 'the second seq 1 is answered REFUSED')
  t.same(res.extra, [])
})

t.test('a message held up crossing to a stalled collector is waited for from its last byte; a message taken and never answered is still reported', async t => {
  const be = await startBackendProc({ workers: 1 })
  const client = new RawShipClient(be.address)
  t.teardown(async () => { client.close(); if (be.exit() === null) process.kill(be.pid, 'SIGCONT'); await be.stop() })
  const answerMs = 3000
  // as in seed 388817 episode 2015: a batch of max_batch_bytes + 1 bytes, then a scan behind it on the same stream
  const shipments = [shipment(1, { records: bigBatch(DEFAULT_LIMITS.maxBatchBytes + 1), label: 'max_batch_bytes + 1 bytes' }), shipment(2, { label: 'a scan' })]
  const ep = { index: 1, hostId: HOST, shipments }
  process.kill(be.pid, 'SIGSTOP')
  const sent = client.send(ep, shipments.map(wireBytes), answerMs)
  await sleep(answerMs + 2000)
  process.kill(be.pid, 'SIGCONT')
  const res = await sent
  t.match(res.answers[0], { k: 'ack', ack: { seq: 1, status: 'REFUSED', error: 'PICKET_ERR_LIMIT', limit: 'max_batch_bytes' } }, `the oversize batch is answered, though ${answerMs + 2000} ms passed before its bytes could cross`)
  t.match(res.answers[1], { k: 'ack', ack: { seq: 2, status: 'OK' } }, 'and so is the scan behind it')
  t.ok(res.slowest.writeMs >= answerMs, `its bytes took ${res.slowest.writeMs} ms to leave`)

  process.kill(be.pid, 'SIGSTOP')
  const small = [shipment(3, { label: 'a scan' })]
  const stalled = await client.send({ index: 2, hostId: HOST, shipments: small }, small.map(wireBytes), answerMs)
  process.kill(be.pid, 'SIGCONT')
  t.match(stalled.answers[0], { k: 'none', why: /^message 0 had no answer 3000 ms after its last byte left/ }, 'a message the collector took but did not answer is unanswered')
})
