import t from 'tap'
import { DEFAULT_SEED, HONEST_PORTS, RSS_HEADROOM_BYTES, formatFuzzReport, runFuzz } from '../../scripts/fuzz/run.js'

// 10,000 structure-aware mutations of real network_activity batches (the
// generator in scripts/fuzz/batches.ts: types, ranges, structure, count,
// size, msgpack bytes, seqs, host ids, batch metadata, protobuf bytes), sent
// with a fixed seed over real gRPC Ship streams at a live backend in its own
// process, with an honest host's 16-port scan from a source the fuzzer never
// uses sent half-way through. The backend must not die, must answer every
// message (within 30 s of the message's last byte leaving; each ack paired
// with the one message it can answer, scripts/fuzz/ship.ts) and name every
// refusal (a registered PICKET_ERR_ code and a message), must refuse every
// batch holding a record that breaks its contract, must still find the
// honest scan exactly once, and must keep its RSS within its idle RSS +
// 256 MiB (with a 32 MiB detection budget per worker). The long run is
// `npm run fuzz`.

const SEED = DEFAULT_SEED
const MESSAGES = 10_000

t.test(`${MESSAGES} mutated batches (seed ${SEED}) at a live collector: no crash, every message answered and every refusal named, an honest scan still found, RSS bounded`, async t => {
  t.comment(`seed ${SEED}; to replay or run longer: npm run fuzz -- --seed ${SEED} --count ${MESSAGES}`)
  const r = await runFuzz({ seed: SEED, batches: MESSAGES, maxCrashes: 3 })
  t.comment(formatFuzzReport(r))
  t.ok(r.batches >= MESSAGES, `sent ${r.batches} messages in ${r.episodes} streams`)
  t.equal(r.crashes.length, 0, 'the backend never died')
  t.ok(r.health.alive, 'the backend process is alive at the end')
  t.ok(r.health.code !== undefined, `/healthz answers (${r.health.code ?? r.health.error ?? 'no answer'} ${r.health.status ?? ''})`)
  t.equal(r.unnamed.count, 0, 'every REFUSED or RETRY ack carries a registered PICKET_ERR_ code and a message; every stream error its details')
  t.equal(r.unanswered.count, 0, `every message is answered: an Ack, or the status that ended its stream (slowest answer ${r.slowest.answerMs} ms after its message left)`)
  t.equal(r.internal.count, 0, 'no batch makes the detection engine throw')
  t.equal(r.invalidAccepted.count, 0, 'no batch holding a record that breaks its contract is acked OK')
  t.equal(r.honest.findings, 1, `the honest host's ${HONEST_PORTS}-port scan gives exactly one finding (acks: ${r.honest.acks})`)
  t.ok(r.rss.peak <= r.rss.bound, `peak RSS ${(r.rss.peak / 2 ** 20).toFixed(0)} MiB within idle ${(r.rss.idle / 2 ** 20).toFixed(0)} MiB + ${RSS_HEADROOM_BYTES / 2 ** 20} MiB`)
})
