import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { parse as parseYaml } from 'yaml'
import { PicketError } from './errors.js'
import { parseHostPort, type HostPort } from './hostport.js'

export { parseHostPort, type HostPort } from './hostport.js'

// Options come from flags, then PICKET_* environment variables, then an
// optional file (--config / PICKET_CONFIG, YAML or JSON), then defaults. They
// are validated once, here, and frozen; past this edge code trusts them.

export type OptType = 'string' | 'int' | 'bool' | 'hostport' | 'bytes' | 'duration' | 'path' | 'enum' | 'list'

export interface OptSpec {
  /** flag name without dashes, also the key in a config file */
  name: string
  type: OptType
  help: string
  default?: string | number | boolean | string[]
  /** environment variable; defaults to PICKET_<NAME> upper-cased */
  env?: string | false
  short?: string
  choices?: readonly string[]
  min?: number
  max?: number
  required?: boolean
}

export type ConfigValue = string | number | boolean | string[] | HostPort | undefined

export interface ParsedConfig<T> {
  values: T
  positionals: string[]
  help: boolean
  /** where each value came from: flag, env, file or default */
  sources: Record<string, 'flag' | 'env' | 'file' | 'default'>
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3 }
const TIME_UNITS: Record<string, number> = { ms: 1, s: 1000, '': 1000, m: 60_000, h: 3_600_000 }

export function envName (spec: OptSpec): string | undefined {
  if (spec.env === false) return undefined
  return spec.env ?? 'PICKET_' + spec.name.toUpperCase().replace(/-/g, '_')
}

function coerce (spec: OptSpec, raw: unknown): { value?: ConfigValue, error?: string } {
  const text = Array.isArray(raw) ? raw.join(',') : String(raw)
  switch (spec.type) {
    case 'string':
    case 'path':
      if (text.length === 0) return { error: 'must not be empty' }
      return { value: text }
    case 'bool':
      if (typeof raw === 'boolean') return { value: raw }
      if (/^(1|true|yes|on)$/i.test(text)) return { value: true }
      if (/^(0|false|no|off)$/i.test(text)) return { value: false }
      return { error: `'${text}' is not a boolean (use true or false)` }
    case 'int': {
      if (!/^-?\d+$/.test(text)) return { error: `'${text}' is not an integer` }
      const n = Number(text)
      if (spec.min !== undefined && n < spec.min) return { error: `${n} is below the minimum ${spec.min}` }
      if (spec.max !== undefined && n > spec.max) return { error: `${n} is above the maximum ${spec.max}` }
      return { value: n }
    }
    case 'bytes': {
      const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text)
      const unit = m?.[2].toLowerCase() ?? ''
      if (m === null || !(unit in SIZE_UNITS)) return { error: `'${text}' is not a size (examples: 4096, 64KiB, 1GiB)` }
      const n = Math.floor(Number(m[1]) * SIZE_UNITS[unit])
      if (spec.min !== undefined && n < spec.min) return { error: `${n} bytes is below the minimum ${spec.min}` }
      if (spec.max !== undefined && n > spec.max) return { error: `${n} bytes is above the maximum ${spec.max}` }
      return { value: n }
    }
    case 'duration': {
      const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|)$/i.exec(text)
      if (m === null) return { error: `'${text}' is not a duration (examples: 500ms, 5s, 2m; a bare number is seconds)` }
      const n = Number(m[1]) * TIME_UNITS[m[2].toLowerCase()]
      if (spec.min !== undefined && n < spec.min) return { error: `${n} ms is below the minimum ${spec.min} ms` }
      if (spec.max !== undefined && n > spec.max) return { error: `${n} ms is above the maximum ${spec.max} ms` }
      return { value: n }
    }
    case 'hostport': {
      const hp = parseHostPort(text)
      if (hp === undefined) return { error: `'${text}' is not HOST:PORT (examples: 127.0.0.1:50051, [::1]:50051)` }
      return { value: hp }
    }
    case 'enum':
      if (spec.choices?.includes(text) !== true) return { error: `'${text}' is not one of ${spec.choices?.join(', ')}` }
      return { value: text }
    case 'list':
      return { value: Array.isArray(raw) ? raw.map(String) : text.split(',').map(s => s.trim()).filter(s => s.length > 0) }
  }
}

function readConfigFile (path: string): Record<string, unknown> {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new PicketError('PICKET_ERR_CONFIG', `config file ${path} cannot be read: ${(err as Error).message}`)
  }
  let doc: unknown
  try {
    doc = parseYaml(text)
  } catch (err) {
    throw new PicketError('PICKET_ERR_CONFIG', `config file ${path} is not valid YAML or JSON: ${(err as Error).message}`)
  }
  if (doc === null || doc === undefined) return {}
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new PicketError('PICKET_ERR_CONFIG', `config file ${path} must hold a mapping of option names to values`)
  }
  return doc as Record<string, unknown>
}

