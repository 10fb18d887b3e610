import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import * as vega from 'vega'
import { rootPath } from '../../shared/paths.js'
import type { BenchContext, BenchResult } from './cli.js'
import type { IngestData } from './ingest.js'
import { fmt, table } from './lib/report.js'
import { loadResults } from './lib/results.js'
import type { ScaleData } from './scale.js'

// plot: throughput and detection latency against host count, drawn by Vega
// from the saved results of the ingest benchmark (and the scale benchmark's
// 10,000-host point), so it can be redrawn without rerunning anything.

export const CHART = rootPath('docs', 'bench', 'throughput-latency.svg')
const CHART_LINK = 'docs/bench/throughput-latency.svg'

const BLUE = '#1f77b4'
const ORANGE = '#ff7f0e'
const RED = '#d62728'
const GREY = '#888888'

interface Point { hosts: number, value: number }

function spec (rate: Point[], p50: Point[], p99: Point[], scaleRate: Point[], scaleLat: Point[], subtitle: string): vega.Spec {
  const maxRate = Math.max(1e6, ...rate.map(p => p.value), ...scaleRate.map(p => p.value))
  const lats = [...p50, ...p99, ...scaleLat].map(p => p.value)
  const maxLat = Math.max(200, ...lats) * 2
  const maxHosts = Math.max(...rate.map(p => p.hosts), ...scaleRate.map(p => p.hosts))
  const line = (data: string, scale: string, color: string, dash: number[] = []): vega.Mark => ({
    type: 'line',
    from: { data },
    encode: { enter: { x: { scale: 'x', field: 'hosts' }, y: { scale, field: 'value' }, stroke: { value: color }, strokeWidth: { value: 2 }, strokeDash: { value: dash } } },
  })
  const dots = (data: string, scale: string, color: string, shape = 'circle', filled = true): vega.Mark => ({
    type: 'symbol',
    from: { data },
    encode: {
      enter: {
        x: { scale: 'x', field: 'hosts' },
        y: { scale, field: 'value' },
        shape: { value: shape },
        size: { value: 60 },
        ...(filled ? { fill: { value: color } } : { fill: { value: 'white' } }),
        stroke: { value: color },
        strokeWidth: { value: 2 },
      },
    },
  })
  return {
    $schema: 'https://vega.github.io/schema/vega/v6.json',
    width: 640,
    height: 320,
    padding: 12,
    background: 'white',
    title: { text: 'ingest: records/s and crossing record → stored finding latency, by host count', subtitle, anchor: 'start', fontSize: 14, subtitleFontSize: 11 },
    data: [
      { name: 'rate', values: rate },
      { name: 'p50', values: p50 },
      { name: 'p99', values: p99 },
      { name: 'scaleRate', values: scaleRate },
      { name: 'scaleLat', values: scaleLat },
    ],
    scales: [
      { name: 'x', type: 'log', base: 10, domain: [5, maxHosts * 2], range: 'width' },
      { name: 'yRate', type: 'linear', domain: [0, maxRate * 1.1], range: 'height', nice: true, zero: true },
      { name: 'yLat', type: 'log', base: 10, domain: [1, maxLat], range: 'height', nice: true, clamp: true },
      {
        name: 'legend',
        type: 'ordinal',
        domain: ['records/s (ingest, full rate)', 'latency p50', 'latency p99', 'scale: 10,000 hosts trickling'],
        range: [BLUE, ORANGE, RED, GREY],
      },
    ],
    axes: [
      { orient: 'bottom', scale: 'x', title: 'hosts (log scale)', values: [10, 100, 1000, 10000].filter(v => v <= maxHosts * 2), format: ',d', grid: true, gridOpacity: 0.3 },
      { orient: 'left', scale: 'yRate', title: 'records/s', format: '~s', titleColor: BLUE, labelColor: BLUE },
      { orient: 'right', scale: 'yLat', title: 'latency, ms (log scale)', format: ',~r', titleColor: RED, labelColor: RED },
    ],
    legends: [{ fill: 'legend', orient: 'bottom', direction: 'horizontal', columns: 2, symbolType: 'circle', labelFontSize: 11, labelLimit: 360, columnPadding: 16 }],
    marks: [
      // the targets
      { type: 'rule', encode: { enter: { x: { value: 0 }, x2: { signal: 'width' }, y: { scale: 'yRate', value: 1e6 }, stroke: { value: BLUE }, strokeDash: { value: [6, 4] }, strokeOpacity: { value: 0.6 } } } },
      { type: 'text', encode: { enter: { x: { value: 4 }, y: { scale: 'yRate', value: 1e6 }, dy: { value: -4 }, text: { value: 'target 1,000,000 records/s' }, fill: { value: BLUE }, fontSize: { value: 10 } } } },
      { type: 'rule', encode: { enter: { x: { value: 0 }, x2: { signal: 'width' }, y: { scale: 'yLat', value: 100 }, stroke: { value: RED }, strokeDash: { value: [2, 3] }, strokeOpacity: { value: 0.7 } } } },
      { type: 'text', encode: { enter: { x: { signal: 'width' }, y: { scale: 'yLat', value: 100 }, dx: { value: -4 }, dy: { value: -4 }, align: { value: 'right' }, text: { value: 'target p99 100 ms' }, fill: { value: RED }, fontSize: { value: 10 } } } },
      line('rate', 'yRate', BLUE), dots('rate', 'yRate', BLUE),
      line('p50', 'yLat', ORANGE, [4, 2]), dots('p50', 'yLat', ORANGE, 'diamond'),
      line('p99', 'yLat', RED, [4, 2]), dots('p99', 'yLat', RED, 'diamond'),
      dots('scaleRate', 'yRate', GREY, 'square', false),
      dots('scaleLat', 'yLat', GREY, 'diamond', false),
    ],
  }
}

