import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import { freePort } from '../../scripts/bench/lib/spawn.js'

export { freePort }

// A real nats-server cluster for the cluster-mode drills: N servers with
// JetStream on loopback ports, each its own process (spawned directly, so
// the pid is the server's and a signal reaches it, not a wrapper).

export const NATS_SERVER = '/usr/sbin/nats-server'

export interface NatsCluster {
  urls: string[]
  /** nats://a,nats://b,nats://c */
  spec: string
  procs: ChildProcess[]
  stop: () => Promise<void>
}

export async function startNatsCluster (size = 3): Promise<NatsCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'picket-nats-'))
  const client = await Promise.all(Array.from({ length: size }, async () => await freePort()))
  const route = await Promise.all(Array.from({ length: size }, async () => await freePort()))
  const procs = client.map((port, i) => {
    const args = ['-js', '-a', '127.0.0.1', '-p', String(port), '-n', `picket-n${i}`, '-sd', join(dir, `n${i}`)]
    if (size > 1) args.push('--cluster_name', 'picket-test', '--cluster', `nats://127.0.0.1:${route[i]}`, '--routes', route.filter((_, j) => j !== i).map(p => `nats://127.0.0.1:${p}`).join(','))
    const p = spawn(NATS_SERVER, args, { stdio: ['ignore', 'ignore', 'pipe'] })
    p.stderr?.resume()
    return p
  })
  const urls = client.map(p => `nats://127.0.0.1:${p}`)
  const stop = async (): Promise<void> => {
    await Promise.all(procs.map(async p => {
      if (p.exitCode !== null || p.signalCode !== null) return
      const gone = new Promise(resolve => p.once('exit', resolve))
      p.kill('SIGTERM')
      await gone
    }))
    rmSync(dir, { recursive: true, force: true })
  }
  // ready once JetStream has a meta leader: stream creation fails before
  const deadline = Date.now() + 30_000
  for (;;) {
    try {
      const nc = await connect({ servers: urls, timeout: 1000 })
      try {
        const jsm = await jetstreamManager(nc, { timeout: 2000 })
        await jsm.getAccountInfo()
        if (size === 1) break
        const probe = `PROBE_${Date.now()}`
        await jsm.streams.add({ name: probe, subjects: [`probe.${Date.now()}`], num_replicas: size })
        await jsm.streams.delete(probe)
        break
      } finally {
        await nc.close()
      }
    } catch (err) {
      if (Date.now() > deadline) { await stop(); throw new Error(`the nats-server cluster did not get ready: ${(err as Error).message}`) }
      await new Promise(resolve => setTimeout(resolve, 300))
    }
  }
  return { urls, spec: urls.join(','), procs, stop }
}
