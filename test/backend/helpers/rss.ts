import { readFileSync } from 'node:fs'

// A child process's resident set, read from /proc: the backend under test
// runs in its own process, so its RSS is its own.

export function rssOf (pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m === null ? 0 : Number(m[1]) * 1024
}

/** Sample `pid`'s RSS every 50 ms from now; `peak()` is the highest seen, `stop()` ends the sampling. */
export function rssPeak (pid: number): { idle: number, peak: () => number, stop: () => void } {
  const idle = rssOf(pid)
  let peak = idle
  const timer = setInterval(() => { peak = Math.max(peak, rssOf(pid)) }, 50)
  return { idle, peak: () => Math.max(peak, rssOf(pid)), stop: () => clearInterval(timer) }
}

export const mib = (n: number): string => `${Math.round(n / 1024 / 1024)} MiB`
