import { Worker } from 'node:worker_threads'
import { siblingModule } from '../../../shared/paths.js'
import { workerScript } from '../../../shared/worker-script.js'

// Start lib/decode-thread.ts: the single-thread variants of the decode
// benchmark (and the peer of agent-pipeline), in a worker thread with the
// decoder pool's heap setting.

/** The decoder pool's heap setting (agent/decode-pool/pool.ts), for the thread that runs the single-thread variants. */
const DECODER_RESOURCE_LIMITS = { maxYoungGenerationSizeMb: 48 }

export interface DecodeThread { run: (name: string) => Promise<number>, info: { batchBytes: number, medianBytes: number, fullBytes: number, slabs: number, slabBytes: number }, close: () => Promise<void> }

export async function startDecodeThread (records: number): Promise<DecodeThread> {
  const { script, eval: isEval } = workerScript(siblingModule(import.meta.url, './decode-thread'))
  const w = new Worker(script, { eval: isEval, workerData: { records }, resourceLimits: DECODER_RESOURCE_LIMITS })
  let pending: ((m: unknown) => void) | undefined
  let failed: Error | undefined
  w.on('error', err => { failed = err; pending?.(undefined) })
  const next = async (): Promise<unknown> => await new Promise(resolve => { pending = resolve })
  w.on('message', m => { const p = pending; pending = undefined; p?.(m) })
  const info = await next() as DecodeThread['info'] | undefined
  if (info === undefined) throw failed ?? new Error('the decode thread failed to start')
  return {
    info,
    run: async name => {
      const got = next()
      w.postMessage({ name })
      const m = await got as { seconds: number } | undefined
      if (m === undefined) throw failed ?? new Error('the decode thread failed')
      return m.seconds
    },
    close: async () => { await w.terminate() },
  }
}

function canRunWorkers (): boolean {
  // from TypeScript sources a piscina worker needs tsx in its execArgv
  return !import.meta.url.endsWith('.ts') || process.execArgv.some(a => a.includes('tsx'))
}

