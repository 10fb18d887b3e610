import { spawn, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'

// CPU time of a process (user + system seconds, children excluded), from /proc.
export function cpuSeconds (pid: number): { user: number, system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const hz = 100 // USER_HZ on Linux
  return { user: Number(fields[11]) / hz, system: Number(fields[12]) / hz }
}

/** Sum CPU over a process and its threads' lifetime so far. */
export function totalCpu (pid: number): number {
  const c = cpuSeconds(pid)
  return c.user + c.system
}

export function rssBytes (pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const m = /VmRSS:\s+(\d+) kB/.exec(status)
  return m !== null ? Number(m[1]) * 1024 : NaN
}

export async function runJson<T> (cmd: string, args: string[]): Promise<T> {
  return await new Promise((resolve, reject) => {
    const p = spawn(cmd, args)
    let out = ''; let err = ''
    p.stdout.on('data', d => { out += String(d) })
    p.stderr.on('data', d => { err += String(d) })
    p.on('error', reject)
    p.on('exit', code => {
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err}`))
      else {
        try { resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as T) } catch (e) { reject(new Error(`${cmd}: bad JSON output ${out}: ${(e as Error).message}`)) }
      }
    })
  })
}

export async function waitExit (p: ChildProcess, timeoutMs = 20_000): Promise<number | string> {
  if (p.exitCode !== null) return p.exitCode
  return await new Promise(resolve => {
    const timer = setTimeout(() => { p.kill('SIGKILL') }, timeoutMs)
    p.once('exit', (code, sig) => { clearTimeout(timer); resolve(code ?? sig ?? -1) })
  })
}

export const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

/** Peak resident set size (VmHWM) of a process. */
export function peakRssBytes (pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const m = /VmHWM:\s+(\d+) kB/.exec(status)
  return m !== null ? Number(m[1]) * 1024 : NaN
}

/** CPU seconds (user + system) of each thread of a process, by thread id; the main thread's id is the pid. */
export function threadCpu (pid: number): Map<number, number> {
  const out = new Map<number, number>()
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      out.set(Number(tid), (Number(f[11]) + Number(f[12])) / 100)
    } catch {} // the thread ended
  }
  return out
}

/** The name (comm) of each thread of a process, by thread id. */
export function threadNames (pid: number): Map<number, string> {
  const out = new Map<number, string>()
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try { out.set(Number(tid), readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim()) } catch {} // the thread ended
  }
  return out
}