export async function bench (ctx: BenchContext): Promise<BenchResult> {
  ctx.progress.start('plot', 1)
  const ingest = loadResults<IngestData>('ingest')
  if (ingest === undefined || ingest.data.series.length === 0) throw new Error('no saved ingest results (scripts/bench/results/ingest.json): run picket bench ingest first')
  const scale = loadResults<ScaleData>('scale')
  const s = ingest.data.series
  const rate = s.map(x => ({ hosts: x.hosts, value: x.rate }))
  const p50 = s.map(x => ({ hosts: x.hosts, value: Math.max(1, x.p50) }))
  const p99 = s.map(x => ({ hosts: x.hosts, value: Math.max(1, x.p99) }))
  const sRow = scale?.data.rows?.[0]
  const scaleRate = sRow !== undefined ? [{ hosts: scale?.data.hosts ?? 10_000, value: sRow.rate }] : []
  const scaleLat = sRow !== undefined ? [{ hosts: scale?.data.hosts ?? 10_000, value: Math.max(1, sRow.latP50) }] : []
  const subtitle = `ingest results of ${ingest.at.slice(0, 16).replace('T', ' ')} UTC${scale !== undefined ? `, scale results of ${scale.at.slice(0, 16).replace('T', ' ')} UTC` : ''}; 2 shared cores`
  const view = new vega.View(vega.parse(spec(rate, p50, p99, scaleRate, scaleLat, subtitle)), { renderer: 'none' })
  const svg = await view.toSVG()
  view.finalize()
  if (ctx.write) {
    mkdirSync(dirname(CHART), { recursive: true })
    writeFileSync(CHART, svg + '\n')
  }
  ctx.progress.tick(1)
  const rows: Array<Array<string | number>> = s.map(x => [fmt(x.hosts), 'ingest, full rate', fmt(x.rate), `${fmt(x.p50)} ms`, `${fmt(x.p99)} ms`])
  if (sRow !== undefined) rows.push([fmt(scale?.data.hosts ?? 10_000), `scale, trickle (${fmt(scale?.data.trickleRecords ?? 0)} records per host every ${(scale?.data.periodMs ?? 0) / 1000} s)`, fmt(sRow.rate), `${fmt(sRow.latP50)} ms`, `max ${fmt(sRow.latMax)} ms`])
  const body = [
    `![records/s and detection latency against host count](${CHART_LINK})`,
    '',
    `[${CHART_LINK}](${CHART_LINK}) is drawn with Vega ${vega.version} from \`scripts/bench/results/ingest.json\` and \`scale.json\`, the saved`,
    'results of the ingest and scale sections above (`picket bench plot` redraws it without rerunning them). Plotted values:',
    '',
    table(['hosts', 'from', 'records/s', 'latency p50', 'latency p99'], rows),
    '',
    'The ingest points are full-rate runs (the injector sends as fast as the collector acks); the 10,000-host point is the scale',
    'benchmark\'s trickle, one HTTP/2 connection per host, so its records/s is what was offered, not a ceiling.',
  ].join('\n')
  return { title: 'plot: throughput and latency against host count', body, data: undefined, runs: 0 }
}
