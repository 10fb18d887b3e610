import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'

// Gates for tests that need real parts (root, the kernel's BPF, a scanner, a
// browser). Where the machine lacks one, the test skips and says why; under
// CI=true that is a failure instead, because CI must run them.

export interface Gate { skip: (reason: string) => void, fail: (reason: string) => void }

export const IN_CI = process.env.CI === 'true'

export function hasCommand (cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0
}

export function isRoot (): boolean {
  return process.getuid?.() === 0
}

export function bpfAvailable (): string | undefined {
  if (!isRoot()) return 'needs root (or CAP_BPF + CAP_PERFMON) to load BPF programs'
  if (!existsSync('/sys/kernel/tracing/events') && !existsSync('/sys/kernel/debug/tracing/events')) return 'tracefs is not mounted (scripts/setup.sh mounts it)'
  if (!existsSync(new URL('../../bpf/addon/build/Release/picket_bpf.node', import.meta.url))) return 'the BPF addon is not built (npm run build)'
  if (!existsSync(new URL('../../bpf/build/net.bpf.o', import.meta.url))) return 'the BPF object is not built (npm run build)'
  return undefined
}

/**
 * Returns true when every requirement is met. Otherwise skips the test with
 * the reason (or fails it under CI=true) and returns false.
 */
export function requireReal (t: Gate, needs: { bpf?: boolean, root?: boolean, commands?: string[] }): boolean {
  const missing: string[] = []
  if (needs.bpf === true) {
    const why = bpfAvailable()
    if (why !== undefined) missing.push(why)
  } else if (needs.root === true && !isRoot()) {
    missing.push('needs root')
  }
  for (const c of needs.commands ?? []) if (!hasCommand(c)) missing.push(`needs ${c} (scripts/setup.sh installs it)`)
  if (missing.length === 0) return true
  const reason = missing.join('; ')
  if (IN_CI) t.fail(`CI=true and this machine cannot run this test: ${reason}`)
  else t.skip(reason)
  return false
}
