import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { rootPath } from '../../shared/paths.js'

// Run the real `picket` command line (bin/picket.js → dist/, built by
// npm run build; PICKET_TSX=1 runs the TypeScript sources instead).

export interface PicketProcess {
  proc: ChildProcessWithoutNullStreams
  stdout: () => string
  stderr: () => string
  /** resolves when stderr (or stdout) matches, rejects on exit or timeout */
  waitFor: (re: RegExp, opts?: { stream?: 'stdout' | 'stderr', timeoutMs?: number }) => Promise<RegExpMatchArray>
  /** resolves with the exit code (signal name if killed) */
  exited: Promise<number | string>
  stop: (signal?: NodeJS.Signals) => Promise<number | string>
}

export function spawnPicket (args: string[], opts: { env?: NodeJS.ProcessEnv, cwd?: string } = {}): PicketProcess {
  const proc = spawn(process.execPath, [rootPath('bin', 'picket.js'), ...args], {
    cwd: opts.cwd ?? rootPath(),
    env: { ...process.env, PICKET_LOG_PRETTY: '0', ...opts.env },
  })
  let out = ''
  let err = ''
  proc.stdout.setEncoding('utf8').on('data', (d: string) => { out += d })
  proc.stderr.setEncoding('utf8').on('data', (d: string) => { err += d })
  const exited = new Promise<number | string>(resolve => proc.on('exit', (code, sig) => resolve(code ?? sig ?? -1)))
  let done = false
  void exited.then(() => { done = true })
  const waitFor = async (re: RegExp, o: { stream?: 'stdout' | 'stderr', timeoutMs?: number } = {}): Promise<RegExpMatchArray> => {
    const deadline = Date.now() + (o.timeoutMs ?? 30_000)
    for (;;) {
      const m = (o.stream === 'stdout' ? out : err).match(re)
      if (m !== null) return m
      if (done) throw new Error(`picket ${args.join(' ')} exited before ${String(re)}; stderr:\n${err.slice(-4000)}`)
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${String(re)} from picket ${args.join(' ')}; stderr:\n${err.slice(-4000)}`)
      await new Promise(resolve => setTimeout(resolve, 25))
    }
  }
  const stop = async (signal: NodeJS.Signals = 'SIGINT'): Promise<number | string> => {
    if (!done) proc.kill(signal)
    return await exited
  }
  return { proc, stdout: () => out, stderr: () => err, waitFor, exited, stop }
}
