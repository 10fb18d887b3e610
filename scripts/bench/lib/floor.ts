import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, statSync } from 'node:fs'
import { findCgroup2 } from '../../../bpf/cgroup.js'
import type { TracepointRef } from '../../../bpf/index.js'
import { BpfObject } from '../../../bpf/object.js'
import { rootPath } from '../../../shared/paths.js'

// The physical floor of a capture design: a do-nothing BPF program
// (scripts/bench/noop.bpf.c) attached to the same tracepoints, so what the
// tracepoints cost is told apart from what the probes do. The capture and
// kproc benchmarks both measure against it.

const BUILD = rootPath('scripts', 'bench', 'build')
export const NOOP_OBJECT = rootPath('scripts', 'bench', 'build', 'noop.bpf.o')

const NOOP_SOURCE = rootPath('scripts', 'bench', 'noop.bpf.c')

export function buildNoop (): void {
  if (existsSync(NOOP_OBJECT) && statSync(NOOP_OBJECT).mtimeMs >= statSync(NOOP_SOURCE).mtimeMs) return
  mkdirSync(BUILD, { recursive: true })
  const multiarch = spawnSync('gcc', ['-print-multiarch'], { encoding: 'utf8' }).stdout.trim() || 'x86_64-linux-gnu'
  const args = ['-O2', '-g', '-target', 'bpf', `-I/usr/include/${multiarch}`, '-c', NOOP_SOURCE, '-o', NOOP_OBJECT]
  const r = spawnSync('clang', args, { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`clang ${args.join(' ')}: ${r.stderr}`)
}

/** Attach the do-nothing program to every tracepoint; close() detaches. */
export function attachFloor (tracepoints: readonly TracepointRef[]): { close: () => void } {
  buildNoop()
  const obj = BpfObject.open({ path: NOOP_OBJECT, rings: {}, rodata: {}, attach: tracepoints.map(tp => ({ category: tp.category, name: tp.name, prog: 'picket_noop' })) })
  return { close: () => obj.close() }
}

/**
 * Attach a do-nothing program to each cgroup hook ('cgroup_skb/egress',
 * 'cgroup/connect4', ...) on the cgroup v2 root; close() detaches.
 */
export function attachCgroupFloor (points: readonly string[]): { close: () => void } {
  buildNoop()
  const cgroup = findCgroup2()
  const attach = points.map(point => {
    const [kind, hook] = point.split('/')
    return { prog: `picket_noop_${kind === 'cgroup_skb' ? 'skb_' : ''}${hook}`, cgroup, point }
  })
  const obj = BpfObject.open({ path: NOOP_OBJECT, rings: {}, rodata: {}, attach, caps: ['CAP_BPF', 'CAP_NET_ADMIN'] })
  return { close: () => obj.close() }
}
