import t from 'tap'
import { createSocket } from 'node:dgram'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decode, encode } from 'dns-packet'
import { createNameCacheMemory, NameCache } from '../../agent/normalize/dns-names.js'
import type { DecodeEnv } from '../../agent/normalize/types.js'
import { bootToWallNs, NetProbe } from '../../bpf/index.js'
import { PacketProbe } from '../../bpf/packet.js'
import { makeDevice, makeMetadata } from '../../shared/ocsf/network.js'
import { requireReal } from '../helpers/env.js'
import { leanDecode } from '../helpers/lean.js'
import { recordsDuring } from '../helpers/ring.js'
import { run } from '../helpers/scan.js'

// Names on connections through the kernel: a process resolves a name from a
// small DNS server (dns-packet, on a loopback address) and connects to the
// answer, a listener of this test; the DNS answer, decoded first, fills the
// name cache, and the network record of the connect carries the name.

type Rec = Record<string, any>
const SERVER = '127.0.0.78'
const TARGET = '127.0.0.88'
const NAME = 'app.names.example.test'
const src = { hostId: 'host-dns-names', hostname: 'names.example', agentVersion: '0.0.0-test' }
const shared = { metadata: makeMetadata(src), device: makeDevice(src) }

t.test('a connect to a resolved address carries the name it was resolved from', async t => {
  if (!requireReal(t, { bpf: true, commands: ['unshare', 'python3'] })) return
  const dns = createSocket('udp4')
  dns.on('message', (msg, rinfo) => {
    try {
      const q = decode(msg)
      const question = q.questions?.[0]
      if (question === undefined) return
      const answers = question.type === 'A' ? [{ type: 'A' as const, name: question.name, ttl: 30, data: TARGET }] : []
      dns.send(encode({ type: 'response', id: q.id, flags: 0x8180, questions: q.questions, answers }), rinfo.port, rinfo.address)
    } catch {}
  })
  await new Promise<void>(resolve => dns.bind(53, SERVER, resolve))
  t.teardown(() => dns.close())
  const listener = createServer(s => s.destroy())
  await new Promise<void>(resolve => listener.listen(0, TARGET, resolve))
  t.teardown(() => listener.close())
  const port = (listener.address() as AddressInfo).port

  const packet = PacketProbe.open({ icmp6: false })
  t.teardown(() => packet.close())
  const net = NetProbe.open()
  t.teardown(() => net.close())
  const names = new NameCache(createNameCacheMemory(256))
  const env: DecodeEnv = { bootToWallNs: bootToWallNs(), ...net.decodeInfo, names }
  const dir = mkdtempSync(join(tmpdir(), 'picket-resolv-'))
  const conf = join(dir, 'resolv.conf')
  writeFileSync(conf, `nameserver ${SERVER}\noptions attempts:1 timeout:3\n`)
  let pid = 0
  const py = `import socket; a = socket.getaddrinfo('${NAME}', ${port}, socket.AF_INET, socket.SOCK_STREAM)[0][4]; socket.create_connection(a).close()`
  const decodeRing = (slab: SharedArrayBuffer, bytes: number): Rec[] => leanDecode(new Uint8Array(slab, 0, bytes), env, shared).objects as unknown as Rec[]
  let dnsRecs: Rec[] = []
  const netRecs = await recordsDuring(net.ringFd, async () => {
    dnsRecs = await recordsDuring(packet.ringFd, async () => {
      const r = await run('unshare', ['-m', 'sh', '-c', `mount --bind ${conf} /etc/resolv.conf && echo $$ && exec python3 -c "${py}"`])
      if (r.code !== 0) throw new Error(`python failed (${r.code}): ${r.stdout}${r.stderr}`)
      pid = Number(r.stdout.split('\n')[0])
    }, decodeRing)
  }, decodeRing) // the DNS ring is decoded first, as a DNS answer is drained before the connect it led to
  const answer = dnsRecs.find(r => r.activity_id === 2 && r.query.hostname === NAME)
  t.ok(answer !== undefined, 'the answer was captured')
  t.same(answer?.answers.map((a: Rec) => a.rdata), [TARGET])
  const open = netRecs.find(r => r.activity_id === 1 && r.dst_endpoint?.ip === TARGET && r.dst_endpoint?.port === port && r.connection_info?.direction_id === 2)
  t.ok(open !== undefined, 'the outbound open was captured')
  t.same(open?.dst_endpoint, { ip: TARGET, port, hostname: NAME }, 'the network record names the address')
  t.equal(open?.actor?.process?.pid, pid, 'python made it')
  t.ok(open.time - answer.time < 3000, `connected ${open.time - answer.time} ms after the answer`)
})
