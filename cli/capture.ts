import { once } from 'node:events'
import { bootToWallNs, kernelDrops, NetProbe, openRing } from '../bpf/index.js'
import { parseCommand, type OptSpec } from '../shared/config.js'
import { PicketError } from '../shared/errors.js'
import { makeDevice, makeMetadata } from '../shared/ocsf/network.js'
import { expandSpans, LeanBatcher, type LeanSpan } from '../agent/normalize/lean-batch.js'
import { MsgpackWriter } from '../agent/normalize/pack.js'
import { CLASS_NAMES, REGISTRY } from '../agent/normalize/registry.js'
import type { DecodeEnv } from '../agent/normalize/types.js'
import { sourceInfo } from '../agent/host-id.js'

// picket capture: tcpdump for OCSF. Loads the probes, drains the ring on a
// short timer and prints one full OCSF record per line on stdout, decoded
// by the agent's own normalisers into the lean form and expanded by
// shared/ocsf/lean.ts, exactly as the backend reads what an agent ships; a
// summary (records, drops) goes to stderr at exit.
//
// A class with no probes on this build is refused before anything loads
// (exit 2), as Falco refuses a rule whose event source is not loaded:
// printing nothing, forever, would look like a quiet host. `all` captures
// every class that has probes and says on stderr which have none.

const SPECS: OptSpec[] = [
  { name: 'duration', type: 'duration', env: false, help: 'stop after this long (e.g. 10s); default: until Ctrl-C', min: 1 },
  { name: 'count', type: 'int', env: false, help: 'stop after printing this many records', min: 1 },
  { name: 'class', type: 'enum', choices: [...CLASS_NAMES, 'all'], default: 'network', help: `OCSF class to capture: ${CLASS_NAMES.join(', ')} or all. A class with no probes on this build (${CLASS_NAMES.filter(c => !probed(c)).join(', ')}) exits with status 2 and says so; all captures every class that has probes` },
  { name: 'host-id', type: 'string', help: 'host id to stamp on records (default /etc/machine-id)' },
  { name: 'ring-bytes', type: 'bytes', default: '8MiB', help: 'NET_EVENTS ring buffer size (power of two)', min: 4096 },
  { name: 'wakeup-bytes', type: 'bytes', help: 'force a wakeup once this many bytes wait (default ring/4)' },
  { name: 'fold-window', type: 'duration', default: '1s', help: 'fold repeats of a flow within this window into one record with a count (the first still printed at once); 0 = off', min: 0, max: 60_000 },
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
  'fold-window': number
  'drain-ms': number
  tracefs?: string
}

function probed (name: string): boolean {
  return REGISTRY.normalisers.some(n => n.name === name)
}

/** The class uids to print; refuses a class this build cannot capture. */
function selectClasses (name: string): Set<number> {
  if (name === 'all') {
    const none = CLASS_NAMES.filter(c => !probed(c))
    if (none.length > 0) process.stderr.write(`capture: ${none.join(', ')}: no probes on this build yet; capturing ${REGISTRY.normalisers.map(n => n.name).join(', ')}\n`)
    return new Set(REGISTRY.normalisers.map(n => n.classUid))
  }
  const n = REGISTRY.normalisers.find(x => x.name === name)
  if (n === undefined) {
    const have = REGISTRY.normalisers.map(x => x.name)
    throw new PicketError('PICKET_ERR_CONFIG', `--class ${name}: this build has no probes for the ${name} class yet, so there is nothing to capture; it captures ${have.join(', ')} (--class ${have[0]} or --class all)`)
  }
  return new Set([n.classUid])
}

export async function run (argv: string[]): Promise<number> {
  const cfg = parseCommand<CaptureOptions>(SPECS, argv, 'picket capture [options]', 'Print live OCSF records as NDJSON on stdout, like tcpdump for OCSF: each record in full (every caption filled in),\nas the backend reads it. A summary of records and drops goes to stderr at exit. Needs root (or CAP_BPF + CAP_PERFMON).')
  if (cfg === undefined) return 0
  const o = cfg.values
  const classes = selectClasses(o.class)
  const probe = NetProbe.open({
    ringBytes: o['ring-bytes'],
    foldWindowMs: o['fold-window'],
    ...(o['wakeup-bytes'] !== undefined ? { wakeupBytes: o['wakeup-bytes'] } : {}),
    ...(o.tracefs !== undefined ? { tracefsDir: o.tracefs } : {}),
  })
  const ring = openRing(probe.ringFd)
  const src = sourceInfo(o['host-id'])
  const env: DecodeEnv = { bootToWallNs: bootToWallNs(), ...probe.decodeInfo }
  const batcher = new LeanBatcher({ metadata: makeMetadata(src), device: makeDevice(src) })
  const w = new MsgpackWriter(1 << 20)
  const spans: LeanSpan[] = []
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
  process.stderr.write(`capture: attached ${probe.attached.join(', ')}; printing OCSF ${o.class === 'all' ? 'records' : o.class + ' records'} as NDJSON (Ctrl-C to stop)\n`)
  const full = (): boolean => o.count !== undefined && printed >= o.count
  /** Drain the ring once (waiting up to timeoutMs) and print what came; the records drained. */
  const take = async (timeoutMs: number): Promise<number> => {
    const r = ring.drain(slab, 0, slab.byteLength, timeoutMs)
    if (r.records === 0) return 0
    received += r.records
    env.bootToWallNs = bootToWallNs()
    w.reset()
    spans.length = 0
    const res = batcher.encode(w, bytes, 0, r.bytes, env, 64 << 20, spans)
    decodeErrors += res.errors + res.records - res.written
    let text = ''
    for (const rec of expandSpans(w.buffer, spans)) {
      if (full()) break
      if (!classes.has(rec.class_uid as number)) continue
      text += JSON.stringify(rec) + '\n'
      printed++
    }
    if (!process.stdout.write(text)) await once(process.stdout, 'drain')
    return r.records
  }
  try {
    while (!stop && Date.now() < deadline && !full()) {
      await take(o['drain-ms'])
      // let signals and stdout callbacks run between drains
      await new Promise(resolve => setImmediate(resolve))
    }
    // stopped by a signal or the clock: print what the ring took in before that, as the agent ships it,
    // the repeats still being folded among it
    probe.flush()
    while (!full()) if (await take(0) === 0) break
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
