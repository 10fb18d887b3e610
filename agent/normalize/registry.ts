import { dns } from './dns.js'
import { fileClass } from './file.js'
import { network } from './net.js'
import { processClass } from './process.js'
import type { Normaliser } from './types.js'

// Every OCSF class the agent decodes, one normaliser each (one file per
// class). The raw record's `kind` picks its normaliser; the classes' shapes
// are numbered one after the other, so a shape index names a class's shape
// in every batch. Adding a class: its file, and one entry here (append: a
// shape index must not change under an older batch's reader; the dns class,
// agent/normalize/dns.ts, is one more entry).

export const NORMALISERS: readonly Normaliser[] = [network, processClass, fileClass, dns]

/** The OCSF classes `picket capture --class` knows, probed on this build or not. */
export const CLASS_NAMES = ['network', 'process', 'file', 'dns'] as const

export interface Registry {
  readonly normalisers: readonly Normaliser[]
  /** by raw kind: its normaliser, the record's size, and the normaliser's first shape index */
  readonly byKind: ReadonlyArray<Normaliser | undefined>
  readonly sizeOf: readonly number[]
  /** by raw kind: the smallest size a variable-sized record may have (= sizeOf for a fixed one) */
  readonly minSizeOf: readonly number[]
  readonly shape0: readonly number[]
  /** every shape of every class, by shape index */
  readonly shapes: ReadonlyArray<readonly string[]>
}

export function buildRegistry (normalisers: readonly Normaliser[] = NORMALISERS): Registry {
  const byKind: Array<Normaliser | undefined> = []
  const sizeOf: number[] = []
  const minSizeOf: number[] = []
  const shape0: number[] = []
  const shapes: Array<readonly string[]> = []
  for (const n of normalisers) {
    for (const [k, size] of Object.entries(n.kinds)) {
      const kind = Number(k)
      if (!Number.isInteger(kind) || kind < 0 || kind > 0xffff) throw new Error(`normaliser ${n.name}: kind ${k} is not a u16`)
      const other = byKind[kind]
      if (other !== undefined) throw new Error(`raw kind ${kind} is claimed by both ${other.name} and ${n.name}`)
      byKind[kind] = n
      sizeOf[kind] = typeof size === 'number' ? size : size[1]
      minSizeOf[kind] = typeof size === 'number' ? size : size[0]
      shape0[kind] = shapes.length
    }
    shapes.push(...n.shapes)
  }
  return { normalisers, byKind, sizeOf, minSizeOf, shape0, shapes }
}

/** The registry of this build's classes. */
export const REGISTRY: Registry = buildRegistry()
