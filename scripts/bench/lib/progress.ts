import cliProgress from 'cli-progress'

// A progress bar on stderr for a terminal, plain progress lines otherwise (CI logs).

export interface Progress {
  start: (label: string, total: number) => void
  tick: (n?: number, note?: string) => void
  stop: () => void
}

export function createProgress (enabled = true): Progress {
  if (!enabled) return { start: () => {}, tick: () => {}, stop: () => {} }
  if (process.stderr.isTTY !== true) {
    let label = ''; let total = 0; let done = 0
    return {
      start: (l, t) => { label = l; total = t; done = 0; process.stderr.write(`bench: ${label}: 0/${total}\n`) },
      tick: (n = 1, note) => { done += n; process.stderr.write(`bench: ${label}: ${done}/${total}${note !== undefined ? ' ' + note : ''}\n`) },
      stop: () => {},
    }
  }
  const bar = new cliProgress.SingleBar({
    format: 'bench {label} [{bar}] {value}/{total} {note}',
    stream: process.stderr,
    hideCursor: true,
    clearOnComplete: false,
  }, cliProgress.Presets.shades_classic)
  let running = false
  return {
    start: (label, total) => { if (running) bar.stop(); bar.start(total, 0, { label, note: '' }); running = true },
    tick: (n = 1, note = '') => { bar.increment(n, { note }) },
    stop: () => { if (running) bar.stop(); running = false },
  }
}
