import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import { rootPath } from '../../../shared/paths.js'

// Child processes run the same build as the benchmark: dist/ when it runs
// from dist/ (npm run bench), the TypeScript sources through tsx otherwise.
// tsx goes in through --import so the child's worker threads (piscina
// decoders, detection workers) inherit it.

const FROM_TS = import.meta.url.endsWith('.ts')

function nodeArgs (): string[] {
  return FROM_TS ? ['--import', 'tsx'] : []
}

function childEnv (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, PICKET_LOG_PRETTY: '0', ...(FROM_TS ? { PICKET_TSX: '1' } : {}), ...extra }
}

/** `picket <args>` as a child process. */
export function spawnPicket (args: string[], opts: { stdio?: StdioOptions, env?: NodeJS.ProcessEnv } = {}): ChildProcess {
  return spawn(process.execPath, [...nodeArgs(), rootPath('bin', 'picket.js'), ...args], { stdio: opts.stdio ?? ['ignore', 'ignore', 'pipe'], env: childEnv(opts.env) })
}

/** A module beside this one (no extension), run as a child process with an IPC channel. */
export function spawnModule (fromUrl: string, relativeNoExt: string, args: string[] = [], opts: { env?: NodeJS.ProcessEnv, execArgv?: string[] } = {}): ChildProcess {
  const url = new URL(relativeNoExt + (fromUrl.endsWith('.ts') ? '.ts' : '.js'), fromUrl)
  return spawn(process.execPath, [...nodeArgs(), ...(opts.execArgv ?? []), fileURLToPath(url), ...args], {
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    env: childEnv(opts.env),
  })
}

/** A TCP port free right now on 127.0.0.1. */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const a = s.address()
      const port = typeof a === 'object' && a !== null ? a.port : 0
      s.close(() => resolve(port))
    })
  })
}

/** Keep the last `max` characters a child wrote to stderr, for error messages. */
export function tailStderr (p: ChildProcess, max = 4000): () => string {
  let buf = ''
  p.stderr?.setEncoding('utf8').on('data', (d: string) => { buf = (buf + d).slice(-max) })
  return () => buf
}
