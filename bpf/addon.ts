import { createRequire } from 'node:module'
import { PicketError } from '../shared/errors.js'
import { rootPath } from '../shared/paths.js'

// The native module's raw surface. Only bpf/index.ts uses it.

declare const handleBrand: unique symbol
export type ObjHandle = { readonly [handleBrand]: 'obj' }
export type RingHandle = { readonly [handleBrand]: 'ring' }

export interface NativeBpf {
  open: (path: string) => ObjHandle
  setGlobal: (h: ObjHandle, section: string, name: string, value: Uint8Array) => void
  setMaxEntries: (h: ObjHandle, map: string, n: number) => void
  load: (h: ObjHandle) => void
  attachTracepoint: (h: ObjHandle, prog: string, category: string, name: string) => void
  attachCgroup: (h: ObjHandle, prog: string, cgroupDir: string) => void
  reuseMap: (h: ObjHandle, map: string, fd: number) => void
  mapFd: (h: ObjHandle, map: string) => number
  mapUpdate: (h: ObjHandle, map: string, key: Uint8Array, value: Uint8Array) => void
  mapDelete: (h: ObjHandle, map: string, key: Uint8Array) => void
  readPercpuArray: (h: ObjHandle, map: string, n: number) => number[]
  progRun: (h: ObjHandle, prog: string) => number
  progStats: (h: ObjHandle) => Array<{ name: string, runCount: number, runTimeNs: number, recursionMisses: number, id: number }>
  close: (h: ObjHandle) => void
  ringOpen: (fd: number) => RingHandle
  ringDrain: (r: RingHandle, dst: Uint8Array, offset: number, length: number, timeoutMs: number, out: Float64Array) => number
  ringPending: (r: RingHandle) => number
  ringClose: (r: RingHandle) => void
  bootToWallNs: () => number
  bootNs: () => number
  libbpfVersion: () => string
}

export const ADDON_PATH = rootPath('bpf', 'addon', 'build', 'Release', 'picket_bpf.node')

let native: NativeBpf | undefined

export function loadAddon (): NativeBpf {
  if (native !== undefined) return native
  try {
    native = createRequire(import.meta.url)(ADDON_PATH) as NativeBpf
  } catch (err) {
    throw new PicketError('PICKET_ERR_ADDON_MISSING', `the native BPF addon could not be loaded from ${ADDON_PATH} (${(err as Error).message.split('\n')[0]}); build it with: npm run build (needs libbpf-dev, see scripts/setup.sh)`)
  }
  return native
}
