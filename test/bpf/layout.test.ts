import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { COUNTER, HEADER, KDIR, KIND, NET_CONFIG, NET_EVENT, OFF_ABSENT, RST_REASON_UNKNOWN, TP_LAYOUT_FIELDS, TP_LAYOUT_SIZEOF, TP_MAX, ADDR_MODE } from '../../bpf/abi.js'
import { rootPath } from '../../shared/paths.js'
import { hasCommand, IN_CI } from '../helpers/env.js'

// The TypeScript mirror and the C header must not drift apart silently:
// compile bpf/layout-print.c against bpf/events.h now and compare every
// offset and size with bpf/abi.ts.

t.test('decoder offsets match events.h as compiled by the C compiler', async t => {
  if (!hasCommand('cc')) {
    if (IN_CI) t.fail('CI=true and no C compiler (scripts/setup.sh installs gcc)')
    else t.skip('needs a C compiler')
    return
  }
  const dir = mkdtempSync(join(tmpdir(), 'picket-layout-'))
  const exe = join(dir, 'layout-print')
  const cc = spawnSync('cc', ['-Wall', '-Werror', '-o', exe, rootPath('bpf', 'layout-print.c')], { encoding: 'utf8' })
  t.equal(cc.status, 0, `layout-print.c compiles: ${cc.stderr}`)
  const run = spawnSync(exe, { encoding: 'utf8' })
  t.equal(run.status, 0)
  const c = JSON.parse(run.stdout) as Record<string, Record<string, number>>

  const { COMM_LEN, SIZEOF: headerSize, ...headerFields } = HEADER
  t.same(c.header, { ...headerFields, SIZEOF: headerSize, COMM_LEN }, 'struct picket_event_header')
  t.same(c.net_event, { ...NET_EVENT }, 'struct picket_net_event')
  const tp: Record<string, number> = {}
  TP_LAYOUT_FIELDS.forEach((f, i) => { tp[f] = 2 * i })
  t.same(c.tp_layout, { ...tp, SIZEOF: TP_LAYOUT_SIZEOF }, 'struct picket_tp_layout')
  t.same(c.net_config, { ...NET_CONFIG }, 'struct picket_net_config')

  const k = c.constants
  t.equal(k.PICKET_EV_NET_STATE, KIND.NET_STATE)
  t.equal(k.PICKET_EV_NET_RESET, KIND.NET_RESET)
  t.equal(k.PICKET_EV_NET_ICMP, KIND.NET_ICMP)
  t.equal(k.PICKET_CNT_MAX, COUNTER.MAX)
  t.equal(k.PICKET_CNT_STATE_MATCHED, COUNTER.STATE_MATCHED)
  t.equal(k.PICKET_CNT_STATE_RESERVE_FAIL, COUNTER.STATE_RESERVE_FAIL)
  t.equal(k.PICKET_CNT_RESET_MATCHED, COUNTER.RESET_MATCHED)
  t.equal(k.PICKET_CNT_RESET_RESERVE_FAIL, COUNTER.RESET_RESERVE_FAIL)
  t.equal(k.PICKET_CNT_ICMP_MATCHED, COUNTER.ICMP_MATCHED)
  t.equal(k.PICKET_CNT_ICMP_RESERVE_FAIL, COUNTER.ICMP_RESERVE_FAIL)
  t.equal(k.PICKET_CNT_READ_FAIL, COUNTER.READ_FAIL)
  t.equal(k.PICKET_OFF_ABSENT, OFF_ABSENT)
  t.equal(k.PICKET_TP_MAX, TP_MAX)
  t.equal(k.PICKET_RST_REASON_UNKNOWN, RST_REASON_UNKNOWN)
  t.equal(k.PICKET_DIR_INBOUND, KDIR.INBOUND)
  t.equal(k.PICKET_DIR_OUTBOUND, KDIR.OUTBOUND)
  t.equal(k.PICKET_DIR_LOCAL, KDIR.LOCAL)
  t.equal(k.PICKET_ADDR_SPLIT, ADDR_MODE.SPLIT)
  t.equal(k.PICKET_ADDR_SOCKADDR, ADDR_MODE.SOCKADDR)
  t.equal(NET_EVENT.SIZEOF % 8, 0, 'records are a multiple of 8 bytes, so they pack back to back in a slab')
})
