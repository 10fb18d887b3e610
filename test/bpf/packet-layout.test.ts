import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { DNS_EVENT, DNS_SNAP, encodePktConfig, PKT_CONFIG, PKT_COUNTER, PKT_KIND, SKB_DIR } from '../../bpf/packet-layout.js'
import { rootPath } from '../../shared/paths.js'
import { IN_CI } from '../helpers/env.js'

// The packet capture's records and configuration in bpf/packet-layout.ts
// against events.h as the C compiler lays it out (bpf/layout-print, built by
// npm run build from bpf/layout-print.c).

t.test('packet-layout.ts matches events.h as compiled by the C compiler', async t => {
  const exe = rootPath('bpf', 'build', 'layout-print')
  if (!existsSync(exe)) {
    if (IN_CI) t.fail('CI=true and bpf/build/layout-print is not built')
    else t.skip('bpf/build/layout-print is not built (npm run build)')
    return
  }
  const run = spawnSync(exe, { encoding: 'utf8' })
  t.equal(run.status, 0)
  const c = JSON.parse(run.stdout) as Record<string, Record<string, number>>
  t.same(c.dns_event, { ...DNS_EVENT }, 'struct picket_dns_event')
  t.same(c.pkt_config, { ...PKT_CONFIG }, 'struct picket_pkt_config')
  const k = c.pkt_constants
  t.same(k, {
    PICKET_EV_NET_ICMP6: PKT_KIND.NET_ICMP6,
    PICKET_EV_DNS: PKT_KIND.DNS,
    PICKET_DNS_SNAP: DNS_SNAP,
    PICKET_SKB_INGRESS: SKB_DIR.INGRESS,
    PICKET_SKB_EGRESS: SKB_DIR.EGRESS,
    PICKET_PKT_CNT_DNS_MATCHED: PKT_COUNTER.DNS_MATCHED,
    PICKET_PKT_CNT_DNS_RESERVE_FAIL: PKT_COUNTER.DNS_RESERVE_FAIL,
    PICKET_PKT_CNT_DNS_UNATTRIBUTED: PKT_COUNTER.DNS_UNATTRIBUTED,
    PICKET_PKT_CNT_ICMP6_MATCHED: PKT_COUNTER.ICMP6_MATCHED,
    PICKET_PKT_CNT_ICMP6_RESERVE_FAIL: PKT_COUNTER.ICMP6_RESERVE_FAIL,
    PICKET_PKT_CNT_MAX: PKT_COUNTER.MAX,
  }, 'kinds, snap length, directions, counters')
  t.equal(DNS_EVENT.payload % 8, 0, 'the payload starts 8-aligned, so a record rounded up to 8 packs back to back')
  t.equal(DNS_EVENT.SIZEOF, DNS_EVENT.payload + DNS_SNAP)
})

t.test('encodePktConfig writes each field where the struct has it', async t => {
  const b = encodePktConfig({ dnsWakeupBytes: 0x01020304, netWakeupBytes: 7, enableDns: true, enableIcmp6: false, dnsServerSide: true })
  t.equal(b.length, PKT_CONFIG.SIZEOF)
  const dv = new DataView(b.buffer)
  t.equal(dv.getUint32(PKT_CONFIG.dns_wakeup_bytes, true), 0x01020304)
  t.equal(dv.getUint32(PKT_CONFIG.net_wakeup_bytes, true), 7)
  t.same([b[PKT_CONFIG.enable_dns], b[PKT_CONFIG.enable_icmp6], b[PKT_CONFIG.dns_server_side]], [1, 0, 1])
})
