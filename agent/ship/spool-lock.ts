import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { PicketError } from '../../shared/errors.js'
import type { Logger } from '../../shared/logger.js'

// One agent per spool folder: a `lock` file holds the owner's pid. A lock
// left by a process that is gone is taken over; one held by a live process,
// or by this process, is refused.

const openDirs = new Set<string>()

function pidAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export function lockSpool (dir: string, log: Logger): void {
  if (openDirs.has(dir)) throw new PicketError('PICKET_ERR_SPOOL', `spool ${dir} is already open in this process`)
  const path = join(dir, 'lock')
  for (let tries = 0; tries < 2; tries++) {
    try {
      const fd = openSync(path, 'wx')
      writeSync(fd, String(process.pid))
      closeSync(fd)
      openDirs.add(dir)
      return
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new PicketError('PICKET_ERR_SPOOL', `cannot lock the spool ${dir}: ${(err as Error).message}`)
    }
    const pid = Number(readFileSync(path, 'utf8').trim())
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && pidAlive(pid)) {
      throw new PicketError('PICKET_ERR_SPOOL', `spool ${dir} is in use by process ${pid}: stop that agent or give this one another --data folder`)
    }
    log.warn({ dir, pid }, 'spool lock left by a process that is gone; taking it over')
    unlinkSync(path)
  }
  throw new PicketError('PICKET_ERR_SPOOL', `cannot lock the spool ${dir}`)
}

export function unlockSpool (dir: string): void {
  openDirs.delete(dir)
  try { unlinkSync(join(dir, 'lock')) } catch {}
}
