import { spawnSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { PACKET_PROGRAMS } from '../../bpf/packet.js'
import { rootPath } from '../../shared/paths.js'
import { DNS_V4, startDnsmasq } from '../../test/helpers/dns.js'
import type { BenchContext, BenchResult } from './cli.js'
import { attachCgroupFloor } from './lib/floor.js'
import { withAgent } from './lib/agent-run.js'
import { runJson, sleep } from './lib/proc.js'
import { fmt, median, pct, table } from './lib/report.js'
import { startSink } from './lib/sink.js'

// dns: what DNS capture costs the monitored host. A query storm over UDP
// (scripts/bench/dnsstorm.c: distinct names, 16 in flight on one socket)
// against a local dnsmasq on loopback, as fast as it answers and paced at
// 20k queries/s, each run with nothing attached, with
// do-nothing programs on the packet probe's six cgroup hooks (the floor: what
// the hooks themselves cost), and with `picket agent --class dns` shipping to
// a loopback collector that acks everything, interleaved run by run.
//
//   flock /tmp/picket-kernel.lock picket bench dns [--quick]

const BUILD = rootPath('scripts', 'bench', 'build')
const DNSSTORM = join(BUILD, 'dnsstorm')
const WINDOW = 16
// the steady storm's rate: the "20k queries/s against the local server"
const PACED = 20_000

type Mode = 'none' | 'floor' | 'agent'
type Kind = 'max' | 'paced'
interface StormResult { queries: number, answered: number, seconds: number, rate: number }
interface Run extends StormResult { cpu?: number, captured?: number, emitted?: number, dropped?: number, acked?: number }

function build (): void {
  mkdirSync(BUILD, { recursive: true })
  const r = spawnSync('cc', ['-O2', '-Wall', '-Werror', '-o', DNSSTORM, rootPath('scripts', 'bench', 'dnsstorm.c')], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`cc dnsstorm.c: ${r.stderr}`)
}

const storm = async (count: number, kind: Kind): Promise<StormResult> => await runJson<StormResult>(DNSSTORM, [DNS_V4, String(count), String(WINDOW), String(kind === 'paced' ? PACED : 0)])

async function agentRun (collector: string, acked: () => number, go: () => Promise<StormResult>, metricsPort: number): Promise<Run> {
  const { storm, ...r } = await withAgent({ collector, acked, metricsPort, hostId: 'bench-dns', classes: 'dns', storm: go })
  return { ...storm, ...r }
}

function summarise (results: Record<Mode, Run[]>): { rate: (m: Mode) => number, lost: (m: Mode) => number, cpuPerQueryUs: number, corePct: number, captured: number, emitted: number, dropped: number, acked: number, answered: number } {
  const a = results.agent
  const sum = (f: (r: Run) => number): number => a.reduce((s, r) => s + f(r), 0)
  return {
    rate: m => median(results[m].map(r => r.rate)),
    lost: m => results[m].reduce((s, r) => s + r.queries - r.answered, 0),
    cpuPerQueryUs: median(a.map(r => r.cpu! / r.answered * 1e6)),
    corePct: median(a.map(r => r.cpu! / r.seconds * 100)),
    captured: sum(r => r.captured!),
    emitted: sum(r => r.emitted!),
    dropped: sum(r => r.dropped!),
    acked: sum(r => r.acked!),
    answered: sum(r => r.answered),
  }
}

const LABEL: Record<Mode, string> = { none: 'nothing attached', floor: 'floor (do-nothing programs on the six cgroup hooks)', agent: 'picket agent --class dns' }

function stormTable (s: ReturnType<typeof summarise>): string {
  return table(['configuration', 'queries/s', 'vs nothing', 'unanswered', 'agent CPU µs/query', 'agent CPU, % of a core'], (['none', 'floor', 'agent'] as const).map(m => [
    LABEL[m], fmt(s.rate(m)), m === 'none' ? '' : pct(s.rate(m) / s.rate('none')), fmt(s.lost(m)),
    m === 'agent' ? s.cpuPerQueryUs.toFixed(1) : '', m === 'agent' ? s.corePct.toFixed(0) : '',
  ]))
}

export async function bench (ctx: BenchContext): Promise<BenchResult> {
  const counts: Record<Kind, number> = ctx.quick ? { max: 50_000, paced: 60_000 } : { max: 200_000, paced: 200_000 }
  const runs = ctx.runs
  const kinds: Kind[] = ['max', 'paced']
  build()
  const server = await startDnsmasq()
  const sink = await startSink()
  const results: Record<Kind, Record<Mode, Run[]>> = { max: { none: [], floor: [], agent: [] }, paced: { none: [], floor: [], agent: [] } }
  ctx.progress.start('dns', runs * 3 * kinds.length)
  let port = 19470
  try {
    for (let run = 0; run < runs; run++) {
      for (const kind of kinds) {
        const go = async (): Promise<StormResult> => await storm(counts[kind], kind)
        results[kind].none.push(await go()); ctx.progress.tick(1, `${kind}: nothing attached`)
        const floor = attachCgroupFloor(PACKET_PROGRAMS.filter(p => p.dns).map(p => p.attach))
        try {
          await sleep(300)
          results[kind].floor.push(await go())
        } finally {
          floor.close()
        }
        ctx.progress.tick(1, `${kind}: floor`)
        results[kind].agent.push(await agentRun(sink.address, () => sink.records, go, port++)); ctx.progress.tick(1, `${kind}: picket agent --class dns`)
      }
    }
  } finally {
    ctx.progress.stop()
    await sink.close()
    await server.stop()
  }
  const max = summarise(results.max)
  const paced = summarise(results.paced)
  const above = (max.rate('floor') - max.rate('agent')) / max.rate('none') * 100
  const all = [max, paced]
  const total = (f: (s: typeof max) => number): number => all.reduce((n, s) => n + f(s), 0)
  const body = [
    `Storms: UDP queries, each a distinct name (q<n>.storm.example.test, type A), ${WINDOW} in flight on one connected socket`,
    `(\`scripts/bench/dnsstorm.c\`), against dnsmasq on ${DNS_V4}:53 answering from its command line: ${fmt(counts.max)} queries as fast`,
    `as dnsmasq answers, and ${fmt(counts.paced)} paced at ${fmt(PACED)} queries/s. Every query and its answer cross the packet probe's`,
    'cgroup_skb programs on the cgroup v2 root (egress and ingress, both ways on loopback) and its sendmsg4 hook; the agent',
    'turns each into a dns_activity record (a query and a response per lookup) and ships them to a loopback collector that acks',
    'every batch. The floor attaches do-nothing programs to the same six cgroup hooks (`scripts/bench/noop.bpf.c`): what the',
    'hooks themselves cost. Agent CPU is user + system time of the agent process (all its threads) from the storm\'s start',
    'until everything is acked, per answered query and as a share of one core over the storm.',
    '',
    '**As fast as dnsmasq answers**',
    '',
    stormTable(max),
    '',
    `**Paced at ${fmt(PACED)} queries/s**`,
    '',
    stormTable(paced),
    '',
    table(['measure', 'value'], [
      ['unpaced storm: host cost above the floor', `${above.toFixed(1)} pp of the rate with nothing attached`],
      [`paced storm: rate held with the agent attached`, `${fmt(paced.rate('agent'))} of ${fmt(PACED)} queries/s`],
      ['records captured / emitted by the BPF programs', `${fmt(total(s => s.captured))} / ${fmt(total(s => s.emitted))} (${fmt(total(s => s.answered) * 2)} expected: a query and a response per answered lookup)`],
      ['records acked by the collector', fmt(total(s => s.acked))],
      ['records lost (kernel and agent drops)', fmt(total(s => s.dropped))],
    ]),
    '',
    'On this 2-core machine the unpaced storm and dnsmasq already fill both cores, so the agent\'s own CPU comes straight out',
    'of the storm\'s rate: the unpaced row is the rate the agent sustains with no headroom, the paced row the steady cost.',
  ].join('\n')
  return { title: 'dns: DNS capture overhead on a query storm, against the floor', body, data: { counts, window: WINDOW, paced: PACED, results } }
}
