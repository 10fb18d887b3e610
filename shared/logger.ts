import pino, { type Logger, type LoggerOptions } from 'pino'

export type { Logger }

// NDJSON on stderr; pretty only when a person is watching the terminal.
export function createLogger (name: string, opts: { level?: string, pretty?: boolean } = {}): Logger {
  const level = opts.level ?? process.env.PICKET_LOG_LEVEL ?? 'info'
  const pretty = opts.pretty ?? (process.stderr.isTTY === true && process.env.PICKET_LOG_PRETTY !== '0')
  const options: LoggerOptions = { name, level, base: { pid: process.pid } }
  if (pretty) {
    return pino(options, pino.transport({ target: 'pino-pretty', options: { destination: 2, colorize: true } }))
  }
  return pino(options, pino.destination({ dest: 2, sync: false }))
}
