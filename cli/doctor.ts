import Database from 'better-sqlite3'
import { existsSync, readFileSync } from 'node:fs'
import { connect as tcpConnect } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { join } from 'node:path'
import { jetstreamManager } from '@nats-io/jetstream'
import { Kvm } from '@nats-io/kv'
import { cgroup2Mount, parseMountinfo } from '../bpf/cgroup.js'
import { NET_PROGRAMS } from '../bpf/index.js'
import { TRACEFS_CANDIDATES } from '../bpf/tracefs.js'
import { connectNats, findBatchStream, NATS_SECURITY_OPTIONS, natsSecurity, parseNatsUrls, partitionConsumer, type NatsSecurity, type NatsSecurityValues } from '../backend/cluster/nats.js'
import { BATCH_STREAM, FINDING_STREAM, LEASE_BUCKET, leaseKey, STORE_CONSUMER } from '../backend/cluster/wire.js'
import { AlertStore } from '../backend/store/index.js'
import { injectScan } from '../scripts/injector/index.js'
import { parseCommand, type HostPort, type OptSpec } from '../shared/config.js'
import { DROP_CAUSES } from '../shared/enums.js'
import { formatHostPort } from '../shared/hostport.js'

// picket doctor: the seed's troubleshooting list as one command. Each hop
// from tracepoint to store gets a line, ok or FAIL with the fix; the exit code
// is 1 when any check failed.

interface Values extends NatsSecurityValues {
  collector: HostPort
  bridge?: string
  db: string
  tracefs?: string
  'agent-metrics': HostPort
  'no-agent': boolean
  'tls-ca'?: string
  'tls-cert'?: string
  'tls-key'?: string
  'tls-server-name'?: string
  'round-trip': boolean
  'round-trip-timeout': number
}

const OPTIONS: readonly OptSpec[] = [
  { name: 'collector', type: 'hostport', default: '127.0.0.1:50051', help: 'collector address the agents ship to' },
  { name: 'bridge', type: 'string', help: 'cluster mode: the backend\'s --bridge NATS URL (nats://HOST:PORT[,...])' },
  { name: 'db', type: 'path', default: 'data/picket.db', help: 'the backend\'s alert store (--db)' },
  { name: 'tracefs', type: 'path', help: 'tracefs mount (default: /sys/kernel/tracing, then /sys/kernel/debug/tracing)' },
  { name: 'agent-metrics', type: 'hostport', default: '127.0.0.1:9464', help: 'the agent\'s /metrics (its --metrics-host and --metrics port)' },
  { name: 'no-agent', type: 'bool', default: false, help: 'skip the agent checks (a backend-only machine)' },
  { name: 'tls-ca', type: 'path', help: 'the agents\' --tls-ca: the collector must speak TLS with a certificate this CA signed' },
  { name: 'tls-cert', type: 'path', help: 'the agents\' --tls-cert (mTLS)' },
  { name: 'tls-key', type: 'path', help: 'the agents\' --tls-key (mTLS)' },
  { name: 'tls-server-name', type: 'string', help: 'the agents\' --tls-server-name' },
  { name: 'round-trip', type: 'bool', default: false, help: 'inject a 20-port scan (host doctor-round-trip-<time>) and wait for its finding in the store; the finding stays there' },
  ...NATS_SECURITY_OPTIONS,
  { name: 'round-trip-timeout', type: 'duration', default: '30s', min: 1000, help: 'how long --round-trip waits for the finding' },
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

/** `name{labels} value` lines of a Prometheus text page, keyed as written (labels included). */
function samples (text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)/.exec(line)
    if (m !== null) out.set(m[1], Number(m[2]))
  }
  return out
}

const DROP_FIX: Record<string, string> = {
  kernel_reserve: 'the kernel ring filled: raise the agent\'s ring size or decoders',
  kernel_recursion: 'a probe fired inside itself: rare, and nothing to tune',
  slab_starvation: 'the decoders fell behind: more --decoders, or fewer records (filters)',
  spool_eviction: 'the spool filled while the collector was away: a bigger spool, or keep the collector reachable',
  decode_error: 'records the agent could not decode: report it with the agent log',
  refused: 'the collector refused batches: its log names the limit',
}

