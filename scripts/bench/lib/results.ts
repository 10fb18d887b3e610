import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { rootPath } from '../../../shared/paths.js'

// Machine-readable results of the last run of each benchmark, committed next
// to BENCHMARKS.md so the plot can be regenerated without rerunning everything.

export const RESULTS_DIR = rootPath('scripts', 'bench', 'results')

export function saveResults (name: string, data: unknown): void {
  mkdirSync(RESULTS_DIR, { recursive: true })
  writeFileSync(join(RESULTS_DIR, `${name}.json`), JSON.stringify({ at: new Date().toISOString(), data }, null, 2) + '\n')
}

export function loadResults<T> (name: string): { at: string, data: T } | undefined {
  const p = join(RESULTS_DIR, `${name}.json`)
  if (!existsSync(p)) return undefined
  return JSON.parse(readFileSync(p, 'utf8')) as { at: string, data: T }
}
