import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { FileProbe, openRing, ProcProbe, procDrops, type RingSource } from '../../bpf/index.js'
import { rootPath } from '../../shared/paths.js'
import { attachFloor } from './lib/floor.js'
import { runJson } from './lib/proc.js'
import { fmt, machine, median, table } from './lib/report.js'

// kproc: what the process and file probes cost the monitored host. Three
// storms (scripts/bench/kstorm.c: fork+exec of /bin/true, write opens,
// read-only opens) run with nothing attached, with a do-nothing program on
// every tracepoint the probes use (the floor: the price of the tracepoints
// themselves), and with ProcProbe and FileProbe attached and drained,
// interleaved run by run so the machine's noise hits all three alike.
//
//   flock /tmp/picket-kernel.lock npx tsx scripts/bench/kproc.ts [--runs 5] [--execs 2000] [--opens 50000] [--dir /dev/shm]

const BUILD = rootPath('scripts', 'bench', 'build')
const KSTORM = join(BUILD, 'kstorm')

type Mode = 'none' | 'floor' | 'probes'
type Storm = 'exec' | 'write' | 'read'
interface StormResult { op: string, count: number, seconds: number, rate: number }

function build (): void {
  mkdirSync(BUILD, { recursive: true })
  const r = spawnSync('cc', ['-O2', '-Wall', '-Werror', '-o', KSTORM, rootPath('scripts', 'bench', 'kstorm.c')], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`cc kstorm.c: ${r.stderr}`)
}

interface Attached { close: () => void, drain?: () => void, stats?: () => string }

function attach (mode: Mode): Attached {
  if (mode === 'none') return { close: () => {} }
  if (mode === 'floor') {
    return attachFloor([...ProcProbe.configure().attach, ...FileProbe.configure().attach])
  }
  const proc = ProcProbe.open({ ignoreTgid: process.pid })
  const file = FileProbe.open({ ignoreTgid: process.pid })
  const rings: RingSource[] = [openRing(proc.ringFd), openRing(file.ringFd)]
  const slab = new SharedArrayBuffer(4 << 20)
  let received = 0
  // the agent's way: drain on a short timer, no wakeup per record
  const drain = (): void => { for (const r of rings) for (;;) { const d = r.drain(slab, 0, slab.byteLength, 0); received += d.records; if (d.records === 0) break } }
  const timer = setInterval(drain, 5)
  return {
    drain,
    stats: () => `received ${received}, dropped ${procDrops(proc.counters()) + file.counters().file.reserveFailed}`,
    close: () => { clearInterval(timer); drain(); for (const r of rings) r.close(); proc.close(); file.close() },
  }
}

async function storm (s: Storm, n: { execs: number, opens: number }, dir: string): Promise<StormResult> {
  if (s === 'exec') return await runJson<StormResult>(KSTORM, ['exec', String(n.execs)])
  if (s === 'write') return await runJson<StormResult>(KSTORM, ['write', String(n.opens), dir])
  return await runJson<StormResult>(KSTORM, ['read', String(n.opens), join(dir, 'r')])
}

export async function main (argv = process.argv.slice(2)): Promise<string> {
  const { values } = parseArgs({
    args: argv,
    options: {
      runs: { type: 'string', default: '5' },
      execs: { type: 'string', default: '2000' },
      opens: { type: 'string', default: '50000' },
      // tmpfs by default: a disk's own cost would only dilute the probes'
      dir: { type: 'string', default: existsSync('/dev/shm') ? '/dev/shm' : tmpdir() },
    },
  })
  const runs = Number(values.runs)
  const n = { execs: Number(values.execs), opens: Number(values.opens) }
  build()
  const dir = mkdtempSync(join(values.dir, 'picket-kproc-'))
  writeFileSync(join(dir, 'r'), 'x')
  const modes: Mode[] = ['none', 'floor', 'probes']
  const storms: Storm[] = ['exec', 'write', 'read']
  const secs = new Map<string, number[]>()
  const notes: string[] = []
  try {
    for (let run = 0; run < runs; run++) {
      for (const mode of modes) {
        const a = attach(mode)
        try {
          for (const s of storms) {
            const r = await storm(s, n, dir)
            const k = `${mode}/${s}`
            secs.set(k, [...(secs.get(k) ?? []), r.seconds])
            process.stderr.write(`kproc: run ${run + 1}/${runs} ${k}: ${r.seconds.toFixed(3)} s\n`)
          }
          a.drain?.()
          if (a.stats !== undefined && run === runs - 1) notes.push(a.stats())
        } finally {
          a.close()
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  const per = (mode: Mode, s: Storm): number => median(secs.get(`${mode}/${s}`)!) / (s === 'exec' ? n.execs : n.opens) * 1e9
  const rows = storms.map(s => [
    s === 'exec' ? `fork+exec ×${n.execs}` : `${s} open ×${n.opens}`,
    fmt(per('none', s)), fmt(per('floor', s)), fmt(per('probes', s)),
    (per('floor', s) / per('none', s)).toFixed(3), (per('probes', s) / per('none', s)).toFixed(3), (per('probes', s) / per('floor', s)).toFixed(3),
  ])
  return [
    `kproc: ns per operation, median of ${runs} runs, interleaved (${machine()})`,
    table(['storm', 'none', 'floor', 'probes', 'floor/none', 'probes/none', 'probes/floor'], rows),
    `probes: ${notes.join('; ')}`,
  ].join('\n')
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then(out => console.log(out), err => { console.error(err); process.exit(1) })
}
