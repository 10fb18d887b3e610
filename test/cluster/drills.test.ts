import t from 'tap'
import { join } from 'node:path'
import { partitionOf } from '../../backend/cluster/wire.js'
import { injectScan } from '../../scripts/injector/index.js'
import { spawnBackend, storedFindings, waitUntil, type BackendProcess } from '../backend/helpers/backend-process.js'
import { tempDir } from '../backend/helpers/records.js'
import { spawnPicket, type PicketProcess } from '../helpers/cli.js'
import { requireReal } from '../helpers/env.js'
import { startNatsCluster, type NatsCluster } from '../helpers/nats.js'

// Cluster-mode drills on real processes: a 3-server nats-server cluster
// (R3 streams), `picket backend --bridge`, and two `picket detect` nodes,
// each its own process, killed the way a machine dies.

const LEASE_TTL_MS = 10_000
const PARTITIONS = 16

interface Node { id: string, proc: PicketProcess, url: string }

async function startNode (spec: string, id: string): Promise<Node> {
  const proc = spawnPicket(['detect', '--nats', spec, '--node-id', id, '--http', '127.0.0.1:0', '--log-level', 'info'])
  const m = await proc.waitFor(/\/metrics on (\S+)/)
  return { id, proc, url: m[1] }
}

async function owned (n: Node): Promise<number[]> {
  try {
    return ((await (await fetch(`${n.url}/healthz`)).json()) as { owned: number[] }).owned
  } catch {
    return []
  }
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
  t.teardown(async () => { for (const n of nodes) await n.proc.stop('SIGTERM') })
  await waitUntil(async () => {
    const [a, b] = await Promise.all(nodes.map(owned))
    return a.length > 0 && b.length > 0 && a.length + b.length === PARTITIONS
  }, 'the two detection nodes to share the 16 partitions', 30_000)

  await t.test('picket doctor sees the streams, the consumers and every partition owned', async t => {
    const p = spawnPicket(['doctor', '--bridge', cluster.spec, '--collector', backend.collector, '--db', db])
    const code = await p.exited
    const out = p.stdout()
    t.match(out, new RegExp(`ok\\s+stream PICKET_BATCHES\\s+${PARTITIONS} partitions`))
    for (let i = 0; i < PARTITIONS; i++) t.match(out, new RegExp(`ok\\s+partition ${i}\\s+owned by d[12] \\(lease token \\d+\\); lag \\d+ batches`), `partition ${i} owned`)
    t.match(out, /ok\s+store /)
    // tracefs and cgroup lines depend on the machine; the cluster's lines must not fail
    t.notMatch(out, /FAIL\s+(bridge|stream|partition|collector|store)/, out)
    t.ok(code === 0 || /FAIL\s+(tracefs|tracepoint|cgroup)/.test(out), 'exit 0 unless the machine lacks tracefs or cgroup v2')
  })

  await t.test('SIGKILL the node that owns the scanned host mid-scan: exactly one finding within the lease TTL plus a few seconds', async t => {
    const host = 'drill-kill'
    const p = partitionOf(host, PARTITIONS)
    const owners = await Promise.all(nodes.map(owned))
    const victim = nodes[owners.findIndex(o => o.includes(p))]
    t.ok(victim, `some node owns partition ${p}`)
    // 100 ports at 20 records/s: the scan crosses 15 ports on the victim and goes on for 5 s
    const scan = injectScan({ collector: backend.collector, hostId: host, ports: 100, batchSize: 5, rate: 20, seed: 11 })
    await new Promise(resolve => setTimeout(resolve, 2000))
    victim.proc.proc.kill('SIGKILL')
    const killedAt = Date.now()
    const sent = await scan
    t.equal(sent.batches.ok, sent.batches.sent, 'every batch acked (stored by JetStream) while the node died')
    await waitUntil(() => storedFindings(db, host).some(f => f.portCount === 100), 'a finding holding all 100 ports', LEASE_TTL_MS + 20_000)
    const recovered = Date.now() - killedAt
    t.comment(`failover: the finding held every port ${recovered} ms after the SIGKILL (lease TTL ${LEASE_TTL_MS} ms)`)
    t.ok(recovered <= LEASE_TTL_MS + 8000, `recovered within the lease TTL + 8 s (${recovered} ms)`)
    await new Promise(resolve => setTimeout(resolve, 3000))
    const found = storedFindings(db, host)
    t.equal(found.length, 1, 'exactly one finding: the takeover\'s replay named the same one')
    t.equal(found[0].portCount, 100)
    nodes.splice(nodes.indexOf(victim), 1)
  })

  await t.test('restart the backend: the agent replays, no duplicate finding', async t => {
    const host = 'drill-restart'
    const shots = { hostId: host, ports: 100, batchSize: 10, seed: 6 }
    const first = await injectScan({ collector: backend.collector, ...shots })
    t.equal(first.batches.ok, 10)
    await waitUntil(() => storedFindings(db, host).some(f => f.portCount === 100), 'the finding of the first run', LEASE_TTL_MS + 20_000)
    backend.proc.proc.kill('SIGKILL')
    await backend.proc.exited
    backend = await spawnBackend(db, ['--bridge', cluster.spec])
    // an agent whose acks were lost sends the same (host, instance, seq) again
    const replay = await injectScan({ collector: backend.collector, ...shots })
    t.equal(replay.batches.duplicate, 10, 'every replayed batch is a duplicate by Nats-Msg-Id')
    await new Promise(resolve => setTimeout(resolve, 3000))
    const found = storedFindings(db, host)
    t.equal(found.length, 1, 'one finding')
    t.equal(found[0].state, 'open', 'a cluster backend does not close the detection nodes\' open incidents at start-up')
  })
})
