import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { release } from 'node:os'
import { join } from 'node:path'
import { PicketError } from '../shared/errors.js'

// Tracepoint formats, read from tracefs at load time: the BPF programs read
// tracepoint fields at these offsets, so one object serves kernels whose
// layouts differ (tcp_send_reset changed in 6.10, for example).

export interface TpField {
  name: string
  type: string
  offset: number
  size: number
  signed: boolean
  /** element count for array fields such as `__u8 saddr[28]` */
  arrayLen?: number
}

export interface TpFormat {
  category: string
  name: string
  id: number
  fields: Map<string, TpField>
  /** bytes up to the end of the last field */
  recordSize: number
  printFmt: string
}

export const TRACEFS_CANDIDATES = ['/sys/kernel/tracing', '/sys/kernel/debug/tracing']

/**
 * Find a mounted tracefs, mounting it at /sys/kernel/tracing when we are
 * allowed to. Throws PICKET_ERR_TRACEFS saying how to mount it otherwise.
 */
export function findTracefs (explicit?: string): string {
  if (explicit !== undefined) {
    if (existsSync(join(explicit, 'events'))) return explicit
    throw new PicketError('PICKET_ERR_TRACEFS', `no tracepoint formats under ${explicit}/events; point --tracefs at a mounted tracefs (usually /sys/kernel/tracing)`)
  }
  for (const dir of TRACEFS_CANDIDATES) {
    try {
      readdirSync(join(dir, 'events'))
      return dir
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'EACCES' || code === 'EPERM') {
        throw new PicketError('PICKET_ERR_BPF_PRIVILEGE', `cannot read tracefs at ${dir} (${code}): capture needs root, or the capabilities CAP_BPF and CAP_PERFMON plus CAP_DAC_READ_SEARCH to read tracepoint formats; rerun with sudo`)
      }
    }
  }
  if (process.getuid?.() === 0) {
    const r = spawnSync('mount', ['-t', 'tracefs', 'nodev', '/sys/kernel/tracing'], { encoding: 'utf8' })
    if (r.status === 0 && existsSync('/sys/kernel/tracing/events')) return '/sys/kernel/tracing'
    throw new PicketError('PICKET_ERR_TRACEFS', `tracefs is not mounted and mounting it failed (${(r.stderr ?? r.error?.message ?? '').trim()}); mount it with: mount -t tracefs nodev /sys/kernel/tracing`)
  }
  throw new PicketError('PICKET_ERR_TRACEFS', 'tracefs is not mounted; mount it as root with: mount -t tracefs nodev /sys/kernel/tracing (scripts/setup.sh does this)')
}

const FIELD_RE = /^\s*field:(.+?);\s*offset:(\d+);\s*size:(\d+);\s*signed:(\d+);/

export function parseFormat (text: string, category = '?', name = '?'): TpFormat {
  const fields = new Map<string, TpField>()
  let id = -1
  let printFmt = ''
  let recordSize = 0
  for (const line of text.split('\n')) {
    if (line.startsWith('ID:')) id = Number(line.slice(3).trim())
    else if (line.startsWith('name:')) name = line.slice(5).trim()
    else if (line.startsWith('print fmt:')) printFmt = line.slice(10).trim()
    const m = FIELD_RE.exec(line)
    if (m === null) continue
    const decl = m[1].trim()
    const dm = /^(.*?)([A-Za-z_][A-Za-z0-9_]*)\s*(?:\[(\d*)\])?$/.exec(decl)
    if (dm === null) continue
    const field: TpField = { name: dm[2], type: dm[1].trim(), offset: Number(m[2]), size: Number(m[3]), signed: m[4] === '1' }
    if (dm[3] !== undefined && dm[3] !== '') field.arrayLen = Number(dm[3])
    fields.set(field.name, field)
    recordSize = Math.max(recordSize, field.offset + field.size)
  }
  return { category, name, id, fields, recordSize, printFmt }
}

/** The format of a tracepoint, or undefined when this kernel lacks it (for hooks that are optional). */
export function readFormatIf (tracefs: string, category: string, name: string): TpFormat | undefined {
  return existsSync(join(tracefs, 'events', category, name, 'format')) ? readFormat(tracefs, category, name) : undefined
}

export function readFormat (tracefs: string, category: string, name: string): TpFormat {
  const path = join(tracefs, 'events', category, name, 'format')
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EACCES' || code === 'EPERM') {
      throw new PicketError('PICKET_ERR_BPF_PRIVILEGE', `cannot read ${path} (${code}): capture needs root, or CAP_BPF plus CAP_PERFMON with read access to tracefs`)
    }
    throw new PicketError('PICKET_ERR_TRACEPOINT_MISSING',
      `tracepoint ${category}:${name} does not exist on kernel ${release()} (no ${path}); Picket's capture needs it — use a kernel that has it (Linux 5.x+ with CONFIG_TRACEPOINTS), or disable that program`,
      { tracepoint: `${category}:${name}`, kernel: release() })
  }
  return parseFormat(text, category, name)
}

