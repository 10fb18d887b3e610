import { AlertStore, type StoredFinding } from '../../../backend/store/index.js'
import { spawnPicket, type PicketProcess } from '../../helpers/cli.js'

// A real `picket backend` in its own process, as an operator runs it: a
// test can watch it survive (or SIGKILL it) and read its store and /metrics
// from outside.

export interface BackendProcess {
  proc: PicketProcess
  collector: string
  httpUrl: string
  db: string
  /** still running? */
  alive: () => boolean
  /** one sample from /metrics, 0 when the series is not there */
  metric: (name: string, labels?: Record<string, string>) => Promise<number>
  stop: () => Promise<number | string>
}

export async function spawnBackend (db: string, extra: string[] = []): Promise<BackendProcess> {
  const proc = spawnPicket(['backend', '--listen', '127.0.0.1:0', '--http', '127.0.0.1:0', '--db', db, '--workers', '1', '--log-level', 'warn', ...extra])
  const m = await proc.waitFor(/collector on (\S+), console and \/metrics on (\S+),/)
  let exited = false
  void proc.exited.then(() => { exited = true })
  const httpUrl = m[2]
  return {
    proc,
    collector: m[1],
    httpUrl,
    db,
    alive: () => !exited,
    metric: async (name, labels = {}) => {
      const text = await (await fetch(`${httpUrl}/metrics`)).text()
      const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`)
      for (const line of text.split('\n')) {
        const mm = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line)
        if (mm === null || mm[1] !== name) continue
        const have = (mm[2] ?? '').split(',')
        if (want.every(w => have.includes(w))) return Number(mm[3])
      }
      return 0
    },
    stop: async () => await proc.stop('SIGINT'),
  }
}

/** The findings of `host` in the store at `db`, read the way `picket alerts` reads it. */
export function storedFindings (db: string, host: string): StoredFinding[] {
  const store = AlertStore.open(db, { readonly: true })
  try {
    return store.listFindings({ host, limit: 500 }).items
  } finally {
    store.close()
  }
}

/** Poll until `pred` holds, or fail saying what was awaited. */
export async function waitUntil (pred: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}