async function agent (at: HostPort): Promise<Check[]> {
  const addr = formatHostPort(at.host, at.port)
  const name = `agent ${addr}`
  let m: Map<string, number>
  try {
    const res = await fetch(`http://${addr}/metrics`, { signal: AbortSignal.timeout(2000) })
    if (!res.ok) throw new Error(`HTTP ${res.status}`)
    m = samples(await res.text())
  } catch (err) {
    return [{ name, ok: false, detail: `no /metrics there: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`, fix: `start the agent (systemctl start picket-agent) with --metrics ${at.port}, or pass its --metrics address as --agent-metrics (--no-agent where none runs)` }]
  }
  if (!m.has('picket_agent_connected')) return [{ name, ok: false, detail: 'answers /metrics, but not as a Picket agent', fix: 'pass the agent\'s --metrics address as --agent-metrics' }]
  const pending = m.get('picket_agent_spool_pending_batches') ?? 0
  const out: Check[] = [m.get('picket_agent_connected') === 1
    ? { name, ok: true, detail: `running, connected to its collector; ${m.get('picket_agent_records_acked_total') ?? 0} records acked, ${pending} spooled batches pending` }
    : { name, ok: false, detail: `running, but not connected to its collector; ${pending} batches wait in its spool`, fix: 'check the agent\'s --collector (and TLS flags) against the collector line below; the agent resends its spool once connected' }]
  const kernel = m.get('picket_agent_kernel_events_total') ?? 0
  const captured = m.get('picket_agent_records_captured_total') ?? 0
  out.push(kernel > 0 || captured > 0
    ? { name: 'agent capture', ok: true, detail: `attached: ${kernel} kernel events matched, ${captured} records captured` }
    : { name: 'agent capture', ok: false, detail: 'nothing captured: the BPF programs are not attached, or have seen no connection yet', fix: 'read the agent\'s log for the attach error (it names the tracepoint or privilege missing), run it as root, then open a TCP connection and look again' })
  const drops = DROP_CAUSES.map(c => [c, m.get(`picket_agent_drops_total{cause="${c}"}`) ?? 0] as const).filter(([, n]) => n > 0)
  out.push(drops.length === 0
    ? { name: 'agent drops', ok: true, detail: 'none' }
    : { name: 'agent drops', ok: false, detail: drops.map(([c, n]) => `${n} ${c}`).join(', '), fix: drops.map(([c]) => `${c}: ${DROP_FIX[c]}`).join('; ') })
  return out
}

interface AgentTls { ca?: string, cert?: string, key?: string, serverName?: string }

/** Does the collector speak TLS, and does it pass what the agents are given (their CA, their client certificate)? */
async function collectorTls (at: HostPort, tls: AgentTls | undefined): Promise<Check> {
  const addr = formatHostPort(at.host, at.port)
  const name = `collector TLS ${addr}`
  const handshake = async (verify: boolean): Promise<string | undefined> => await new Promise(resolve => {
    let opts
    try {
      opts = {
        host: at.host,
        port: at.port,
        ALPNProtocols: ['h2'],
        servername: tls?.serverName ?? at.host,
        rejectUnauthorized: verify,
        ...(verify && tls?.ca !== undefined ? { ca: readFileSync(tls.ca) } : {}),
        ...(tls?.cert !== undefined && tls.key !== undefined ? { cert: readFileSync(tls.cert), key: readFileSync(tls.key) } : {}),
      }
    } catch (err) { resolve((err as Error).message); return }
    const s = tlsConnect(opts)
    s.setTimeout(2000)
    // a server refusing a client certificate says so after the handshake: give it a moment
    s.once('secureConnect', () => { setTimeout(() => { s.destroy(); resolve(undefined) }, 100) })
    s.once('timeout', () => { s.destroy(); resolve('no TLS answer within 2 s') })
    s.once('error', e => { s.destroy(); resolve(e.message) })
  })
  const plain = await handshake(false)
  const speaks = plain === undefined || /certificate|alert/i.test(plain)
  if (tls?.ca === undefined) {
    return speaks
      ? { name, ok: false, detail: 'the collector speaks TLS, but the agents are given no --tls-ca', fix: 'pass the agents\' --tls-ca (and --tls-cert/--tls-key for mTLS) to picket doctor, or give the agents the collector\'s CA' }
      : { name, ok: true, detail: 'plaintext on both sides (no --tls-ca): fine on a trusted network only' }
  }
  if (!speaks) return { name, ok: false, detail: `the agents are given --tls-ca, but the collector does not speak TLS (${plain ?? ''})`, fix: 'start picket backend with --tls-cert and --tls-key, or drop --tls-ca from the agents' }
  const err = await handshake(true)
  return err === undefined
    ? { name, ok: true, detail: `certificate verified by ${tls.ca}${tls.cert !== undefined ? ', client certificate accepted' : ''}` }
    : { name, ok: false, detail: err, fix: 'the collector\'s certificate must be signed by the agents\' --tls-ca and name the host they dial (or their --tls-server-name); with mTLS, the backend\'s --tls-client-ca must sign the agents\' --tls-cert' }
}

