import Database from 'better-sqlite3'
import { existsSync, readFileSync } from 'node:fs'
import { connect as tcpConnect } from 'node:net'
import { join } from 'node:path'
import { jetstreamManager } from '@nats-io/jetstream'
import { Kvm } from '@nats-io/kv'
import { cgroup2Mount, parseMountinfo } from '../bpf/cgroup.js'
import { NET_PROGRAMS } from '../bpf/index.js'
import { TRACEFS_CANDIDATES } from '../bpf/tracefs.js'
import { connectNats, findBatchStream, parseNatsUrls, partitionConsumer } from '../backend/cluster/nats.js'
import { BATCH_STREAM, FINDING_STREAM, LEASE_BUCKET, leaseKey, STORE_CONSUMER } from '../backend/cluster/wire.js'
import { parseCommand, type HostPort, type OptSpec } from '../shared/config.js'
import { formatHostPort } from '../shared/hostport.js'

// picket doctor: the seed's troubleshooting list as one command. Each hop
// from tracepoint to store gets a line, ok or FAIL with the fix; the exit code
// is 1 when any check failed.

interface Values { collector: HostPort, bridge?: string, db: string, tracefs?: string }

const OPTIONS: readonly OptSpec[] = [
  { name: 'collector', type: 'hostport', default: '127.0.0.1:50051', help: 'collector address the agents ship to' },
  { name: 'bridge', type: 'string', help: 'cluster mode: the backend\'s --bridge NATS URL (nats://HOST:PORT[,...])' },
  { name: 'db', type: 'path', default: 'data/picket.db', help: 'the backend\'s alert store (--db)' },
  { name: 'tracefs', type: 'path', help: 'tracefs mount (default: /sys/kernel/tracing, then /sys/kernel/debug/tracing)' },
]

export interface Check { name: string, ok: boolean, detail: string, fix?: string }

function tracepoints (explicit: string | undefined): Check[] {
  const root = explicit ?? TRACEFS_CANDIDATES.find(d => existsSync(join(d, 'events')))
  if (root === undefined || !existsSync(join(root, 'events'))) {
    return [{ name: 'tracefs', ok: false, detail: `not mounted at ${explicit ?? TRACEFS_CANDIDATES.join(' or ')}`, fix: 'mount -t tracefs nodev /sys/kernel/tracing (as root), or pass --tracefs' }]
  }
  const out: Check[] = [{ name: 'tracefs', ok: true, detail: root }]
  for (const p of NET_PROGRAMS) {
    const f = join(root, 'events', p.category, p.name, 'format')
    out.push(existsSync(f)
      ? { name: `tracepoint ${p.category}:${p.name}`, ok: true, detail: 'present' }
      : { name: `tracepoint ${p.category}:${p.name}`, ok: false, detail: `${f} is missing`, fix: 'the kernel lacks it or tracefs is not readable: run as root on a kernel with CONFIG_TRACEPOINTS (the agent says which kernel it needs)' })
  }
  return out
}

