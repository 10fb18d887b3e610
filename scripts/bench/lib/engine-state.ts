import { spawnModule, tailStderr } from './spawn.js'
import { waitExit } from './proc.js'

/** Detection-engine heap per host with a full window of ordinary traffic (engine-state-child.ts, in a child with --expose-gc). */
export async function engineStatePerHost (o: { hosts: number, records: number, perBatch: number }): Promise<{ bytesPerHost: number, findings: number }> {
  const p = spawnModule(import.meta.url, './engine-state-child', [JSON.stringify(o)], { execArgv: ['--expose-gc'] })
  const stderr = tailStderr(p)
  const got = new Promise<{ bytesPerHost: number, findings: number }>((resolve, reject) => {
    p.once('message', m => resolve(m as { bytesPerHost: number, findings: number }))
    p.once('exit', code => reject(new Error(`engine-state-child exited (${String(code)}) without an answer: ${stderr()}`)))
  })
  try {
    return await got
  } finally {
    await waitExit(p)
  }
}
