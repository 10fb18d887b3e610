import t, { type Test } from 'tap'
import { join } from 'node:path'
import { jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import { partitionOf } from '../../backend/cluster/wire.js'
import { injectScan, type InjectSummary } from '../../scripts/injector/index.js'
import { spawnBackend, storedFindings, waitUntil, type BackendProcess } from '../backend/helpers/backend-process.js'
import { tempDir } from '../backend/helpers/records.js'
import { spawnPicket, type PicketProcess } from '../helpers/cli.js'
import { requireReal } from '../helpers/env.js'
import { startNatsCluster, type NatsCluster } from '../helpers/nats.js'

// Cluster-mode drills on real processes: a 3-server nats-server cluster
// (R3 streams), `picket backend --bridge`, and two or three `picket detect`
// nodes, each its own process, killed the way a machine dies. Each drill
// prints a `# drill:` line with the numbers RELIABILITY.md's cluster table
// is filled from.

const LEASE_TTL_MS = 10_000
const PARTITIONS = 16
const FENCED = 'picket_cluster_fenced_writes_total'

interface Node { id: string, proc: PicketProcess, url: string }

async function startNode (spec: string, id: string): Promise<Node> {
  const proc = spawnPicket(['detect', '--nats', spec, '--node-id', id, '--http', '127.0.0.1:0', '--log-level', 'info'])
  const m = await proc.waitFor(/\/metrics on (\S+)/)
  return { id, proc, url: m[1] }
}

async function owned (n: Node): Promise<number[]> {
  try {
    return ((await (await fetch(`${n.url}/healthz`, { signal: AbortSignal.timeout(1000) })).json()) as { owned: number[] }).owned
  } catch {
    return []
  }
}

/** Every node holds a share and together they hold all P partitions. */
async function shared (nodes: Node[]): Promise<boolean> {
  const o = await Promise.all(nodes.map(owned))
  return o.every(x => x.length > 0) && new Set(o.flat()).size === PARTITIONS && o.flat().length === PARTITIONS
}

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

interface DrillNumbers { sent: number, acked: number, expected: number, stored: number, duplicates: number, recoverMs: number | undefined }

/** Records in batches acked OK or DUPLICATE (a run's batches are all one size but the last; `sent` counts each batch once, resends aside). */
function recordsAcked (...runs: InjectSummary[]): number {
  let n = 0
  for (const r of runs) n += Math.min(r.records.total, Math.round(r.records.total * (r.batches.ok + r.batches.duplicate) / Math.max(1, r.batches.sent)))
  return n
}

/** Stored findings of the hosts, and the duplicates among them (beyond one finding per host). */
function findingsOf (db: string, hosts: string[]): { stored: number, duplicates: number } {
  let stored = 0
  let duplicates = 0
  for (const h of hosts) {
    const n = storedFindings(db, h).length
    stored += n
    duplicates += Math.max(0, n - 1)
  }
  return { stored, duplicates }
}

function report (t: Test, name: string, n: DrillNumbers): void {
  t.comment(`drill: ${name} | records sent ${n.sent} | records acked ${n.acked} | findings expected ${n.expected} | findings stored ${n.stored} | duplicates ${n.duplicates} | time to recover ${n.recoverMs === undefined ? '-' : `${(n.recoverMs / 1000).toFixed(1)} s`}`)
}

interface Scanned { victim: Node, sent: InjectSummary, recovered: number }

/**
 * Scan `host` and, 2 s in, send `signal` to the node owning its partition;
 * resolves once every batch is acked and the stored finding holds every
 * port, with the time from the signal to that.
 */
async function faultOwnerMidScan (t: Test, nodes: Node[], collector: string, db: string, o: { host: string, ports: number, batchSize: number, rate: number, seed: number, signal: NodeJS.Signals }): Promise<Scanned> {
  const p = partitionOf(o.host, PARTITIONS)
  const owners = await Promise.all(nodes.map(owned))
  const victim = nodes[owners.findIndex(x => x.includes(p))]
  t.ok(victim, `some node owns partition ${p}`)
  const scan = injectScan({ collector, hostId: o.host, ports: o.ports, batchSize: o.batchSize, rate: o.rate, seed: o.seed })
  await sleep(2000)
  victim.proc.proc.kill(o.signal)
  const at = Date.now()
  const sent = await scan
  t.equal(sent.batches.ok, sent.batches.sent, `every batch acked (stored by JetStream) after the owner's ${o.signal}`)
  await waitUntil(() => storedFindings(db, o.host).some(f => f.portCount === o.ports), `a finding holding all ${o.ports} ports`, LEASE_TTL_MS + 20_000)
  return { victim, sent, recovered: Date.now() - at }
}

t.test('cluster drills', async t => {
  if (!requireReal(t, { commands: ['nats-server'] })) return
  const tmp = tempDir()
  t.teardown(tmp.cleanup)
  const cluster: NatsCluster = await startNatsCluster(3)
  t.teardown(cluster.stop)
  const db = join(tmp.dir, 'p.db')
  let backend: BackendProcess = await spawnBackend(db, ['--bridge', cluster.spec, '--log-level', 'info'])
  t.teardown(async () => { await backend.stop() })
  const nodes = [await startNode(cluster.spec, 'd1'), await startNode(cluster.spec, 'd2')]
  const all: Node[] = [...nodes]
  t.teardown(async () => { for (const n of all) await n.proc.stop('SIGTERM') })
  await waitUntil(async () => await shared(nodes), 'the two detection nodes to share the 16 partitions', 30_000)

  await t.test('picket doctor sees the streams, the consumers and every partition owned', async t => {
    const p = spawnPicket(['doctor', '--bridge', cluster.spec, '--collector', backend.collector, '--db', db])
    const code = await p.exited
    const out = p.stdout()
    t.match(out, new RegExp(`ok\\s+stream PICKET_BATCHES\\s+${PARTITIONS} partitions`))
    for (let i = 0; i < PARTITIONS; i++) t.match(out, new RegExp(`ok\\s+partition ${i}\\s+owned by d[12] \\(lease token \\d+\\); lag \\d+ batches`), `partition ${i} owned`)
    t.match(out, /ok\s+store /)
    // tracefs and cgroup lines depend on the machine; the cluster's lines must not fail
    t.notMatch(out, /FAIL\s+(bridge|stream|partition|collector|store)/, out)
    t.ok(code === 0 || /FAIL\s+(tracefs|tracepoint|cgroup|agent)/.test(out), 'exit 0 unless the machine lacks tracefs or cgroup v2, or runs no agent')
  })

  await t.test('SIGKILL the node that owns the scanned host mid-scan: exactly one finding within the lease TTL plus a few seconds', async t => {
    const host = 'drill-kill'
    // 100 ports at 20 records/s: the scan crosses 15 ports on the victim and goes on for 5 s
    const { victim, sent, recovered } = await faultOwnerMidScan(t, nodes, backend.collector, db, { host, ports: 100, batchSize: 5, rate: 20, seed: 11, signal: 'SIGKILL' })
    t.comment(`failover: the finding held every port ${recovered} ms after the SIGKILL (lease TTL ${LEASE_TTL_MS} ms)`)
    t.ok(recovered <= LEASE_TTL_MS + 8000, `recovered within the lease TTL + 8 s (${recovered} ms)`)
    await sleep(3000)
    const found = storedFindings(db, host)
    t.equal(found.length, 1, 'exactly one finding: the takeover\'s replay named the same one')
    t.equal(found[0].portCount, 100)
    report(t, 'SIGKILL the detection node owning the scanned host, mid-scan', { sent: sent.records.total, acked: recordsAcked(sent), expected: 1, ...findingsOf(db, [host]), recoverMs: recovered })
    nodes.splice(nodes.indexOf(victim), 1)
  })

  await t.test('add a detection node while scans flow: partitions move to it, no finding lost or doubled', async t => {
    // back to two nodes first (the drill above killed one), then a third joins mid-scan
    nodes.push(await startNode(cluster.spec, 'd3'))
    all.push(nodes[nodes.length - 1])
    await waitUntil(async () => await shared(nodes), 'two nodes sharing the partitions again', 30_000)
    const scan = injectScan({ collector: backend.collector, hostId: 'drill-join', hosts: 16, ports: 40, batchSize: 4, rate: 100, seed: 21 })
    await sleep(2000)
    const joinedAt = Date.now()
    const joiner = await startNode(cluster.spec, 'd4')
    nodes.push(joiner)
    all.push(joiner)
    await waitUntil(async () => (await owned(joiner)).length >= 4 && await shared(nodes), 'the third node to take its share', 30_000)
    const rebalanced = Date.now() - joinedAt
    const sent = await scan
    t.equal(sent.batches.ok + sent.batches.duplicate, sent.batches.sent, 'every batch acked')
    const hosts = sent.hostIds
    await waitUntil(() => hosts.every(h => storedFindings(db, h).some(f => f.portCount === 40)), 'every host\'s finding holding its 40 ports', 30_000)
    await sleep(3000)
    const o = await Promise.all(nodes.map(owned))
    t.comment(`partitions after the join: ${nodes.map((n, i) => `${n.id} ${o[i].length}`).join(', ')}; rebalanced ${rebalanced} ms after the start`)
    t.ok(o[2].length > 0, 'the new node owns partitions')
    for (const h of hosts) {
      const f = storedFindings(db, h)
      t.equal(f.length, 1, `${h}: one finding`)
      t.equal(f[0]?.portCount, 40, `${h}: every port`)
    }
    report(t, 'add a third detection node while 16 hosts are scanned', { sent: sent.records.total, acked: recordsAcked(sent), expected: hosts.length, ...findingsOf(db, hosts), recoverMs: rebalanced })
  })

  await t.test('SIGSTOP a detection node past its lease, then SIGCONT: its late writes are refused by fencing', async t => {
    const host = 'drill-stop'
    const fencedBefore = await backend.metric(FENCED)
    // one record a batch, 40 a second: the victim's incident is almost always
    // grown since its last Update (at most one a second), so it holds an
    // Update to send when it wakes, stamped with the lease token it lost
    const { victim, sent, recovered } = await faultOwnerMidScan(t, nodes, backend.collector, db, { host, ports: 200, batchSize: 1, rate: 40, seed: 31, signal: 'SIGSTOP' })
    await sleep(Math.max(0, LEASE_TTL_MS + 2000 - recovered))
    victim.proc.proc.kill('SIGCONT')
    await waitUntil(async () => await backend.metric(FENCED) > fencedBefore, 'the woken node\'s late write refused by fencing', 15_000)
    const refused = await backend.metric(FENCED) - fencedBefore
    t.ok(refused >= 1, `${refused} late finding message(s) refused`)
    await sleep(2000)
    const found = storedFindings(db, host)
    t.equal(found.length, 1, 'one finding: no duplicate')
    t.equal(found[0].portCount, 200, 'not rolled back to the stale owner\'s smaller count')
    t.comment(`fencing: ${refused} finding message(s) from ${victim.id} refused after SIGCONT`)
    report(t, `SIGSTOP the owning detection node past its lease, SIGCONT (${refused} late writes refused)`, { sent: sent.records.total, acked: recordsAcked(sent), expected: 1, ...findingsOf(db, [host]), recoverMs: recovered })
    await waitUntil(async () => await shared(nodes), 'the woken node back in the rotation', 30_000)
  })

  await t.test('restart the backend: the agent replays, no duplicate finding', async t => {
    const host = 'drill-restart'
    const shots = { hostId: host, ports: 100, batchSize: 10, seed: 6 }
    const first = await injectScan({ collector: backend.collector, ...shots })
    t.equal(first.batches.ok, 10)
    await waitUntil(() => storedFindings(db, host).some(f => f.portCount === 100), 'the finding of the first run', LEASE_TTL_MS + 20_000)
    backend.proc.proc.kill('SIGKILL')
    const killedAt = Date.now()
    await backend.proc.exited
    backend = await spawnBackend(db, ['--bridge', cluster.spec])
    // an agent whose acks were lost sends the same (host, instance, seq) again
    const replay = await injectScan({ collector: backend.collector, ...shots })
    const recovered = Date.now() - killedAt
    t.equal(replay.batches.duplicate, 10, 'every replayed batch is a duplicate by Nats-Msg-Id')
    await sleep(3000)
    const found = storedFindings(db, host)
    t.equal(found.length, 1, 'one finding')
    t.equal(found[0].state, 'open', 'a cluster backend does not close the detection nodes\' open incidents at start-up')
    report(t, 'SIGKILL and restart the backend; the agent replays', { sent: first.records.total + replay.records.total, acked: recordsAcked(first, replay), expected: 1, ...findingsOf(db, [host]), recoverMs: recovered })
  })

  await t.test('SIGKILL one NATS server (the batch stream\'s leader) mid-flow: no batch lost, the agents\' spools drain', async t => {
    const nc = await connect({ servers: cluster.urls, timeout: 2000 })
    const leader = (await (await jetstreamManager(nc)).streams.info('PICKET_BATCHES')).cluster?.leader
    await nc.close()
    const idx = Math.max(0, Number(/picket-n(\d+)/.exec(leader ?? '')?.[1] ?? 0))
    const scan = injectScan({ collector: backend.collector, hostId: 'drill-nats', hosts: 8, ports: 60, batchSize: 2, rate: 160, seed: 41 })
    await sleep(1000)
    const server = cluster.procs[idx]
    server.kill('SIGKILL')
    const killedAt = Date.now()
    const sent = await scan
    const drained = Date.now() - killedAt
    t.comment(`killed nats-server picket-n${idx} (stream leader ${leader ?? 'unknown'}); ${sent.batches.retried} batches resent after RETRY`)
    t.equal(sent.batches.refused, 0, 'nothing refused')
    t.equal(sent.batches.ok + sent.batches.duplicate, sent.batches.sent, 'every batch acked: the spools drained')
    const hosts = sent.hostIds
    // a lost batch never arrives, so the wait only tolerates slowness: a CI
    // run on a loaded 2-core machine (1,095 batches resent) passed 40 s
    await waitUntil(() => hosts.every(h => storedFindings(db, h).some(f => f.portCount === 60)), 'every host\'s finding holding its 60 ports (no batch lost)', 90_000)
    await sleep(2000)
    for (const h of hosts) t.equal(storedFindings(db, h).length, 1, `${h}: one finding`)
    report(t, 'SIGKILL the batch stream\'s leader nats-server mid-flow', { sent: sent.records.total, acked: recordsAcked(sent), expected: hosts.length, ...findingsOf(db, hosts), recoverMs: drained })
  })
})
