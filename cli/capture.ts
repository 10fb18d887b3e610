import { once } from 'node:events'
import { bootToWallNs, openRing, type RingSource } from '../bpf/index.js'
import { parseCommand, type OptSpec } from '../shared/config.js'
import { PicketError } from '../shared/errors.js'
import { makeDevice, makeMetadata } from '../shared/ocsf/network.js'
import { createNameCacheMemory, NameCache } from '../agent/normalize/dns-names.js'
import { expandSpans, LeanBatcher, type LeanSpan } from '../agent/normalize/lean-batch.js'
import { MsgpackWriter } from '../agent/normalize/pack.js'
import { CLASS_NAMES, REGISTRY } from '../agent/normalize/registry.js'
import type { DecodeEnv } from '../agent/normalize/types.js'
import { sourceInfo } from '../agent/host-id.js'
import { ProcTableReader, createProcTable } from '../agent/proctable/table.js'
import { ProcTableWriter } from '../agent/proctable/writer.js'
import { loadBpf, openClassProbe, PROBED_CLASSES, type ClassProbe } from '../agent/source/kernel.js'

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
//
// The process ring is opened whenever it can be, printed or not: it keeps
// the process table (agent/proctable) that names each record's process and
// its ancestry, as in the agent.

/** classes the registry names but this build has no probes for (none today) */
const UNPROBED = CLASS_NAMES.filter(c => !probed(c))

const SPECS: OptSpec[] = [
  { name: 'duration', type: 'duration', env: false, help: 'stop after this long (e.g. 10s); default: until Ctrl-C', min: 1 },
  { name: 'count', type: 'int', env: false, help: 'stop after printing this many records', min: 1 },
  { name: 'class', type: 'enum', choices: [...CLASS_NAMES, 'all'], default: 'network', help: `OCSF class to capture: ${CLASS_NAMES.join(', ')} or all${UNPROBED.length > 0 ? `. A class with no probes on this build (${UNPROBED.join(', ')}) exits with status 2 and says so; all captures every class that has probes` : ''}` },
  { name: 'host-id', type: 'string', help: 'host id to stamp on records (default /etc/machine-id)' },
  { name: 'ring-bytes', type: 'bytes', default: '8MiB', help: 'each class\'s ring buffer size (power of two)', min: 4096 },
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
  return REGISTRY.normalisers.some(n => n.name === name) && PROBED_CLASSES.includes(name)
}
const PROBED = REGISTRY.normalisers.filter(n => probed(n.name))

/** The class uids to print; refuses a class this build cannot capture. */
function selectClasses (name: string): Set<number> {
  if (name === 'all') {
    const none = CLASS_NAMES.filter(c => !probed(c))
    if (none.length > 0) process.stderr.write(`capture: ${none.join(', ')}: no probes on this build yet; capturing ${PROBED.map(n => n.name).join(', ')}\n`)
    return new Set(PROBED.map(n => n.classUid))
  }
  const n = PROBED.find(x => x.name === name)
  if (n === undefined) {
    const have = PROBED.map(x => x.name)
    throw new PicketError('PICKET_ERR_CONFIG', `--class ${name}: this build has no probes for the ${name} class yet, so there is nothing to capture; it captures ${have.join(', ')} (--class ${have[0]} or --class all)`)
  }
  return new Set([n.classUid])
}

