import { parseCommand } from '../shared/config.js'
import { createLogger } from '../shared/logger.js'
import { startAgent } from '../agent/index.js'
import { AGENT_OPTION_SPECS, agentOptionsFromFlags } from '../agent/options.js'

// `picket agent`: run the sensor until SIGINT or SIGTERM, then flush what is
// in flight to the collector or leave it in the spool, and exit.

const USAGE = 'picket agent --collector HOST:PORT [--host-id ID] [--data DIR] [--metrics PORT] [options]'
const DESCRIPTION = [
  'Capture network events in the kernel (eBPF), normalise them to OCSF and ship',
  'them to a Picket collector over gRPC, with acks, sequence numbers and a disk',
  'spool that survives collector outages and agent restarts.',
  '',
  'Options come from flags, then PICKET_* environment variables, then --config.',
].join('\n')

export async function run (argv: string[]): Promise<number> {
  const parsed = parseCommand<Record<string, unknown>>(AGENT_OPTION_SPECS, argv, USAGE, DESCRIPTION)
  if (parsed === undefined) return 0
  const options = agentOptionsFromFlags(parsed.values)
  const log = createLogger('picket-agent', { level: options.logLevel ?? 'info' })
  const agent = await startAgent({ ...options, logger: log })

  let signals = 0
  const signalled = new Promise<string>(resolve => {
    const on = (sig: NodeJS.Signals): void => {
      signals++
      if (signals === 1) {
        log.info({ signal: sig }, 'stopping: flushing batches in flight')
        resolve(sig)
      } else {
        // a second signal: the spool already holds every batch; leave now
        log.warn({ signal: sig }, 'second signal: exiting without waiting for acks')
        process.exit(130)
      }
    }
    process.on('SIGINT', on)
    process.on('SIGTERM', on)
  })
  const outcome = await Promise.race([signalled.then(() => 'signal' as const), agent.fatal.then(() => 'fatal' as const)])
  const final = await agent.stop()
  log.flush()
  process.stderr.write(`picket agent: captured ${final.captured} records, spooled ${final.spooledBatches} batches, acked ${final.shipper.ackedBatches}; ${final.spool.pendingBatches} batches left in the spool; drops ${JSON.stringify(final.drops)}\n`)
  return outcome === 'fatal' ? 1 : 0
}
