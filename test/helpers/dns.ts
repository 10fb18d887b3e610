import { spawn, type ChildProcess } from 'node:child_process'
import { ipv4At, ipv6At } from '../../agent/normalize/ip.js'
import { HEADER } from '../../bpf/abi.js'
import { DNS_EVENT } from '../../bpf/abi-dns.js'
import { run, type ScanResult } from './scan.js'

// A real DNS server (Debian's dnsmasq) on loopback for the DNS capture tests,
// the raw DNS_EVENTS records read back field by field, and just enough of a
// DNS message parser (RFC 1035 §4) to check what the kernel copied.

export const DNS_V4 = '127.0.0.77'
export const DNS_V6 = '::1'
export const ANSWER_V4 = '192.0.2.7'
export const ANSWER_V6 = '2001:db8::7'
/** a name whose answer (four 250-byte TXT strings) is longer than the 512 bytes a record carries */
export const BIG_NAME = 'big.example.test'

export interface Dnsmasq { pid: number, stop: () => Promise<void> }

/**
 * dnsmasq answering *.example.test from its command line, listening on
 * DNS_V4:53 and [::1]:53 only; `extra` adds zone options (--cname, --host-record, ...).
 */
export async function startDnsmasq (extra: string[] = []): Promise<Dnsmasq> {
  const txt = ['a', 'b', 'c', 'd'].map(c => `--txt-record=${BIG_NAME},${c.repeat(250)}`)
  const p: ChildProcess = spawn('dnsmasq', ['-C', '/dev/null', '--keep-in-foreground', '--log-facility=-', '--pid-file=',
    '--no-resolv', '--no-hosts', '--bind-interfaces', `--listen-address=${DNS_V4}`, `--listen-address=${DNS_V6}`, '--port=53',
    `--address=/example.test/${ANSWER_V4}`, `--address=/example.test/${ANSWER_V6}`, ...txt, ...extra], { stdio: ['ignore', 'ignore', 'pipe'] })
  const exited = new Promise<void>(resolve => p.once('exit', () => resolve()))
  let stderr = ''
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`dnsmasq did not start: ${stderr}`)), 10_000)
    p.stderr?.on('data', d => {
      stderr += String(d)
      if (/started, version/.test(stderr)) { clearTimeout(timer); resolve() }
    })
    p.once('exit', code => { clearTimeout(timer); reject(new Error(`dnsmasq exited ${code}: ${stderr}`)) })
  })
  return { pid: p.pid!, stop: async () => { p.kill('SIGTERM'); await exited } }
}

/** dig against the test server; `pid` is dig's own (its queries run in a thread of it). */
export async function dig (args: string[]): Promise<ScanResult & { pid: number }> {
  let pid = 0
  const r = await run('sh', ['-c', 'echo $$; exec dig +tries=1 +time=3 "$@"', 'dig', ...args])
  pid = Number(r.stdout.split('\n')[0])
  if (r.code !== 0) throw new Error(`dig ${args.join(' ')} failed (${r.code}): ${r.stdout}${r.stderr}`)
  return { ...r, stdout: r.stdout.slice(r.stdout.indexOf('\n') + 1), pid }
}

export interface DnsRecord {
  kind: number
  size: number
  pid: number
  tgid: number
  comm: string
  laddr: string
  raddr: string
  lport: number
  rport: number
  family: number
  protocol: number
  skbDir: number
  ifindex: number
  cookie: bigint
  cgroupId: bigint
  uid: number
  attributed: boolean
  dnsLen: number
  captured: number
  payload: Uint8Array
}

/** The DNS_EVENTS records in bytes [0, length) of a drained slab. */
export function readDnsRecords (slab: SharedArrayBuffer, length: number): DnsRecord[] {
  const buf = new Uint8Array(slab)
  const dv = new DataView(slab)
  const out: DnsRecord[] = []
  for (let p = 0; p < length;) {
    const size = dv.getUint16(p + HEADER.size, true)
    if (size === 0) throw new Error(`record of size 0 at ${p}`)
    const ip = dv.getUint16(p + DNS_EVENT.family, true) === 10 ? ipv6At : ipv4At
    const comm = buf.subarray(p + HEADER.comm, p + HEADER.comm + HEADER.COMM_LEN)
    const captured = dv.getUint16(p + DNS_EVENT.captured, true)
    out.push({
      kind: dv.getUint16(p + HEADER.kind, true),
      size,
      pid: dv.getUint32(p + HEADER.pid, true),
      tgid: dv.getUint32(p + HEADER.tgid, true),
      comm: Buffer.from(comm.subarray(0, comm.indexOf(0) < 0 ? comm.length : comm.indexOf(0))).toString('latin1'),
      laddr: ip(buf, p + DNS_EVENT.laddr),
      raddr: ip(buf, p + DNS_EVENT.raddr),
      lport: dv.getUint16(p + DNS_EVENT.lport, true),
      rport: dv.getUint16(p + DNS_EVENT.rport, true),
      family: dv.getUint16(p + DNS_EVENT.family, true),
      protocol: buf[p + DNS_EVENT.protocol],
      skbDir: buf[p + DNS_EVENT.skb_dir],
      ifindex: dv.getUint32(p + DNS_EVENT.ifindex, true),
      cookie: dv.getBigUint64(p + DNS_EVENT.cookie, true),
      cgroupId: dv.getBigUint64(p + DNS_EVENT.cgroup_id, true),
      uid: dv.getUint32(p + DNS_EVENT.uid, true),
      attributed: buf[p + DNS_EVENT.attributed] === 1,
      dnsLen: dv.getUint16(p + DNS_EVENT.dns_len, true),
      captured,
      payload: buf.slice(p + DNS_EVENT.payload, p + DNS_EVENT.payload + captured),
    })
    p += size
  }
  return out
}

export interface DnsMessage {
  id: number
  qr: boolean
  rcode: number
  qname: string
  qtype: number
  answers: Array<{ type: number, data: Uint8Array }>
}

function name (b: Uint8Array, off: number): { name: string, end: number } {
  const labels: string[] = []
  let end = -1
  for (let hops = 0; hops < 64; hops++) {
    const len = b[off]
    if (len === undefined) throw new Error('name runs past the message')
    if ((len & 0xc0) === 0xc0) {
      if (end < 0) end = off + 2
      off = ((len & 0x3f) << 8) | b[off + 1]
      continue
    }
    if (len === 0) return { name: labels.join('.'), end: end < 0 ? off + 1 : end }
    labels.push(Buffer.from(b.subarray(off + 1, off + 1 + len)).toString('latin1'))
    off += 1 + len
  }
  throw new Error('name compression loop')
}

/** Header, first question and (as far as the bytes go) the answer records. */
export function parseDns (b: Uint8Array): DnsMessage {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength)
  const q = name(b, 12)
  const msg: DnsMessage = {
    id: dv.getUint16(0),
    qr: (b[2] & 0x80) !== 0,
    rcode: b[3] & 0x0f,
    qname: q.name,
    qtype: dv.getUint16(q.end),
    answers: [],
  }
  let off = q.end + 4
  for (let i = 0; i < dv.getUint16(6) && off < b.length; i++) {
    const rr = name(b, off)
    if (rr.end + 10 > b.length) break
    const type = dv.getUint16(rr.end)
    const rdlen = dv.getUint16(rr.end + 8)
    msg.answers.push({ type, data: b.slice(rr.end + 10, rr.end + 10 + rdlen) })
    off = rr.end + 10 + rdlen
  }
  return msg
}
