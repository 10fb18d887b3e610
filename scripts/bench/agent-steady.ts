import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { BenchContext, BenchResult } from './cli.js'
import { metric, scrape } from './lib/metrics.js'
import { rssBytes, sleep, totalCpu, waitExit } from './lib/proc.js'
import { fmt, table } from './lib/report.js'
import { startSink, type Sink } from './lib/sink.js'
import { freePort, spawnPicket, tailStderr } from './lib/spawn.js'

// agent-steady: what the agent costs when little happens, over minutes.
// 1. Idle: `picket agent` capturing from the kernel (every probe this build
//    loads attached), shipping to a loopback sink, on a host with no traffic
//    of its own: CPU over a window, as a share of one core.
// 2. Creep: `--source synth` at a steady 20,000 records/s: RSS sampled every
//    second; "flat after warm-up" compares the last minute's median with the
//    median of the minute after the first.

interface Agent { pid: number, metricsUrl: string, stop: () => Promise<void>, stderr: () => string }

async function startAgent (sink: Sink, args: string[], tag: string): Promise<Agent> {
  const data = mkdtempSync(join(tmpdir(), 'picket-bench-steady-'))
  const port = await freePort()
  const p = spawnPicket(['agent', '--collector', sink.address, '--data', data, '--host-id', `bench-steady-${tag}`,
    '--metrics', String(port), '--log-level', 'warn', ...args])
  const stderr = tailStderr(p)
  const metricsUrl = `http://127.0.0.1:${port}/metrics`
  const end = Date.now() + 30_000
  for (;;) {
    if (p.exitCode !== null) throw new Error(`the agent exited (${p.exitCode}): ${stderr()}`)
    try { if (metric(await scrape(metricsUrl), 'picket_agent_connected') === 1) break } catch {}
    if (Date.now() > end) throw new Error(`the agent did not connect: ${stderr()}`)
    await sleep(100)
  }
  return {
    pid: p.pid as number,
    metricsUrl,
    stderr,
    stop: async () => { p.kill('SIGINT'); await waitExit(p); rmSync(data, { recursive: true, force: true }) },
  }
}

const med = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] ?? NaN }

export async function bench (ctx: BenchContext): Promise<BenchResult> {
  if (process.getuid?.() !== 0) throw new Error('agent-steady captures from the kernel when idle: run it as root')
  const idleSeconds = ctx.quick ? 20 : 60
  const creepSeconds = ctx.quick ? 150 : 480
  const rate = 20_000
  const sink = await startSink()
  ctx.progress.start('agent-steady', 2)
  try {
    // idle
    const idle = await startAgent(sink, ['--source', 'kernel'], 'idle')
    let idleCpu: number
    let idleRecords: number
    try {
      await sleep(3000) // start-up's work (seeding tables, JIT) is not idle cost
      const r0 = sink.records
      const c0 = totalCpu(idle.pid)
      await sleep(idleSeconds * 1000)
      idleCpu = totalCpu(idle.pid) - c0
      idleRecords = sink.records - r0
    } finally {
      await idle.stop()
    }
    ctx.progress.tick(1, 'idle')

    // creep
    const steady = await startAgent(sink, ['--source', 'synth', '--synth-rate', String(rate)], 'creep')
    const rss: number[] = []
    let dropped = 0
    const r0 = sink.records
    try {
      for (let s = 0; s < creepSeconds; s++) {
        await sleep(1000)
        rss.push(rssBytes(steady.pid))
      }
      dropped = metric(await scrape(steady.metricsUrl), 'picket_agent_drops_total')
    } finally {
      await steady.stop()
    }
    const shipped = sink.records - r0
    ctx.progress.tick(1, 'creep')
    ctx.progress.stop()

    const idlePct = idleCpu / idleSeconds * 100
    const warm = med(rss.slice(60, 120))
    const last = med(rss.slice(-60))
    const creep = last / warm - 1
    const mib = (b: number): string => `${(b / 2 ** 20).toFixed(0)} MiB`
    const body = [
      `Idle: \`picket agent --source kernel\` shipping to a loopback sink, ${idleSeconds} s after a 3 s start-up, with no traffic`,
      'of the benchmark\'s own (the machine\'s background still fires the tracepoints: it is in the records column).',
      `Creep: \`--source synth --synth-rate ${fmt(rate)}\` for ${creepSeconds} s, RSS sampled every second.`,
      '',
      table(['measure', 'measured', 'target', 'met'], [
        ['agent CPU on an idle host', `${idlePct.toFixed(2)}% of a core (${(idleCpu * 60 / idleSeconds).toFixed(2)} CPU-s per minute; ${fmt(idleRecords)} background records shipped)`, '≤ 0.3%', idlePct <= 0.3 ? 'yes' : '**no**'],
        [`RSS at a steady ${fmt(rate)} records/s`, `${mib(rss[0] ?? 0)} at 1 s, ${mib(warm)} after warm-up (60–120 s), ${mib(last)} over the last minute (${creep >= 0 ? '+' : '−'}${Math.abs(creep * 100).toFixed(1)}%); ${fmt(shipped)} shipped, ${fmt(dropped)} dropped`, 'flat after warm-up (±10%)', Math.abs(creep) <= 0.1 ? 'yes' : '**no**'],
      ]),
    ].join('\n')
    return {
      title: 'agent-steady: idle CPU and RSS over minutes',
      body,
      runs: 1,
      data: { idleSeconds, idleCpu, idlePct, idleRecords, creepSeconds, rate, rss, warm, last, creep, shipped, dropped },
    }
  } finally {
    ctx.progress.stop()
    await sink.close()
  }
}
