import { NetProbe, openRing } from '../../../bpf/index.js'

// The kernel half alone, for the capture benchmark: the same BPF programs and
// ring as the agent, drained on the same 5 ms timer, records discarded. Its
// overhead is what capture costs before any decoding or shipping.
// Prints "ready" once attached, and the record count on SIGINT.
// `--fold-window MS` as the agent takes it (default: the agent's, 1 s; 0 = off).

const i = process.argv.indexOf('--fold-window')
const probe = NetProbe.open({ ignoreTgid: process.pid, ...(i > 0 ? { foldWindowMs: Number(process.argv[i + 1]) } : {}) })
const ring = openRing(probe.ringFd)
const slab = new SharedArrayBuffer(4 << 20)
let records = 0
let stop = false
process.on('SIGINT', () => { stop = true })
process.stdout.write('ready\n')
while (!stop) {
  records += ring.drain(slab, 0, slab.byteLength, 5).records
  await new Promise(resolve => setImmediate(resolve))
}
const c = probe.counters()
process.stdout.write(JSON.stringify({ records, dropped: c.state.reserveFailed + c.reset.reserveFailed + c.icmp.reserveFailed }) + '\n')
ring.close()
probe.close()
