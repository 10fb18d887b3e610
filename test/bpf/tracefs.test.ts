import t from 'tap'
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync } from 'node:fs'
import { release, tmpdir } from 'node:os'
import { join } from 'node:path'
import { ADDR_MODE, NET_CONFIG, OFF_ABSENT, TP_LAYOUT, TP_LAYOUT_FIELDS } from '../../bpf/abi.js'
import { encodeNetConfig } from '../../bpf/layout.js'
import { NetProbe } from '../../bpf/index.js'
import { parseFormat, parseSymbolic, readFormat } from '../../bpf/tracefs.js'
import { isPicketError } from '../../shared/errors.js'
import { rootPath } from '../../shared/paths.js'

const fixture = (name: string): string => rootPath('test', 'fixtures', name)

t.test('parses a tcp_send_reset format of 6.10+ (reason, sockaddr addresses)', async t => {
  const fmt = readFormat(fixture('tracefs-6.18'), 'tcp', 'tcp_send_reset')
  t.equal(fmt.name, 'tcp_send_reset')
  t.same(fmt.fields.get('saddr'), { name: 'saddr', type: '__u8', offset: 32, size: 28, signed: false, arrayLen: 28 })
  t.same(fmt.fields.get('skaddr'), { name: 'skaddr', type: 'const void *', offset: 16, size: 8, signed: false })
  t.equal(fmt.fields.get('reason')?.type, 'enum sk_rst_reason')
  t.equal(fmt.recordSize, 88)
  const reasons = parseSymbolic(fmt.printFmt, 'reason')
  t.equal(reasons[1], 'NO_SOCKET')
  t.equal(reasons[0], 'NOT_SPECIFIED')
})

t.test('layout discovery: shifted offsets in the format give a shifted configuration', async t => {
  const real = NetProbe.configure({ tracefsDir: fixture('tracefs-6.18') }).config
  const shifted = NetProbe.configure({ tracefsDir: fixture('tracefs-shifted') }).config
  for (const tp of ['state', 'reset', 'icmp'] as const) {
    for (const f of TP_LAYOUT_FIELDS) {
      const a = real[tp][f]
      const b = shifted[tp][f]
      if (f === 'record_size') t.equal(b, a + 8, `${tp}.record_size grows by 8`)
      else if (f === 'addr_mode' || f === 'state_size' || f === 'pad0' || a === OFF_ABSENT) t.equal(b, a, `${tp}.${f} unchanged`)
      else t.equal(b, a + 8, `${tp}.${f} moved from ${a} to ${a + 8}`)
    }
  }
  t.equal(real.reset.addr_mode, ADDR_MODE.SOCKADDR)
  // the bytes written into .rodata carry the shift too
  const ra = encodeNetConfig(real)
  const sb = encodeNetConfig(shifted)
  const dvA = new DataView(ra.buffer)
  const dvB = new DataView(sb.buffer)
  const saddrAt = NET_CONFIG.reset[0] + TP_LAYOUT.saddr[0]
  t.equal(dvA.getUint16(saddrAt, true), 32)
  t.equal(dvB.getUint16(saddrAt, true), 40)
})

t.test('pre-6.10 tcp_send_reset (no reason, split addresses) is understood', async t => {
  const { config, decodeInfo } = NetProbe.configure({ tracefsDir: fixture('tracefs-6.1') })
  t.equal(config.reset.addr_mode, ADDR_MODE.SPLIT)
  t.equal(config.reset.reason, OFF_ABSENT, 'no reason field: the program falls back to "no socket" = skaddr NULL')
  t.equal(config.reset.sport, 28)
  t.equal(config.reset.saddr_v6, 42)
  t.same(decodeInfo.rstReasons, {})
})

t.test('a missing tracepoint is named, with the kernel release', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'picket-tracefs-'))
  for (const tp of ['sock/inet_sock_set_state', 'tcp/tcp_send_reset']) {
    mkdirSync(join(dir, 'events', tp), { recursive: true })
    writeFileSync(join(dir, 'events', tp, 'format'), readFileSync(join(fixture('tracefs-6.18'), 'events', tp, 'format')))
  }
  try {
    NetProbe.configure({ tracefsDir: dir })
    t.fail('configure should have thrown')
  } catch (err) {
    t.ok(isPicketError(err, 'PICKET_ERR_TRACEPOINT_MISSING'), 'PICKET_ERR_TRACEPOINT_MISSING')
    t.match((err as Error).message, 'icmp:icmp_send')
    t.match((err as Error).message, release())
  }
  // the same layout without icmp_send works when that program is disabled
  t.equal(NetProbe.configure({ tracefsDir: dir, programs: { icmp: false } }).config.enableIcmp, false)
})

t.test('a format lacking a needed field is named', async t => {
  const text = readFileSync(join(fixture('tracefs-6.18'), 'events/icmp/icmp_send/format'), 'utf8').replace(/\tfield:__u16 dport;.*\n/, '')
  const dir = mkdtempSync(join(tmpdir(), 'picket-tracefs-'))
  for (const tp of ['sock/inet_sock_set_state', 'tcp/tcp_send_reset', 'icmp/icmp_send']) {
    mkdirSync(join(dir, 'events', tp), { recursive: true })
    writeFileSync(join(dir, 'events', tp, 'format'), tp === 'icmp/icmp_send' ? text : readFileSync(join(fixture('tracefs-6.18'), 'events', tp, 'format')))
  }
  t.throws(() => NetProbe.configure({ tracefsDir: dir }), { code: 'PICKET_ERR_TRACEPOINT_LAYOUT', message: /icmp:icmp_send.*no field 'dport'/ })
})

t.test('tracefs pointed at a folder without formats says how to mount it', async t => {
  t.throws(() => NetProbe.configure({ tracefsDir: tmpdir() }), { code: 'PICKET_ERR_TRACEFS', message: /tracefs/ })
})

t.test('parseFormat ignores noise and keeps array lengths', async t => {
  const f = parseFormat('name: x\nID: 7\nformat:\n\tfield:__u8 daddr_v6[16];\toffset:56;\tsize:16;\tsigned:0;\n\nprint fmt: "x"\n')
  t.equal(f.id, 7)
  t.equal(f.fields.get('daddr_v6')?.arrayLen, 16)
  t.equal(f.recordSize, 72)
})
