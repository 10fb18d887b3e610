import type { Logger } from '../shared/logger.js'
import type { BackendHandle } from '../backend/server.js'

// The last line of defence of a process that runs the backend. The backend
// contains what one batch or one finding can throw where it can happen;
// a promise rejection nothing handled gets here, and is logged and counted
// (picket_internal_errors_total{where="unhandled_rejection"}) rather than
// stopping every host's stream. An uncaught exception still ends the
// process: after one, nothing says the state it leaves behind is sound.

/** Log and count unhandled rejections until the returned function is called. */
export function containUnhandledRejections (backend: Pick<BackendHandle, 'metrics'>, logger: Logger): () => void {
  const on = (err: unknown): void => {
    backend.metrics.internalErrors.inc({ where: 'unhandled_rejection' })
    logger.error({ err }, 'a promise rejection nothing handled (a Picket bug: please report it with this line); the backend goes on')
  }
  process.on('unhandledRejection', on)
  return () => { process.off('unhandledRejection', on) }
}
