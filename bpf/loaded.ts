import { PicketError } from '../shared/errors.js'
import type { NativeBpf, ObjHandle } from './addon.js'
import type { ProgStats } from './types.js'

/** A loaded BPF object's handle: what every probe does with it besides its own maps. */
export abstract class LoadedObject {
  protected readonly native: NativeBpf
  #handle: ObjHandle | undefined
  readonly #what: string

  protected constructor (native: NativeBpf, handle: ObjHandle, what: string) {
    this.native = native
    this.#handle = handle
    this.#what = what
  }

  protected handle (): ObjHandle {
    if (this.#handle === undefined) throw new PicketError('PICKET_ERR_BPF_MAP', `the ${this.#what} is closed`)
    return this.#handle
  }

  progStats (): ProgStats[] {
    return this.native.progStats(this.handle()).map(({ name, runCount, runTimeNs, recursionMisses }) => ({ name, runCount, runTimeNs, recursionMisses }))
  }

  /** Detach every program and free the object. */
  close (): void {
    if (this.#handle === undefined) return
    this.native.close(this.#handle)
    this.#handle = undefined
  }
}
