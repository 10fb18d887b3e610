import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

// Code runs from TypeScript sources (tests, via tsx) and from dist/ (the
// installed CLI). Both resolve the same project root and the same assets.

function findRoot (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'shared', 'proto'))) return dir
    const up = dirname(dir)
    if (up === dir) throw new Error('cannot find the Picket project root above ' + fileURLToPath(import.meta.url))
    dir = up
  }
}

export const ROOT = findRoot()

export function rootPath (...parts: string[]): string {
  return join(ROOT, ...parts)
}

/** Resolve a sibling module of `fromUrl` with the caller's own extension (.ts under tsx, .js under dist). */
export function siblingModule (fromUrl: string, relativeNoExt: string): URL {
  const ext = fromUrl.endsWith('.ts') ? '.ts' : '.js'
  return new URL(relativeNoExt + ext, fromUrl)
}
