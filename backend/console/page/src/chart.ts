import { s } from './dom.js'
import { num } from './format.js'

// Hand-built SVG charts of the ports a finding saw probed: a histogram over
// the port range (how much of it was touched, and where) and a timeline
// (port against time: a sequential sweep draws a line, a randomised scan a
// cloud, a slow scan spreads out). SVG rather than canvas: the labels and
// per-bar <title>s are real text a screen reader and a screenshot can read,
// and everything is created through createElementNS, so a port entry can
// never become markup.

export interface PortStat { port: number, count: number, first: number, last: number }

const M = { l: 52, r: 14, t: 14, b: 40 }
// The drawing is laid out for one width and scaled to fit: 720 units on a
// desktop panel; on a phone, 400, so the labels stay legible after scaling.
let W = 720
let H = 230
let PW = W - M.l - M.r
let PH = H - M.t - M.b

function layout (width: number): void {
  W = width
  H = width < 500 ? 250 : 230
  PW = W - M.l - M.r
  PH = H - M.t - M.b
}

let chartSeq = 0

/** The port statistics out of a finding's unmapped.picket.ports, dropping anything that is not a port. */
export function portStats (finding: Record<string, unknown>): PortStat[] {
  const picket = (finding.unmapped as { picket?: { ports?: unknown } } | undefined)?.picket
  const raw = Array.isArray(picket?.ports) ? picket.ports as Array<Record<string, unknown>> : []
  const out: PortStat[] = []
  for (const p of raw) {
    const port = Number(p.port)
    if (!Number.isInteger(port) || port < 0 || port > 65535) continue
    const count = Number(p.count)
    out.push({ port, count: Number.isFinite(count) && count > 0 ? count : 1, first: Number(p.first_seen_time) || 0, last: Number(p.last_seen_time) || Number(p.first_seen_time) || 0 })
  }
  return out.sort((a, b) => a.port - b.port)
}

function portDomain (stats: PortStat[]): number {
  const max = stats.reduce((m, p) => Math.max(m, p.port), 0)
  if (max <= 1024) return 1024
  if (max <= 16384) return Math.ceil(max / 1024) * 1024
  return 65536
}

function niceStep (range: number, ticks: number): number {
  const raw = range / Math.max(1, ticks)
  const mag = 10 ** Math.floor(Math.log10(raw))
  const f = raw / mag
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag
}

function frame (label: string, desc: string): { svg: SVGSVGElement, plot: SVGGElement } {
  const id = `chart-${++chartSeq}`
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': `${id}-t ${id}-d`, class: 'chart', preserveAspectRatio: 'xMidYMid meet' },
    s('title', { id: `${id}-t` }, label),
    s('desc', { id: `${id}-d` }, desc))
  const plot = s('g', { transform: `translate(${M.l},${M.t})` })
  svg.appendChild(plot)
  return { svg, plot }
}

function yAxis (plot: SVGGElement, max: number, fmt: (v: number) => string, title: string): (v: number) => number {
  const step = niceStep(max, 4)
  const top = Math.max(step, Math.ceil(max / step) * step)
  const y = (v: number): number => PH - (v / top) * PH
  for (let v = 0; v <= top + 1e-9; v += step) {
    plot.appendChild(s('line', { class: 'grid', x1: 0, x2: PW, y1: y(v), y2: y(v) }))
    plot.appendChild(s('text', { class: 'tick', x: -8, y: y(v) + 4, 'text-anchor': 'end' }, fmt(v)))
  }
  plot.appendChild(s('text', { class: 'axis-title', transform: `translate(${-M.l + 12},${PH / 2}) rotate(-90)`, 'text-anchor': 'middle' }, title))
  return y
}

function portAxis (plot: SVGGElement, hi: number, title: string): (p: number) => number {
  const x = (p: number): number => (p / hi) * PW
  const step = hi === 1024 ? (W < 500 ? 256 : 128) : hi === 65536 ? (W < 500 ? 16384 : 8192) : niceStep(hi, W < 500 ? 4 : 6)
  for (let p = 0; p <= hi; p += step) {
    plot.appendChild(s('line', { class: 'tick-mark', x1: x(p), x2: x(p), y1: PH, y2: PH + 4 }))
    plot.appendChild(s('text', { class: 'tick', x: x(p), y: PH + 17, 'text-anchor': p === 0 ? 'start' : p >= hi ? 'end' : 'middle' }, String(p)))
  }
  plot.appendChild(s('line', { class: 'axis', x1: 0, x2: PW, y1: PH, y2: PH }))
  plot.appendChild(s('text', { class: 'axis-title', x: PW / 2, y: PH + 34, 'text-anchor': 'middle' }, title))
  return x
}

