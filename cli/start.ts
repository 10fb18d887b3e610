import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { userInfo } from 'node:os'
import { join } from 'node:path'
import { createTokensFile, readTokensFile, type TokenEntry } from '../backend/http-tokens.js'
import { BACKEND_OPTIONS } from '../backend/options.js'
import { parseCommand, pickSpecs, type HostPort, type OptSpec } from '../shared/config.js'
import { isPicketError } from '../shared/errors.js'
import { createLogger } from '../shared/logger.js'
import { containUnhandledRejections } from './last-resort.js'

// `picket start`: agent, backend and console on this host with embedded
// defaults. Without the privileges capture needs, the backend and console
// still run and one message says how to get capture, and how to see an alert
// without it (picket inject-scan).
//
// Triage needs an access token even here: the history records the analyst
// a token names, and a loopback port is open to every local user. So the
// first start writes DATA/http-tokens (mode 0600) with a token for the user
// who ran it, and prints the console URL carrying it; without a token the
// console is read only (and answers only requests addressed to 127.0.0.1 or
// localhost, the DNS-rebinding guard).

const SPECS: OptSpec[] = [
  ...pickSpecs(BACKEND_OPTIONS, ['listen'], { listen: { help: 'collector address (the agent ships here)' } }),
  ...pickSpecs(BACKEND_OPTIONS, ['console'], { console: { default: '127.0.0.1:8080', help: 'console, /healthz and backend /metrics' } }),
  { name: 'data', type: 'path', default: './data', help: 'data folder: alert store (picket.db) and the agent spool' },
  { name: 'agent-metrics', type: 'hostport', default: '127.0.0.1:9464', help: 'agent Prometheus /metrics' },
  { name: 'capture', type: 'enum', choices: ['auto', 'on', 'off'], default: 'auto', help: 'run the capturing agent: auto = when privileged, on = fail without it' },
  ...pickSpecs(BACKEND_OPTIONS, ['workers', 'log-level']),
]

interface StartValues {
  listen: HostPort
  console: HostPort
  data: string
  'agent-metrics': HostPort
  capture: 'auto' | 'on' | 'off'
  workers?: number
  'log-level': string
}

const CAP_BPF = 39
const CAP_PERFMON = 38

/** Why this process cannot capture, or undefined when it can (root, or CAP_BPF + CAP_PERFMON effective). */
export function captureBlocker (): string | undefined {
  if (process.getuid?.() === 0) return undefined
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))
    const eff = BigInt('0x' + (m?.[1] ?? '0'))
    if ((eff >> BigInt(CAP_BPF) & 1n) === 1n && (eff >> BigInt(CAP_PERFMON) & 1n) === 1n) return undefined
  } catch {}
  return 'not running as root'
}

export function noCaptureMessage (reason: string, collector: string, consoleUrl: string): string {
  return [
    `picket start: capture is off (${reason}).`,
    '  Capture loads BPF programs into the kernel: it needs root, or the capabilities CAP_BPF and',
    '  CAP_PERFMON (plus CAP_DAC_READ_SEARCH to read tracefs).',
    '  To capture, rerun as root:  sudo npm start   (or: sudo picket start)',
    `  The backend and the console keep running at ${consoleUrl}. To see an alert without capture, run:`,
    `    picket inject-scan --collector ${collector}`,
    '',
  ].join('\n')
}

/** Who the quick start's token is for: the user behind sudo, else this one. */
function localAnalyst (env: NodeJS.ProcessEnv): string {
  let own: string | undefined
  try { own = userInfo().username } catch {}
  for (const n of [env.SUDO_USER, env.USER, own]) if (n !== undefined && /^[A-Za-z0-9._-]{1,64}$/.test(n)) return n
  return 'analyst'
}

/** The token the printed console URL carries: the local user's from DATA/http-tokens, made on first start. */
function quickStartToken (file: string, env: NodeJS.ProcessEnv): TokenEntry | undefined {
  const me = localAnalyst(env)
  if (!existsSync(file)) return createTokensFile(file, me)
  const entries = readTokensFile(file)
  return entries.find(e => e.name === me) ?? entries[0]
}