/** Inject a 20-port scan and wait for the finding it must make in the store. */
async function roundTrip (at: HostPort, db: string, tls: AgentTls | undefined, timeoutMs: number): Promise<Check> {
  const host = `doctor-round-trip-${Date.now()}`
  const name = 'round trip'
  const t0 = Date.now()
  try {
    const sent = await injectScan({ collector: formatHostPort(at.host, at.port), hostId: host, ports: 20, batchSize: 20, seed: t0 % 100_000, timeoutMs, ...(tls !== undefined ? { tls } : {}) })
    if (sent.batches.ok + sent.batches.duplicate !== sent.batches.sent) return { name, ok: false, detail: `the collector did not accept the scan of ${host}: ${sent.firstRefusal ?? 'no ack'}`, fix: 'the collector line above, and the backend\'s log' }
  } catch (err) {
    return { name, ok: false, detail: `could not ship the scan of ${host}: ${(err as Error).message}`, fix: 'the collector and TLS lines above' }
  }
  while (Date.now() - t0 < timeoutMs) {
    try {
      const store = AlertStore.open(db, { readonly: true })
      try {
        if (store.listFindings({ host, limit: 5 }).items.length > 0) return { name, ok: true, detail: `a 20-port scan of ${host} reached the store as a finding in ${Date.now() - t0} ms` }
      } finally { store.close() }
    } catch {}
    await new Promise(resolve => setTimeout(resolve, 250))
  }
  return { name, ok: false, detail: `the scan of ${host} was acked, but no finding reached ${db} within ${timeoutMs} ms`, fix: 'detection is not running: in cluster mode, the partition lines above (picket detect nodes); else the backend\'s log' }
}

async function bridge (spec: string, sec: NatsSecurity): Promise<Check[]> {
  const name = `bridge ${spec}`
  let nc
  try {
    nc = await connectNats(parseNatsUrls(spec, '--bridge'), 'picket-doctor', 3000, sec)
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
  const tls: AgentTls | undefined = v['tls-ca'] !== undefined || v['tls-cert'] !== undefined
    ? { ca: v['tls-ca'], cert: v['tls-cert'], key: v['tls-key'], serverName: v['tls-server-name'] }
    : undefined
  const reach = await collector(v.collector)
  const checks = [
    ...tracepoints(v.tracefs),
    cgroup(),
    ...(v['no-agent'] ? [] : await agent(v['agent-metrics'])),
    reach,
    ...(reach.ok ? [await collectorTls(v.collector, tls)] : []),
    ...(v.bridge !== undefined ? await bridge(v.bridge, natsSecurity(v)) : []),
    store(v.db),
  ]
  if (v['round-trip']) checks.push(reach.ok ? await roundTrip(v.collector, v.db, tls, v['round-trip-timeout']) : { name: 'round trip', ok: false, detail: 'not tried: the collector is unreachable', fix: 'the collector line above' })
  return checks
}

export async function run (argv: string[]): Promise<number> {
  const cfg = parseCommand<Values>(OPTIONS, argv, 'picket doctor [options]',
    'Check every hop from the kernel\'s tracepoints to the alert store and say how to fix what is broken:\n' +
    'tracefs and the agent\'s tracepoints, the cgroup v2 mount, the agent (its /metrics: connected, capturing,\n' +
    'drops), the collector and its TLS against the agents\' flags, the NATS bridge with its streams, consumers\n' +
    'and partition leases (with --bridge), the store, and with --round-trip an injected scan that must reach\n' +
    'the store as a finding. Exits 1 if a check fails.')
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