/** Probes per port range, 64 bins (32 on a phone) over 0–1024 (or the range the ports reach). */
export function portHistogram (stats: PortStat[], drawWidth = 720): SVGSVGElement {
  layout(drawWidth)
  const hi = portDomain(stats)
  const bins = drawWidth < 500 ? 32 : 64
  const width = hi / bins
  const probes = new Array<number>(bins).fill(0)
  const distinct = new Array<number>(bins).fill(0)
  for (const p of stats) {
    const b = Math.min(bins - 1, Math.floor(p.port / width))
    probes[b] += p.count
    distinct[b]++
  }
  const max = Math.max(1, ...probes)
  const used = distinct.filter(d => d > 0).length
  const { svg, plot } = frame('Ports probed, by port number',
    `${stats.length} distinct ports between ${stats[0]?.port ?? 0} and ${stats[stats.length - 1]?.port ?? 0}, in ${used} of ${bins} ranges of ${width} ports`)
  const y = yAxis(plot, max, v => num(v), 'probes')
  const x = portAxis(plot, hi, 'destination port')
  const bw = PW / bins
  for (let b = 0; b < bins; b++) {
    if (probes[b] === 0) continue
    const lo = b * width
    const bar = s('rect', { class: 'bar', x: x(lo) + 0.5, y: y(probes[b]), width: Math.max(1, bw - 1), height: Math.max(1, PH - y(probes[b])) },
      s('title', {}, `ports ${lo}–${lo + width - 1}: ${distinct[b]} port${distinct[b] === 1 ? '' : 's'}, ${probes[b]} probe${probes[b] === 1 ? '' : 's'}`))
    plot.appendChild(bar)
  }
  return svg
}

function timeLabel (ms: number, withMs: boolean): string {
  const d = new Date(ms)
  const p = (n: number, w = 2): string => String(n).padStart(w, '0')
  return `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}${withMs ? `.${p(d.getUTCMilliseconds(), 3)}` : ''}`
}

/** Each port at the time it was first (and last) probed. */
export function portTimeline (stats: PortStat[], width = 720): SVGSVGElement {
  layout(width)
  const hi = portDomain(stats)
  const times = stats.flatMap(p => [p.first, p.last]).filter(t => t > 0)
  let t0 = Math.min(...times)
  let t1 = Math.max(...times)
  if (!Number.isFinite(t0)) { t0 = 0; t1 = 1000 }
  // a scan at full speed can take a few ms: spread it over the width, with a margin either side
  if (t1 - t0 === 0) { t0 -= 500; t1 += 500 } else { const pad = Math.max(5, (t1 - t0) * 0.05); t0 -= pad; t1 += pad }
  const span = t1 - t0
  const { svg, plot } = frame('Ports probed over time',
    `${stats.length} ports probed between ${timeLabel(Math.min(...times), true)} and ${timeLabel(Math.max(...times), true)} UTC`)
  // y: port (0 at the bottom)
  const y = (p: number): number => PH - (p / hi) * PH
  const ystep = hi === 1024 ? 256 : hi === 65536 ? 16384 : niceStep(hi, 4)
  for (let p = 0; p <= hi; p += ystep) {
    plot.appendChild(s('line', { class: 'grid', x1: 0, x2: PW, y1: y(p), y2: y(p) }))
    plot.appendChild(s('text', { class: 'tick', x: -8, y: y(p) + 4, 'text-anchor': 'end' }, String(p)))
  }
  plot.appendChild(s('text', { class: 'axis-title', transform: `translate(${-M.l + 12},${PH / 2}) rotate(-90)`, 'text-anchor': 'middle' }, 'port'))
  // x: time
  const x = (t: number): number => ((t - t0) / span) * PW
  const step = niceStep(span, width < 500 ? 3 : 5)
  const withMs = span < 10_000
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
    plot.appendChild(s('line', { class: 'tick-mark', x1: x(t), x2: x(t), y1: PH, y2: PH + 4 }))
    const anchor = x(t) > PW - 36 ? 'end' : x(t) < 36 ? 'start' : 'middle'
    plot.appendChild(s('text', { class: 'tick', x: x(t), y: PH + 17, 'text-anchor': anchor }, timeLabel(t, withMs)))
  }
  plot.appendChild(s('line', { class: 'axis', x1: 0, x2: PW, y1: PH, y2: PH }))
  plot.appendChild(s('text', { class: 'axis-title', x: PW / 2, y: PH + 34, 'text-anchor': 'middle' }, 'time (UTC)'))
  const g = s('g', { class: 'points' })
  for (const p of stats) {
    const tip = s('title', {}, `port ${p.port}: ${p.count} probe${p.count === 1 ? '' : 's'}, ${timeLabel(p.first, true)}${p.last !== p.first ? ` – ${timeLabel(p.last, true)}` : ''} UTC`)
    if (p.last > p.first) g.appendChild(s('line', { class: 'span', x1: x(p.first), x2: x(p.last), y1: y(p.port), y2: y(p.port) }))
    g.appendChild(s('circle', { class: 'pt', cx: x(p.first), cy: y(p.port), r: 2.6 }, tip))
  }
  plot.appendChild(g)
  return svg
}