function cgroup (): Check {
  let mount: string | undefined
  try { mount = cgroup2Mount(parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'))) } catch {}
  return mount !== undefined
    ? { name: 'cgroup v2', ok: true, detail: `mounted at ${mount}` }
    : { name: 'cgroup v2', ok: false, detail: 'no cgroup2 mount', fix: 'mount -t cgroup2 none /sys/fs/cgroup (the DNS capture attaches there)' }
}

async function collector (at: HostPort): Promise<Check> {
  const addr = formatHostPort(at.host, at.port)
  const err = await new Promise<string | undefined>(resolve => {
    const s = tcpConnect({ host: at.host, port: at.port, timeout: 2000 })
    s.once('connect', () => { s.destroy(); resolve(undefined) })
    s.once('timeout', () => { s.destroy(); resolve('no answer within 2 s') })
    s.once('error', e => resolve(e.message))
  })
  return err === undefined
    ? { name: `collector ${addr}`, ok: true, detail: 'accepts connections' }
    : { name: `collector ${addr}`, ok: false, detail: err, fix: `start picket backend --listen ${addr}, or pass the agents' --collector` }
}

async function bridge (spec: string): Promise<Check[]> {
  const name = `bridge ${spec}`
  let nc
  try {
    nc = await connectNats(parseNatsUrls(spec, '--bridge'), 'picket-doctor', 3000)
  } catch (err) {
    return [{ name, ok: false, detail: `unreachable: ${(err as Error).message}`, fix: `start nats-server -js at ${spec}, or pass the backend's --bridge URL` }]
  }
  try {
    const out: Check[] = [{ name, ok: true, detail: `connected to ${nc.getServer()}` }]
    const jsm = await jetstreamManager(nc, { timeout: 5000 })
    let partitions: number
    try {
      ({ partitions } = await findBatchStream(jsm))
    } catch (err) {
      out.push({ name: `stream ${BATCH_STREAM}`, ok: false, detail: (err as Error).message, fix: `start picket backend --bridge ${spec}: it creates the streams` })
      return out
    }
    out.push({ name: `stream ${BATCH_STREAM}`, ok: true, detail: `${partitions} partitions` })
    for (const [stream, consumer] of [[FINDING_STREAM, STORE_CONSUMER]] as const) {
      try {
        const ci = await jsm.consumers.info(stream, consumer)
        out.push({ name: `stream ${stream}`, ok: true, detail: `consumer ${consumer}: ${ci.num_pending + ci.num_ack_pending} finding messages not yet stored` })
      } catch (err) {
        out.push({ name: `stream ${stream}`, ok: false, detail: `consumer ${consumer}: ${(err as Error).message}`, fix: `start picket backend --bridge ${spec}` })
      }
    }
    let kv
    try { kv = await new Kvm(nc).open(LEASE_BUCKET, { bindOnly: true }) } catch {}
    for (let p = 0; p < partitions; p++) {
      const what = `partition ${p}`
      let lag = '?'
      try {
        const ci = await jsm.consumers.info(BATCH_STREAM, partitionConsumer(p))
        lag = String(ci.num_pending + ci.num_ack_pending)
      } catch (err) {
        out.push({ name: what, ok: false, detail: `consumer ${partitionConsumer(p)} missing: ${(err as Error).message}`, fix: `restart picket backend --bridge ${spec}: it creates the consumers` })
        continue
      }
      const owner = await kv?.get(leaseKey(p)).catch(() => null)
      if (owner === undefined || owner === null || owner.operation !== 'PUT') {
        out.push({ name: what, ok: false, detail: `no detection node holds its lease; lag ${lag} batches`, fix: `start picket detect --nats ${spec} (any number of them)` })
      } else {
        out.push({ name: what, ok: true, detail: `owned by ${owner.string()} (lease token ${owner.revision}); lag ${lag} batches` })
      }
    }
    return out
  } finally {
    await nc.close()
  }
}

function store (path: string): Check {
  const name = `store ${path}`
  if (!existsSync(path)) return { name, ok: false, detail: 'no such file', fix: `start picket backend --db ${path}, or pass the backend's --db` }
  try {
    const db = new Database(path, { fileMustExist: true })
    try {
      db.pragma('busy_timeout = 2000')
      db.exec('BEGIN IMMEDIATE; ROLLBACK')
    } finally { db.close() }
    return { name, ok: true, detail: 'writable' }
  } catch (err) {
    return { name, ok: false, detail: (err as Error).message, fix: 'check the file and its folder belong to the backend\'s user and the disk has room' }
  }
}

export async function runChecks (v: Values): Promise<Check[]> {
  return [
    ...tracepoints(v.tracefs),
    cgroup(),
    await collector(v.collector),
    ...(v.bridge !== undefined ? await bridge(v.bridge) : []),
    store(v.db),
  ]
}

export async function run (argv: string[]): Promise<number> {
  const cfg = parseCommand<Values>(OPTIONS, argv, 'picket doctor [options]',
    'Check every hop from the kernel\'s tracepoints to the alert store and say how to fix what is broken:\n' +
    'tracefs and the agent\'s tracepoints, the cgroup v2 mount, the collector, the NATS bridge with its\n' +
    'streams, consumers and partition leases (with --bridge), and the store. Exits 1 if a check fails.')
  if (cfg === undefined) return 0
  const checks = await runChecks(cfg.values)
  const width = Math.max(...checks.map(c => c.name.length))
  for (const c of checks) {
    process.stdout.write(`${c.ok ? 'ok  ' : 'FAIL'}  ${c.name.padEnd(width)}  ${c.detail}${!c.ok && c.fix !== undefined ? `\n      fix: ${c.fix}` : ''}\n`)
  }
  const failed = checks.filter(c => !c.ok).length
  process.stdout.write(failed === 0 ? 'all checks passed\n' : `${failed} check${failed === 1 ? '' : 's'} failed\n`)
  return failed === 0 ? 0 : 1
}
