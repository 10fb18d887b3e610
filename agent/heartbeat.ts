import type { Logger } from '../shared/logger.js'
import type { Spool } from './ship/spool.js'

// A quiet host sends nothing, and would look dead to the backend: a
// heartbeat is an ordinary batch with no records (a msgpack empty array),
// spooled and acked like any other, carrying the drop counters.

const EMPTY_BATCH = new Uint8Array([0x90])

export interface HeartbeatOptions {
  spool: Spool
  /** 0: never */
  everyMs: number
  /** when a batch last went into the spool (Date.now()); a heartbeat moves it too */
  appended: { lastAppendAt: number }
  /** a heartbeat is in the spool */
  onAppend: () => void
  log: Logger
}

export class Heartbeat {
  readonly #o: HeartbeatOptions

  constructor (o: HeartbeatOptions) {
    this.#o = o
  }

  /** Spool a heartbeat if nothing went into the spool for a heartbeat interval. */
  tick (): void {
    const o = this.#o
    if (o.everyMs === 0 || Date.now() - o.appended.lastAppendAt < o.everyMs) return
    try {
      o.spool.append(EMPTY_BATCH, 0, Date.now())
      o.appended.lastAppendAt = Date.now()
      o.onAppend()
    } catch (err) {
      o.log.warn({ err: (err as Error).message }, 'cannot spool a heartbeat')
    }
  }
}
