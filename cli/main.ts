import { isPicketError } from '../shared/errors.js'

// `picket <subcommand>`: each subcommand lives in its own module and is
// loaded only when used, so `picket alerts` never loads the BPF addon.

export interface Subcommand {
  summary: string
  load: () => Promise<{ run: (argv: string[]) => Promise<number> }>
}

export const SUBCOMMANDS: Record<string, Subcommand> = {
  start: { summary: 'run agent, backend and console on this host with embedded defaults', load: async () => await import('./start.js') },
  agent: { summary: 'run the sensor: capture, decode and ship OCSF records to a collector', load: async () => await import('./agent.js') },
  backend: { summary: 'run the collector, detection plane, alert store and console', load: async () => await import('./backend.js') },
  detect: { summary: 'run a detection node in cluster mode (partitions of the NATS JetStream batch stream)', load: async () => await import('./detect.js') },
  doctor: { summary: 'check every hop from tracepoint to store, and say how to fix what is broken', load: async () => await import('./doctor.js') },
  capture: { summary: 'print live OCSF records as NDJSON, like tcpdump for OCSF', load: async () => await import('./capture.js') },
  'inject-scan': { summary: 'ship deterministic scan-shaped records to a collector, as an agent would', load: async () => await import('../scripts/injector/cli.js') },
  alerts: { summary: 'list findings from the alert store (works while the backend is down)', load: async () => await import('./alerts.js') },
  bench: { summary: 'run the benchmarks and update BENCHMARKS.md', load: async () => await import('../scripts/bench/cli.js') },
}

export function usage (): string {
  const width = Math.max(...Object.keys(SUBCOMMANDS).map(k => k.length)) + 2
  const lines = ['usage: picket <command> [options]', '', 'commands:']
  for (const [name, sc] of Object.entries(SUBCOMMANDS)) lines.push(`  ${name.padEnd(width)}${sc.summary}`)
  lines.push('', 'Run `picket <command> --help` for the options of a command.')
  return lines.join('\n') + '\n'
}

export async function main (argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage())
    return name === undefined ? 2 : 0
  }
  if (name === '--version' || name === '-v') {
    const { VERSION } = await import('../shared/version.js')
    process.stdout.write(VERSION + '\n')
    return 0
  }
  const sc = SUBCOMMANDS[name]
  if (sc === undefined) {
    process.stderr.write(`picket: unknown command '${name}'\n\n${usage()}`)
    return 2
  }
  try {
    const mod = await sc.load()
    return await mod.run(rest)
  } catch (err) {
    if (isPicketError(err)) {
      process.stderr.write(`picket ${name}: ${err.message}\n(${err.code})\n`)
      return err.code === 'PICKET_ERR_CONFIG' ? 2 : 1
    }
    throw err
  }
}
