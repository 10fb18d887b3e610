import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { HealthReport } from '../../../backend/http.js'
import type { ChildIn, ChildOptions, ChildOut, StoredLatency } from './backend-protocol.js'
import { waitExit } from './proc.js'
import { spawnModule, tailStderr } from './spawn.js'

/**
 * node flags the backend runs with in production (scripts/systemd/
 * picket-backend.service, scripts/start.sh): Node 24's V8 lets a busy main
 * thread keep a 128 MiB young generation, garbage capacity that is no state.
 * The child runs as production does unless a caller says otherwise.
 */
export const BACKEND_NODE_ARGS: readonly string[] = ['--max-semi-space-size=16']

// The parent's handle on a backend child process (backend-child.ts).

export interface BackendProcOptions extends Omit<ChildOptions, 'db' | 'detectionWorker'> {
  /** alert store file; default a fresh one in a temp folder that stop() removes */
  db?: string
  detectionWorker?: URL
  /** added to the child's environment (its worker threads get a copy) */
  env?: NodeJS.ProcessEnv
  /** node (and V8) flags of the child */
  execArgv?: string[]
}

export interface BackendProc {
  pid: number
  /** the child's alert store (open it read-only to look at what it wrote) */
  db: string
  address: string
  workers: number
  /** http://host:port of /healthz and /metrics, when asked for */
  http: string | undefined
  /** resolves with the exit code (or signal name) when the process ends, for whatever reason */
  exited: Promise<number | string>
  /** the exit code or signal once the process has ended, else null */
  exit: () => number | string | null
  /** the last 16 KB it wrote to stderr */
  stderr: () => string
  /** findings created so far, as the child reported them */
  created: StoredLatency[]
  /** restart the main thread's event-loop utilisation window */
  mark: () => Promise<void>
  /** main-thread event-loop utilisation, its delay p99, and the most batches queued to the detection workers, since mark() */
  elu: () => Promise<{ utilization: number, delayP99Ms: number, maxQueued: number }>
  flush: () => Promise<void>
  /** process.memoryUsage() of the child: rss, and the main thread's V8 heap and buffers */
  mem: () => Promise<NodeJS.MemoryUsage>
  findings: () => Promise<Array<{ rule: string, host: string | null, sources: string[] }>>
  /** the child's /metrics text */
  metrics: () => Promise<string>
  health: () => Promise<HealthReport>
  stop: () => Promise<void>
  /** SIGKILL, as a crash would end it; resolves once it is gone */
  kill: () => Promise<void>
}

export async function startBackendProc (opts: BackendProcOptions = {}): Promise<BackendProc> {
  const own = opts.db === undefined
  const dir = own ? mkdtempSync(join(tmpdir(), 'picket-bench-backend-')) : undefined
  const db = opts.db ?? join(dir as string, 'picket.db')
  const { env, execArgv = [...BACKEND_NODE_ARGS], detectionWorker, ...rest } = opts
  const child: ChildOptions = { ...rest, db, ...(detectionWorker !== undefined ? { detectionWorker: detectionWorker.href } : {}) }
  const p: ChildProcess = spawnModule(import.meta.url, './backend-child', [JSON.stringify(child)], { ...(env !== undefined ? { env } : {}), execArgv })
  const stderr = tailStderr(p, 16_000)
  let exitedAs: number | string | null = null
  const exited = new Promise<number | string>(resolve => p.once('exit', (code, sig) => { exitedAs = code ?? sig ?? -1; resolve(exitedAs) }))
  const cleanup = (): void => { if (dir !== undefined) rmSync(dir, { recursive: true, force: true }) }
  const created: StoredLatency[] = []
  const waiters = new Map<ChildOut['t'], Array<(m: ChildOut) => void>>()
  p.on('message', (m: ChildOut) => {
    if (m.t === 'findings') { for (const f of m.list) created.push(f); return }
    const w = waiters.get(m.t)?.shift()
    w?.(m)
  })
  const ask = async <T extends ChildOut['t']>(msg: ChildIn | undefined, reply: T, timeoutMs = 30_000): Promise<Extract<ChildOut, { t: T }>> => {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the backend child did not answer '${reply}' within ${timeoutMs} ms; its stderr:\n${stderr()}`)), timeoutMs)
      const onExit = (code: number | null): void => { clearTimeout(timer); reject(new Error(`the backend child exited (${String(code)}); its stderr:\n${stderr()}`)) }
      p.once('exit', onExit)
      const list = waiters.get(reply) ?? []
      list.push(m => { clearTimeout(timer); p.off('exit', onExit); resolve(m as Extract<ChildOut, { t: T }>) })
      waiters.set(reply, list)
      if (msg !== undefined) p.send(msg)
    })
  }
  let ready: Extract<ChildOut, { t: 'ready' }>
  try {
    ready = await ask(undefined, 'ready', 60_000)
  } catch (err) {
    p.kill('SIGKILL')
    await exited
    cleanup()
    throw err
  }
  return {
    pid: p.pid as number,
    db,
    address: ready.address,
    workers: ready.workers,
    http: ready.http,
    exited,
    exit: () => exitedAs,
    stderr,
    created,
    mark: async () => { await ask({ t: 'mark' }, 'marked') },
    elu: async () => { const e = await ask({ t: 'elu' }, 'elu'); return { utilization: e.utilization, delayP99Ms: e.delayP99Ms, maxQueued: e.maxQueued } },
    flush: async () => { await ask({ t: 'flush' }, 'flushed', 60_000) },
    mem: async () => (await ask({ t: 'mem' }, 'mem')).usage,
    findings: async () => (await ask({ t: 'findings' }, 'allFindings', 60_000)).list,
    metrics: async () => (await ask({ t: 'metrics' }, 'metrics')).text,
    health: async () => (await ask({ t: 'health' }, 'health')).report,
    stop: async () => {
      if (exitedAs === null) p.send({ t: 'stop' } satisfies ChildIn)
      await waitExit(p, 15_000)
      cleanup()
    },
    kill: async () => {
      if (exitedAs === null) p.kill('SIGKILL')
      await exited
    },
  }
}
