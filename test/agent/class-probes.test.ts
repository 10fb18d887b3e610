import t from 'tap'
import { openClassProbe, type BpfModule } from '../../agent/source/kernel.js'
import { PicketError } from '../../shared/errors.js'

// The network class's probes without a kernel: the NetProbe and the packet
// probe's ICMPv6 side on its ring, and the class without cgroup v2.

const zero = { matched: 0, reserveFailed: 0 }

function fakeBpf (packet: 'ok' | 'no-cgroup2', closed: string[], packetOpts: unknown[]): BpfModule {
  const net = {
    ringFd: 42,
    ringBytes: 1 << 20,
    config: { wakeupBytes: 1 << 18 },
    decodeInfo: { rstReasons: {}, noSocketReason: 1 },
    counters: () => ({ state: { matched: 10, reserveFailed: 1 }, reset: { matched: 20, reserveFailed: 2 }, icmp: { matched: 30, reserveFailed: 3 }, readFailed: 0, folded: 0 }),
    progStats: () => [{ name: 'net', recursionMisses: 0 }],
    flush: () => {},
    close: () => { closed.push('net') },
  }
  const pkt = {
    counters: () => ({ dns: { ...zero, unattributed: 0 }, icmp6: { matched: 7, reserveFailed: 4 } }),
    progStats: () => [{ name: 'picket_skb_egress', recursionMisses: 0 }],
    close: () => { closed.push('packet') },
  }
  return {
    NetProbe: { open: () => net },
    PacketProbe: {
      open: (o: unknown) => {
        packetOpts.push(o)
        if (packet === 'no-cgroup2') throw new PicketError('PICKET_ERR_BPF_ATTACH', 'no cgroup v2 filesystem is mounted; mount it as root with: mount -t cgroup2 none /sys/fs/cgroup/unified')
        return pkt
      },
    },
  } as unknown as BpfModule
}

t.test('network: ICMPv6 answers share the net ring, and count in its drops and events', async t => {
  const closed: string[] = []
  const opts: unknown[] = []
  const p = openClassProbe(fakeBpf('ok', closed, opts), 'network', {})
  t.match(opts, [{ dns: false, icmp6: true, netRingFd: 42, netRingBytes: 1 << 20, netWakeupBytes: 1 << 18 }], 'the packet probe writes into the NetProbe ring')
  t.equal(p.ring, 'net')
  t.equal(p.ringFd, 42)
  t.equal(p.degraded, undefined)
  t.equal(p.drops(), 1 + 2 + 3 + 4)
  t.equal(p.events(), 10 + 20 + 30 + 7)
  t.equal(p.progStats().length, 2)
  p.close()
  t.same(closed, ['packet', 'net'], 'the writer into the shared ring goes first')
})

t.test('network without cgroup v2: the tracepoints still capture; what is off is said with the fix', async t => {
  const closed: string[] = []
  const p = openClassProbe(fakeBpf('no-cgroup2', closed, []), 'network', {})
  t.equal(p.ring, 'net')
  t.match(p.degraded, /ICMPv6.*IPv6 UDP scans.*mount -t cgroup2/)
  t.equal(p.drops(), 1 + 2 + 3)
  t.equal(p.events(), 10 + 20 + 30)
  p.close()
  t.same(closed, ['net'])
})