export async function run (argv: string[]): Promise<number> {
  const cfg = parseCommand<StartValues>(SPECS, argv, 'picket start [options]',
      'Run the agent, the backend (collector, detection, alert store) and the console on this host with\n' +
      'embedded defaults: collector 127.0.0.1:50051, console http://127.0.0.1:8080, data in ./data/.\n' +
      'Ctrl-C stops everything cleanly: the agent flushes to the collector (or its spool) first.')
  if (cfg === undefined) return 0
  const v = cfg.values
  const logger = createLogger('picket', { level: v['log-level'] })
  mkdirSync(v.data, { recursive: true })
  const tokensFile = join(v.data, 'http-tokens')
  const mine = quickStartToken(tokensFile, process.env)
  const { startBackend } = await import('../backend/server.js')
  const backend = await startBackend({
    listen: v.listen,
    http: v.console,
    httpTokensFile: tokensFile,
    httpAnonymousReads: true,
    db: join(v.data, 'picket.db'),
    ...(v.workers !== undefined ? { workers: v.workers } : {}),
    logger: logger.child({ part: 'backend' }),
  })
  const uncontain = containUnhandledRejections(backend, logger)
  const consoleUrl = backend.http?.url ?? `http://${v.console.toString()}`
  const lines = [
    'picket start: running on this host',
    `  collector  ${backend.collector.address} (gRPC)`,
    mine !== undefined
      ? `  console    ${consoleUrl}/?access_token=${encodeURIComponent(mine.token)}   (triage as ${mine.name})`
      : `  console    ${consoleUrl}/   (read only: ${tokensFile} holds no token)`,
    `  tokens     ${tokensFile}: one "TOKEN NAME" line per analyst; without a token the console is read only`,
    `  health     ${consoleUrl}/healthz   metrics ${consoleUrl}/metrics`,
    `  data       ${v.data}/ (alert store ${join(v.data, 'picket.db')})`,
  ]
  let agent: Awaited<ReturnType<typeof import('../agent/index.js')['startAgent']>> | undefined
  const blocker = v.capture === 'off' ? 'turned off with --capture off' : captureBlocker()
  if (blocker === undefined) {
    try {
      const { startAgent } = await import('../agent/index.js')
      agent = await startAgent({
        collector: backend.collector.address,
        dataDir: v.data,
        metricsHost: v['agent-metrics'].host,
        metricsPort: v['agent-metrics'].port,
        logger: logger.child({ part: 'agent' }),
      })
      lines.push(`  agent      capturing as host ${agent.hostId}; metrics ${agent.metricsUrl ?? 'off'}`)
    } catch (err) {
      if (v.capture === 'on' || !isPicketError(err)) {
        await backend.close()
        throw err
      }
      process.stderr.write(noCaptureMessage(`${err.message} [${err.code}]`, backend.collector.address, consoleUrl))
    }
  } else if (v.capture === 'on') {
    await backend.close()
    process.stderr.write(noCaptureMessage(blocker, backend.collector.address, consoleUrl))
    return 1
  } else {
    process.stderr.write(noCaptureMessage(blocker, backend.collector.address, consoleUrl))
  }
  lines.push('  Ctrl-C to stop.', '')
  process.stderr.write(lines.join('\n'))

  const fatal = agent?.fatal.then(err => ({ kind: 'fatal' as const, err })) ?? new Promise<never>(() => {})
  const signalled = new Promise<{ kind: 'signal', sig: string }>(resolve => {
    let count = 0
    const on = (sig: NodeJS.Signals): void => {
      if (++count > 1) process.exit(130) // a second Ctrl-C: the spool already holds every batch
      resolve({ kind: 'signal', sig })
    }
    process.on('SIGINT', on)
    process.on('SIGTERM', on)
  })
  const outcome = await Promise.race([signalled, fatal])
  if (outcome.kind === 'fatal') logger.error({ err: outcome.err }, 'the agent failed; stopping')
  process.stderr.write('picket start: stopping (agent first, so its batches reach the collector)\n')
  if (agent !== undefined) {
    const s = await agent.stop()
    process.stderr.write(`picket start: agent captured ${s.captured} records, ${s.shipper.ackedBatches} batches acked, ${s.spool.pendingBatches} left in the spool\n`)
  }
  await backend.flush()
  await backend.close()
  uncontain()
  process.stderr.write('picket start: stopped\n')
  logger.flush()
  return outcome.kind === 'fatal' ? 1 : 0
}
