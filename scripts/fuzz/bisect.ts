import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DEFAULT_LIMITS } from '../../backend/limits.js'
import { startBackendProc } from '../bench/lib/backend.js'
import { sleep } from '../bench/lib/proc.js'
import { episodeSpecs, materialize } from './batches.js'
import { RawShipClient, wireBytes } from './ship.js'

// Which episode killed the backend? A batch is acked before the findings
// it causes are written, so the one that kills the backend is often already
// answered when it dies. Replay the suspects on fresh backends, halving the
// set each time, until one episode alone kills it.

export interface Culprit { episode: number, labels: string[] }

async function kills (seed: number, episodes: readonly number[], victim: string, workers: number): Promise<boolean> {
  const dir = mkdtempSync(join(tmpdir(), 'picket-fuzz-bisect-'))
  const be = await startBackendProc({ db: join(dir, 'picket.db'), workers })
  const client = new RawShipClient(be.address)
  try {
    for (const index of episodes) {
      if (be.exit() !== null) break
      const { spec } = episodeSpecs(seed, index).next().value as { spec: Parameters<typeof materialize>[0] }
      const ep = materialize(spec, { seed, index, now: Date.now(), victim, limits: DEFAULT_LIMITS })
      await client.send(ep, ep.shipments.map(wireBytes), 10_000)
    }
    // findings are written after the ack: give the workers a tick and the pipeline a turn
    if (be.exit() === null) await be.flush().catch(() => {})
    await Promise.race([be.exited, sleep(1500)])
    return be.exit() !== null
  } finally {
    client.close()
    await be.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

export async function findCulprit (seed: number, suspects: readonly number[], opts: { victim: string, workers?: number }): Promise<Culprit | undefined> {
  const workers = opts.workers ?? 2
  let set = [...new Set(suspects)].sort((a, b) => a - b)
  if (set.length === 0 || !(await kills(seed, set, opts.victim, workers))) return undefined
  while (set.length > 1) {
    const half = set.slice(0, set.length >> 1)
    if (await kills(seed, half, opts.victim, workers)) { set = half; continue }
    const rest = set.slice(set.length >> 1)
    if (rest.length < set.length && await kills(seed, rest, opts.victim, workers)) { set = rest; continue }
    return undefined // only a combination kills it
  }
  const index = set[0]
  const { spec } = episodeSpecs(seed, index).next().value as { spec: Parameters<typeof materialize>[0] }
  const ep = materialize(spec, { seed, index, now: Date.now(), victim: opts.victim, limits: DEFAULT_LIMITS })
  return { episode: index, labels: ep.shipments.flatMap(s => s.labels) }
}
