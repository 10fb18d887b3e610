import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { PicketError } from '../shared/errors.js'

// The cgroup v2 hierarchy the packet programs attach to. Its root covers every
// socket on the host; the kernel's own sockets (ICMP answers) live there too.
// Hosts mount it at /sys/fs/cgroup (unified), /sys/fs/cgroup/unified (hybrid)
// or nowhere (v1 only): the v2 hierarchy exists in every kernel with
// CONFIG_CGROUP_BPF, mounted or not, so mounting it costs nothing and changes
// no controller.

/** Where Picket mounts cgroup v2 when the host has not: a directory of its own. */
export const PICKET_CGROUP2_DIR = '/run/picket/cgroup2'

export interface MountInfo {
  /** the mounted subtree of the filesystem ('/' for its root) */
  root: string
  mountPoint: string
  fstype: string
}

// mountinfo escapes space, tab, newline and backslash as \ooo
const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))

/** Parse /proc/self/mountinfo (proc(5)): the optional fields end at ' - '. */
export function parseMountinfo (text: string): MountInfo[] {
  const out: MountInfo[] = []
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ')
    if (sep < 0) continue
    const pre = line.slice(0, sep).split(' ')
    const post = line.slice(sep + 3).split(' ')
    if (pre.length < 5 || post.length < 1) continue
    out.push({ root: unescape(pre[3]), mountPoint: unescape(pre[4]), fstype: post[0] })
  }
  return out
}

/**
 * The first cgroup v2 mount of its hierarchy's root, else of a subtree (in a
 * container, the container's own cgroup: the programs then see only its
 * sockets); undefined when none is mounted.
 */
export function cgroup2Mount (mounts: readonly MountInfo[]): string | undefined {
  const v2 = mounts.filter(m => m.fstype === 'cgroup2')
  return (v2.find(m => m.root === '/') ?? v2[0])?.mountPoint
}

export interface FindCgroup2Options {
  /** use this cgroup v2 directory (a mount point or any cgroup below it) */
  dir?: string
  /** mountinfo text (default: read /proc/self/mountinfo) */
  mountinfo?: string
  /** where to mount cgroup v2 when none is mounted and we are root (default PICKET_CGROUP2_DIR) */
  mountAt?: string
}

const HOW = 'mount it as root with: mkdir -p /sys/fs/cgroup/unified && mount -t cgroup2 none /sys/fs/cgroup/unified'

/**
 * Find the cgroup v2 directory to attach to, mounting cgroup v2 when none is
 * mounted and we are root. A missing cgroup v2 is an attach error that names
 * the fix, like a missing tracepoint.
 */
export function findCgroup2 (opts: FindCgroup2Options = {}): string {
  if (opts.dir !== undefined) {
    // only cgroup v2 directories have cgroup.controllers
    if (existsSync(join(opts.dir, 'cgroup.controllers'))) return opts.dir
    throw new PicketError('PICKET_ERR_BPF_ATTACH', `${opts.dir} is not a cgroup v2 directory (no cgroup.controllers); point it at a cgroup2 mount, or ${HOW}`)
  }
  const found = cgroup2Mount(parseMountinfo(opts.mountinfo ?? readFileSync('/proc/self/mountinfo', 'utf8')))
  if (found !== undefined) return found
  if (process.getuid?.() !== 0) {
    throw new PicketError('PICKET_ERR_BPF_ATTACH', `no cgroup v2 filesystem is mounted, and the DNS and ICMPv6 programs attach to its root; ${HOW}`)
  }
  const at = opts.mountAt ?? PICKET_CGROUP2_DIR
  let why: string
  try {
    mkdirSync(at, { recursive: true })
    const r = spawnSync('mount', ['-t', 'cgroup2', 'none', at], { encoding: 'utf8' })
    if (r.status === 0 && existsSync(join(at, 'cgroup.controllers'))) return at
    why = (r.stderr ?? r.error?.message ?? '').trim()
  } catch (err) {
    why = (err as Error).message
  }
  throw new PicketError('PICKET_ERR_BPF_ATTACH', `no cgroup v2 filesystem is mounted and mounting one at ${at} failed (${why}); ${HOW}`)
}
