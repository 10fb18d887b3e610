import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cgroup2Mount, findCgroup2, parseMountinfo } from '../../bpf/cgroup.js'
import { isPicketError } from '../../shared/errors.js'
import { requireReal } from '../helpers/env.js'

// Finding (or mounting) the cgroup v2 hierarchy the packet programs attach to.

const HYBRID = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
const V1_ONLY = HYBRID.split('\n').filter(l => !l.includes('cgroup2')).join('\n')

t.test('parseMountinfo reads mount root, mount point and type, unescaping octal', async t => {
  const m = parseMountinfo(`${HYBRID}90 41 0:38 /system.slice /mnt/with\\040space rw shared:5 master:1 - cgroup2 cgroup2 rw\n`)
  t.same(m.at(-1), { root: '/system.slice', mountPoint: '/mnt/with space', fstype: 'cgroup2' }, 'optional fields skipped, \\040 is a space')
  t.equal(m.length, 4)
})

t.test('the hierarchy root wins over a mounted subtree', async t => {
  const sub = '90 41 0:38 /system.slice /mnt/sub rw - cgroup2 cgroup2 rw\n'
  t.equal(cgroup2Mount(parseMountinfo(sub + HYBRID)), '/sys/fs/cgroup/unified')
  t.equal(cgroup2Mount(parseMountinfo(sub)), '/mnt/sub', 'a subtree when that is all there is (a container)')
  t.equal(cgroup2Mount(parseMountinfo(V1_ONLY)), undefined)
  t.equal(findCgroup2({ mountinfo: HYBRID }), '/sys/fs/cgroup/unified')
})

t.test('a directory that is not cgroup v2 is refused with the fix', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'picket-not-cgroup-'))
  try {
    findCgroup2({ dir })
    t.fail('should have thrown')
  } catch (err) {
    t.ok(isPicketError(err, 'PICKET_ERR_BPF_ATTACH'))
    t.match((err as Error).message, 'mount -t cgroup2 none /sys/fs/cgroup/unified')
  }
})

t.test('with no cgroup v2 mounted, root mounts one where it is told', async t => {
  if (!requireReal(t, { root: true, commands: ['mount', 'umount'] })) return
  const at = join(mkdtempSync(join(tmpdir(), 'picket-cgroup2-')), 'v2')
  const dir = findCgroup2({ mountinfo: V1_ONLY, mountAt: at })
  t.teardown(() => { spawnSync('umount', [at]) })
  t.equal(dir, at)
  t.ok(existsSync(join(at, 'cgroup.controllers')), 'a cgroup v2 root is mounted there')
  t.ok(existsSync(join(at, 'cgroup.procs')))
})
