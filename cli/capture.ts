import { once } from 'node:events'
import { bootToWallNs, kernelDrops, NetProbe, openRing } from '../bpf/index.js'
import { parseCommand, type OptSpec } from '../shared/config.js'
import { makeDevice, makeMetadata } from '../shared/ocsf/network.js'
import type { NetworkActivity } from '../shared/ocsf/types.js'
import { decodeNetRecords, type DecodeContext } from '../agent/normalize/net.js'
import { sourceInfo } from '../agent/host-id.js'

// picket capture: tcpdump for OCSF. Loads the network probe, drains the ring
// on a short timer and prints one OCSF record per line on stdout; a summary
// (records, drops) goes to stderr at exit.

const SPECS: OptSpec[] = [
  { name: 'duration', type: 'duration', env: false, help: 'stop after this long (e.g. 10s); default: until Ctrl-C', min: 1 },
  { name: 'count', type: 'int', env: false, help: 'stop after printing this many records', min: 1 },
  { name: 'class', type: 'enum', choices: ['network'], default: 'network', help: 'event class to capture' },
  { name: 'host-id', type: 'string', help: 'host id to stamp on records (default /etc/machine-id)' },
  { name: 'ring-bytes', type: 'bytes', default: '8MiB', help: 'NET_EVENTS ring buffer size (power of two)', min: 4096 },
  { name: 'wakeup-bytes', type: 'bytes', help: 'force a wakeup once this many bytes wait (default ring/4)' },
  { name: 'drain-ms', type: 'int', default: 5, min: 1, max: 1000, help: 'drain timer in milliseconds' },
  { name: 'tracefs', type: 'path', help: 'tracefs mount point (default: found or mounted)' },
]

interface CaptureOptions {
  duration?: number
  count?: number
  class: string
  'host-id'?: string
  'ring-bytes': number
  'wakeup-bytes'?: number
  'drain-ms': number
  tracefs?: string
}

export async function run (argv: string[]): Promise<number> {
  const cfg = parseCommand<CaptureOptions>(SPECS, argv, 'picket capture [options]', 'Print live OCSF records (network_activity, class 4001) as NDJSON on stdout, like tcpdump for OCSF.\nA summary of records and drops goes to stderr at exit. Needs root (or CAP_BPF + CAP_PERFMON).')
  if (cfg === undefined) return 0
  const o = cfg.values
  const probe = NetProbe.open({
    ringBytes: o['ring-bytes'],
    ...(o['wakeup-bytes'] !== undefined ? { wakeupBytes: o['wakeup-bytes'] } : {}),
    ...(o.tracefs !== undefined ? { tracefsDir: o.tracefs } : {}),
  })
  const ring = openRing(probe.ringFd)
  const src = sourceInfo(o['host-id'])
  const ctx: DecodeContext = { metadata: makeMetadata(src), device: makeDevice(src), bootToWallNs: bootToWallNs(), ...probe.decodeInfo }
  const slab = new SharedArrayBuffer(Math.min(probe.ringBytes, 4 << 20))
  const bytes = new Uint8Array(slab)
  let stop = false
  let printed = 0
  let received = 0
  let decodeErrors = 0
  const onSignal = (): void => { stop = true }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const deadline = o.duration !== undefined ? Date.now() + o.duration : Infinity
  process.stderr.write(`capture: attached ${probe.attached.join(', ')}; printing OCSF network_activity as NDJSON (Ctrl-C to stop)\n`)
  const out: NetworkActivity[] = []
  try {
    while (!stop && Date.now() < deadline && (o.count === undefined || printed < o.count)) {
      const r = ring.drain(slab, 0, slab.byteLength, o['drain-ms'])
      if (r.records > 0) {
        received += r.records
        out.length = 0
        ctx.bootToWallNs = bootToWallNs()
        decodeErrors += decodeNetRecords(bytes, 0, r.bytes, ctx, out).errors
        let text = ''
        for (const rec of out) {
          if (o.count !== undefined && printed >= o.count) break
          text += JSON.stringify(rec) + '\n'
          printed++
        }
        if (!process.stdout.write(text)) await once(process.stdout, 'drain')
      }
      // let signals and stdout callbacks run between drains
      await new Promise(resolve => setImmediate(resolve))
    }
  } finally {
    const c = probe.counters()
    const summary = {
      records: printed,
      received,
      drops: { kernel_reserve: kernelDrops(c), read_failed: c.readFailed, decode_error: decodeErrors },
      kernel: c,
      recursion_misses: probe.progStats().reduce((s, p) => s + p.recursionMisses, 0),
    }
    ring.close()
    probe.close()
    process.removeListener('SIGINT', onSignal)
    process.removeListener('SIGTERM', onSignal)
    process.stderr.write(`capture: ${printed} records, ${summary.drops.kernel_reserve} dropped in the kernel (ring full), ${decodeErrors} undecodable\n`)
    process.stderr.write('capture-summary ' + JSON.stringify(summary) + '\n')
  }
  return 0
}