const CONFIG_SPEC: OptSpec = { name: 'config', type: 'path', help: 'optional config file (YAML or JSON) with option names as keys', env: 'PICKET_CONFIG' }
const HELP_SPEC: OptSpec = { name: 'help', type: 'bool', help: 'show this help', short: 'h', env: false }

export function parseConfig<T = Record<string, ConfigValue>> (
  specs: readonly OptSpec[],
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  opts: { allowPositionals?: boolean } = {}
): ParsedConfig<T> {
  const all = [...specs, CONFIG_SPEC, HELP_SPEC]
  const options: Record<string, { type: 'string' | 'boolean', short?: string, multiple?: boolean }> = {}
  for (const s of all) {
    options[s.name] = { type: s.type === 'bool' ? 'boolean' : 'string', ...(s.short !== undefined ? { short: s.short } : {}) }
  }
  let parsed: ReturnType<typeof parseArgs>
  try {
    parsed = parseArgs({ args: [...argv], options, strict: true, allowPositionals: opts.allowPositionals ?? false })
  } catch (err) {
    throw new PicketError('PICKET_ERR_CONFIG', `${(err as Error).message.replace(/\. To specify.*$/s, '')}; see --help for the options`)
  }
  const flags = parsed.values as Record<string, unknown>
  if (flags.help === true) {
    return { values: {} as T, positionals: parsed.positionals, help: true, sources: {} }
  }
  const configPath = (flags.config as string | undefined) ?? env.PICKET_CONFIG
  const file = configPath !== undefined && configPath !== '' ? readConfigFile(configPath) : {}
  const known = new Set(all.map(s => s.name))
  const errors: string[] = []
  for (const key of Object.keys(file)) {
    if (!known.has(key)) errors.push(`config file ${configPath}: unknown option '${key}' (known: ${specs.map(s => s.name).join(', ')})`)
  }
  const values: Record<string, ConfigValue> = {}
  const sources: ParsedConfig<T>['sources'] = {}
  for (const spec of specs) {
    const en = envName(spec)
    let raw: unknown
    let where: string
    if (flags[spec.name] !== undefined) {
      raw = flags[spec.name]; where = `--${spec.name}`; sources[spec.name] = 'flag'
    } else if (en !== undefined && env[en] !== undefined && env[en] !== '') {
      raw = env[en]; where = `${en} (environment)`; sources[spec.name] = 'env'
    } else if (file[spec.name] !== undefined) {
      raw = file[spec.name]; where = `'${spec.name}' in ${configPath}`; sources[spec.name] = 'file'
    } else {
      sources[spec.name] = 'default'
      if (spec.default === undefined) {
        if (spec.required === true) errors.push(`--${spec.name} is required: ${spec.help}`)
        values[spec.name] = undefined
        continue
      }
      raw = spec.default; where = `default of --${spec.name}`
    }
    const { value, error } = coerce(spec, raw)
    if (error !== undefined) errors.push(`${where}: ${error}`)
    else values[spec.name] = value
  }
  if (errors.length > 0) {
    throw new PicketError('PICKET_ERR_CONFIG', errors.join('\n'), { errors })
  }
  return { values: Object.freeze(values) as T, positionals: parsed.positionals, help: false, sources }
}

export function formatHelp (usage: string, description: string, specs: readonly OptSpec[]): string {
  const lines = [`usage: ${usage}`, '', description, '', 'options:']
  const all = [...specs, CONFIG_SPEC, HELP_SPEC]
  const width = Math.max(...all.map(s => s.name.length + (s.type === 'bool' ? 0 : 6))) + 4
  for (const s of all) {
    const left = `  --${s.name}${s.type === 'bool' ? '' : ' VALUE'}`
    const extra: string[] = []
    if (s.default !== undefined) extra.push(`default ${Array.isArray(s.default) ? s.default.join(',') : String(s.default)}`)
    const en = envName(s)
    if (en !== undefined) extra.push(`env ${en}`)
    if (s.choices !== undefined) extra.push(`one of ${s.choices.join('|')}`)
    lines.push(`${left.padEnd(width + 2)}${s.help}${extra.length > 0 ? ` (${extra.join('; ')})` : ''}`)
  }
  return lines.join('\n') + '\n'
}

/** `specs` with the named entries picked out, in that order, each changed by `over` (a command that reuses another's flags). */
export function pickSpecs (specs: readonly OptSpec[], names: readonly string[], over: Record<string, Partial<OptSpec>> = {}): OptSpec[] {
  return names.map(n => {
    const s = specs.find(x => x.name === n)
    if (s === undefined) throw new Error(`no option --${n} to pick`)
    return { ...s, ...over[n] }
  })
}

/**
 * Parse a command's options; on --help print the help to stdout and return
 * undefined, so a command's run() starts with one line.
 */
export function parseCommand<T> (specs: readonly OptSpec[], argv: readonly string[], usage: string, description: string, opts: { allowPositionals?: boolean } = {}): ParsedConfig<T> | undefined {
  const cfg = parseConfig<T>(specs, argv, process.env, opts)
  if (!cfg.help) return cfg
  process.stdout.write(formatHelp(usage, description, specs))
  return undefined
}