/** Values of `__print_symbolic(REC-><field>, { 0, "A" }, { 1, "B" }, ...)` in a print fmt. */
export function parseSymbolic (printFmt: string, field: string): Record<number, string> {
  const out: Record<number, string> = {}
  const start = printFmt.indexOf(`__print_symbolic(REC->${field},`)
  if (start < 0) return out
  let depth = 0
  let end = start
  for (let i = start; i < printFmt.length; i++) {
    const c = printFmt[i]
    if (c === '(') depth++
    else if (c === ')' && --depth === 0) { end = i; break }
  }
  const body = printFmt.slice(start, end)
  for (const m of body.matchAll(/\{\s*(-?\d+)\s*,\s*"([^"]*)"\s*\}/g)) out[Number(m[1])] = m[2]
  return out
}

// Field lookups for the layout builders: every offset a BPF program reads
// comes through one of these, so a kernel whose format lacks a field, or
// sizes it differently, is refused by name instead of read wrongly.

export function need (fmt: TpFormat, field: string, sizes: number[]): number {
  const f = fmt.fields.get(field)
  const where = `${fmt.category}:${fmt.name}`
  if (f === undefined) {
    throw new PicketError('PICKET_ERR_TRACEPOINT_LAYOUT',
      `tracepoint ${where} on kernel ${release()} has no field '${field}' (fields: ${[...fmt.fields.keys()].filter(k => !k.startsWith('common_')).join(', ')}); this kernel's layout is not supported yet — please report it with the format file`,
      { tracepoint: where, field, kernel: release() })
  }
  if (!sizes.includes(f.size)) {
    throw new PicketError('PICKET_ERR_TRACEPOINT_LAYOUT',
      `tracepoint ${where} field '${field}' is ${f.size} bytes on kernel ${release()}, expected ${sizes.join(' or ')}`,
      { tracepoint: where, field, kernel: release() })
  }
  return f.offset
}

export function optional (fmt: TpFormat, field: string, sizes: number[], absent: number): number {
  return fmt.fields.has(field) ? need(fmt, field, sizes) : absent
}

/** A `__data_loc char[]` field: a u32 locating the string within the record. */
export function needLoc (fmt: TpFormat, field: string): number {
  const off = need(fmt, field, [4])
  if (!fmt.fields.get(field)!.type.startsWith('__data_loc')) {
    throw new PicketError('PICKET_ERR_TRACEPOINT_LAYOUT',
      `tracepoint ${fmt.category}:${fmt.name} field '${field}' is '${fmt.fields.get(field)!.type}' on kernel ${release()}, expected a __data_loc string`,
      { tracepoint: `${fmt.category}:${fmt.name}`, field, kernel: release() })
  }
  return off
}

/** The bytes a program copies of each record; refuses records larger than its stack buffer. */
export function recordSize (fmt: TpFormat, max: number): number {
  if (fmt.recordSize > max) {
    throw new PicketError('PICKET_ERR_TRACEPOINT_LAYOUT', `tracepoint ${fmt.category}:${fmt.name} records are ${fmt.recordSize} bytes on kernel ${release()}, more than the ${max} the BPF programs copy`)
  }
  return fmt.recordSize
}

/** One program serves several tracepoints: the field must sit at the same place in each. */
export function sameOffset (fmts: TpFormat[], field: string, sizes: number[]): number {
  const offs = fmts.map(f => need(f, field, sizes))
  if (offs.some(o => o !== offs[0])) {
    throw new PicketError('PICKET_ERR_TRACEPOINT_LAYOUT',
      `'${field}' is at different offsets in ${fmts.map((f, i) => `${f.category}:${f.name} (${offs[i]})`).join(', ')} on kernel ${release()}; one program reads them all, so this kernel is not supported yet`,
      { field, kernel: release() })
  }
  return offs[0]
}

/** ...and their records must be the same size, which the program copies. */
export function sameRecordSize (fmts: TpFormat[], max: number): number {
  const odd = fmts.find(f => f.recordSize !== fmts[0].recordSize)
  if (odd !== undefined) {
    throw new PicketError('PICKET_ERR_TRACEPOINT_LAYOUT',
      `${odd.category}:${odd.name} records are ${odd.recordSize} bytes, ${fmts[0].category}:${fmts[0].name} ${fmts[0].recordSize} on kernel ${release()}; one program reads them all, so this kernel is not supported yet`,
      { kernel: release() })
  }
  return recordSize(fmts[0], max)
}