export async function run (argv: string[]): Promise<number> {
  const cfg = parseCommand<CaptureOptions>(SPECS, argv, 'picket capture [options]', 'Print live OCSF records as NDJSON on stdout, like tcpdump for OCSF: each record in full (every caption filled in),\nas the backend reads it. A summary of records and drops goes to stderr at exit. Needs root (or CAP_BPF + CAP_PERFMON).')
  if (cfg === undefined) return 0
  const o = cfg.values
  const classes = selectClasses(o.class)
  const names = PROBED.filter(n => classes.has(n.classUid) || n.name === 'process').map(n => n.name)
  const bpf = await loadBpf()
  const kernelOpts = {
    ringBytes: o['ring-bytes'],
    foldWindowMs: o['fold-window'],
    ...(o['wakeup-bytes'] !== undefined ? { wakeupBytes: o['wakeup-bytes'] } : {}),
    ...(o.tracefs !== undefined ? { tracefsDir: o.tracefs } : {}),
  }
  const probes: ClassProbe[] = []
  try {
    for (const name of names) probes.push(openClassProbe(bpf, name, kernelOpts))
    for (const p of probes) if (p.degraded !== undefined) process.stderr.write(`capture: ${p.className}: ${p.degraded}\n`)
  } catch (err) {
    for (const p of probes) p.close()
    throw err
  }
  // the process ring is drained last: every exec before another ring's
  // records is then in the table; DNS first, so the answers a connection's
  // address came from name it (dns-names.ts)
  const order = (c: string): number => c === 'dns' ? 0 : c === 'process' ? 2 : 1
  const rings: Array<{ probe: ClassProbe, ring: RingSource, slab: SharedArrayBuffer, bytes: number, records: number }> = probes
    .map(probe => ({ probe, ring: openRing(probe.ringFd), slab: new SharedArrayBuffer(Math.min(o['ring-bytes'], 4 << 20)), bytes: 0, records: 0 }))
    .sort((a, b) => order(a.probe.className) - order(b.probe.className))
  const table = probes.some(p => p.className === 'process') ? createProcTable() : undefined
  const tableWriter = table !== undefined ? new ProcTableWriter(table) : undefined
  tableWriter?.seedFromProc()
  const src = sourceInfo(o['host-id'])
  const net = probes.find(p => p.className === 'network')
  const env: DecodeEnv = { bootToWallNs: bootToWallNs(), ...(net?.decodeInfo ?? { rstReasons: {}, noSocketReason: -1 }), names: new NameCache(createNameCacheMemory()) }
  if (table !== undefined) env.procs = new ProcTableReader(table)
  const batcher = new LeanBatcher({ metadata: makeMetadata(src), device: makeDevice(src) })
  const w = new MsgpackWriter(1 << 20)
  const spans: LeanSpan[] = []
  let stop = false
  let printed = 0
  let received = 0
  let decodeErrors = 0
  const onSignal = (): void => { stop = true }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const deadline = o.duration !== undefined ? Date.now() + o.duration : Infinity
  process.stderr.write(`capture: attached ${probes.map(p => p.className).join(', ')}; printing OCSF ${o.class === 'all' ? 'records' : o.class + ' records'} as NDJSON (Ctrl-C to stop)\n`)
  const full = (): boolean => o.count !== undefined && printed >= o.count
  /** Drain each ring once (the first waiting up to timeoutMs) and print what came; the records drained. */
  const take = async (timeoutMs: number): Promise<number> => {
    let n = 0
    for (const [i, r] of rings.entries()) {
      const d = r.ring.drain(r.slab, 0, r.slab.byteLength, i === 0 ? timeoutMs : 0)
      r.bytes = d.bytes
      r.records = d.records
      n += d.records
      if (d.records > 0 && r.probe.className === 'process') tableWriter?.apply(new Uint8Array(r.slab), 0, d.bytes)
    }
    for (const r of rings) if (r.records > 0) await print(new Uint8Array(r.slab), r.bytes, r.records)
    return n
  }
  const print = async (bytes: Uint8Array, length: number, records: number): Promise<void> => {
    received += records
    env.bootToWallNs = bootToWallNs()
    w.reset()
    spans.length = 0
    const res = batcher.encode(w, bytes, 0, length, env, 64 << 20, spans)
    decodeErrors += res.errors + res.records - res.written - res.skipped
    let text = ''
    for (const rec of expandSpans(w.buffer, spans)) {
      if (full()) break
      if (!classes.has(rec.class_uid as number)) continue
      text += JSON.stringify(rec) + '\n'
      printed++
    }
    if (!process.stdout.write(text)) await once(process.stdout, 'drain')
  }
  try {
    while (!stop && Date.now() < deadline && !full()) {
      await take(o['drain-ms'])
      // let signals and stdout callbacks run between drains
      await new Promise(resolve => setImmediate(resolve))
    }
    // stopped by a signal or the clock: print what the ring took in before that, as the agent ships it,
    // the repeats still being folded among it
    for (const p of probes) p.flush?.()
    while (!full()) if (await take(0) === 0) break
  } finally {
    const c = net?.counters()
    const ringDrops = Object.fromEntries(probes.map(p => [p.ring, p.drops()]))
    const summary = {
      records: printed,
      received,
      drops: { kernel_reserve: Object.values(ringDrops).reduce((a, b) => a + b, 0), read_failed: c?.readFailed ?? 0, decode_error: decodeErrors },
      ring_drops: ringDrops,
      kernel: c,
      recursion_misses: probes.reduce((n, p) => n + p.progStats().reduce((s, x) => s + x.recursionMisses, 0), 0),
    }
    for (const r of rings) r.ring.close()
    for (const p of probes) p.close()
    process.removeListener('SIGINT', onSignal)
    process.removeListener('SIGTERM', onSignal)
    process.stderr.write(`capture: ${printed} records, ${summary.drops.kernel_reserve} dropped in the kernel (ring full), ${decodeErrors} undecodable\n`)
    process.stderr.write('capture-summary ' + JSON.stringify(summary) + '\n')
  }
  return 0
}
