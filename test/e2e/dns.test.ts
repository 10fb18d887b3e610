import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { rootPath } from '../../shared/paths.js'
import { spawnPicket } from '../helpers/cli.js'
import { dig, DNS_V4, startDnsmasq } from '../helpers/dns.js'
import { requireReal } from '../helpers/env.js'
import { run } from '../helpers/scan.js'
import { findings, startStack, type FindingSummary, type Stack } from './helpers/stack.js'

// DNS detections through the whole system (issue 14): a real dnsmasq on
// loopback, real `picket backend` and `picket agent` processes (the agent's
// default classes include dns), real clients sending real UDP queries.
// An iodine-like client gives exactly one tunnelling finding naming the
// process and the domain; a base64-shaped name fires SigmaHQ's 4153a907;
// 2,000 ordinary lookups (CNAME chains, NXDOMAINs) give none.

type Rec = Record<string, any>
const TUNNEL_RULE = '0c6f2d84-93a1-4b57-b0e2-6d8e1f4a9c35'
const B64_RULE = '4153a907-2451-4e4f-a578-c52bb6881432'
const TUNNEL_DOMAIN = 'tunnel-example.com'
const DEADLINE_MS = 20_000
// after a finding appears, keep watching this long for a duplicate
const SETTLE_MS = 3000

// The benign zone: 100 ordinary names over 10 sites. Six in ten are CNAME
// chains (name → edge → host), three in ten plain A records, one in ten a
// name dnsmasq answers NXDOMAIN (--address=/domain/ with no address).
const SITES = ['example.org', 'wikipedia.org', 'github.com', 'debian.org', 'bbc.co.uk', 'npmjs.com', 'ubuntu.com', 'kernel.org', 'python.org', 'gone.example.net']
const HOSTS = ['www', 'api', 'mail', 'cdn', 'static', 'login', 'docs', 'images', 'download', 'status']
const NAMES = SITES.flatMap(s => HOSTS.map(h => `${h}.${s}`))

function zone (): string[] {
  const args: string[] = []
  for (let e = 0; e < 4; e++) args.push(`--host-record=e${e}.a.cdn-provider.net,192.0.2.${10 + e}`, `--cname=edge-${e}.cdn-provider.net,e${e}.a.cdn-provider.net`)
  NAMES.forEach((name, i) => {
    if (name.endsWith('gone.example.net')) return
    if (i % 10 < 6) args.push(`--cname=${name},edge-${i % 4}.cdn-provider.net`)
    else args.push(`--host-record=${name},192.0.2.${100 + i}`)
  })
  args.push('--address=/gone.example.net/', `--address=/${TUNNEL_DOMAIN}/192.0.2.9`)
  return args
}

const ruleOf = (f: FindingSummary): string | undefined => f.finding.finding_info?.analytic?.uid

async function waitFor (stack: Stack, pick: (f: FindingSummary) => boolean, what: string): Promise<FindingSummary[]> {
  const end = Date.now() + DEADLINE_MS
  for (;;) {
    const mine = (await findings(stack.db)).filter(pick)
    if (mine.length > 0) {
      await new Promise(resolve => setTimeout(resolve, SETTLE_MS))
      return (await findings(stack.db)).filter(pick)
    }
    if (Date.now() > end) throw new Error(`no ${what} finding within ${DEADLINE_MS} ms; agent stderr:\n${stack.agent.stderr().slice(-2000)}\nbackend stderr:\n${stack.backend.stderr().slice(-2000)}`)
    await new Promise(resolve => setTimeout(resolve, 200))
  }
}

t.test('DNS detections against real agent and backend processes', async t => {
  if (!requireReal(t, { bpf: true, commands: ['dnsmasq', 'dig', 'python3'] })) return
  const server = await startDnsmasq(zone())
  t.teardown(server.stop)
  const stack = await startStack({ hostId: 'e2e-dns' })
  t.teardown(async () => { await stack.close() })
  const dir = mkdtempSync(join(tmpdir(), 'picket-e2e-dns-'))

  await t.test('the zone answers: a CNAME chain, an A record, an NXDOMAIN', async t => {
    t.match((await dig([`@${DNS_V4}`, 'www.example.org', 'A'])).stdout, /CNAME\s+edge-0\.cdn-provider\.net[\s\S]*CNAME\s+e0\.a\.cdn-provider\.net[\s\S]*A\s+192\.0\.2\.10/)
    t.match((await dig([`@${DNS_V4}`, 'docs.example.org', 'A'])).stdout, /status: NOERROR[\s\S]*A\s+192\.0\.2\.106/)
    t.match((await dig([`@${DNS_V4}`, 'www.gone.example.net', 'A'])).stdout, /status: NXDOMAIN/)
  })

  await t.test('picket capture --class dns alongside: a dig lookup\'s query and response', async t => {
    const name = 'capture.e2e.example.test'
    const p = spawnPicket(['capture', '--class', 'dns', '--count', '1000'])
    t.teardown(async () => { await p.stop('SIGINT') })
    await p.waitFor(/capture: attached/, { timeoutMs: 60_000 })
    const { pid } = await dig([`@${DNS_V4}`, name, 'A'])
    const end = Date.now() + 10_000
    let mine: Rec[] = []
    while (mine.length < 2 && Date.now() < end) {
      await new Promise(resolve => setTimeout(resolve, 100))
      mine = p.stdout().split('\n').filter(l => l.length > 0).map(l => JSON.parse(l) as Rec).filter(r => r.query?.hostname === name)
    }
    t.same(mine.map(r => r.activity_id).sort(), [1, 2], 'one query, one response')
    t.ok(mine.every(r => r.class_uid === 4003 && r.actor?.process?.pid === pid), `dns_activity from dig (pid ${pid})`)
    t.same(mine.find(r => r.activity_id === 2)?.answers?.map((a: Rec) => a.rdata), ['192.0.2.7'], 'the answer')
  })

  await t.test('an iodine-like client: 300 random base32 label queries under one domain → exactly one finding', async t => {
    const r = await run('python3', [rootPath('test', 'fixtures', 'dns-tunnel-client.py'), DNS_V4, TUNNEL_DOMAIN, '300', '10', '14'])
    t.equal(r.code, 0, `client ran: ${r.stderr}`)
    t.equal(Number(r.stdout.trim()), 300, 'every query answered')
    const mine = await waitFor(stack, f => ruleOf(f) === TUNNEL_RULE, 'tunnelling')
    t.equal(mine.length, 1, 'one incident, one finding')
    const f = mine[0].finding
    t.match(f.finding_info.title, new RegExp(`DNS tunnelling to ${TUNNEL_DOMAIN.replace('.', '\\.')} by iodine on .*e2e-dns`), 'names the domain, the process and the host')
    t.equal(mine[0].hostId, 'e2e-dns')
    const values = (f.unmapped?.picket?.values ?? []) as Array<{ value: string }>
    t.ok(values.length > 0 && values.every(v => /^[a-z2-7]{51}[2-7]\.t\.tunnel-example\.com$/.test(v.value)), `a sample of the client's queries (${values.length})`)
    const evs = (f.evidences ?? []) as Rec[]
    t.ok(evs.length > 0 && evs.every(e => /^[a-z2-7]{51}[2-7]\.t\.tunnel-example\.com$/.test(e.query?.hostname)), `each evidence shows its query name (${evs.length})`)
  })

  await t.test('a base64-shaped query fires SigmaHQ 4153a907', async t => {
    // the rule: query|contains '==.'; base64 of a short secret ends in padding
    const name = `${Buffer.from('picket secret').toString('base64')}.b64.example.test`
    t.match(name, /==\./)
    await dig([`@${DNS_V4}`, name, 'A'])
    const mine = await waitFor(stack, f => ruleOf(f) === B64_RULE, 'B64')
    t.equal(mine.length, 1, 'one finding')
    t.equal(mine[0].hostId, 'e2e-dns')
    t.match(JSON.stringify(mine[0].finding), 'Suspicious DNS Query with B64 Encoded String')
    // the rule reads no activity: the query and its response both match, one finding for both
    const evs = (mine[0].finding.evidences ?? []) as Rec[]
    t.ok(evs.length > 0 && evs.every(e => e.query?.hostname === name), `the evidence shows the query name (${evs.length} records)`)
  })

  await t.test('benign: 2,000 lookups of 100 ordinary names (CNAME chains, NXDOMAINs) → no finding', async t => {
    const before = (await findings(stack.db)).map(f => f.id)
    let seed = 7
    const next = (): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed >>> 8 }
    // every name at least once, the rest at random; dig -f runs them in one process
    const lines = Array.from({ length: 2000 }, (_, i) => `${i < 100 ? NAMES[i] : NAMES[next() % NAMES.length]} A`)
    const batch = join(dir, 'benign.txt')
    writeFileSync(batch, lines.join('\n') + '\n')
    const r = await run('dig', [`@${DNS_V4}`, '+tries=1', '+time=2', '+noall', '+comments', '-f', batch])
    t.equal(r.code, 0, `dig -f ran: ${r.stderr.slice(0, 200)}`)
    const statuses = [...r.stdout.matchAll(/status: (\w+)/g)].map(m => m[1])
    t.equal(statuses.length, 2000, '2,000 answers')
    t.ok(statuses.filter(s => s === 'NXDOMAIN').length >= 100, `${statuses.filter(s => s === 'NXDOMAIN').length} NXDOMAINs`)
    await new Promise(resolve => setTimeout(resolve, 5000))
    const fresh = (await findings(stack.db)).filter(f => !before.includes(f.id))
    t.same(fresh.map(f => f.finding.finding_info?.title), [], 'no new finding')
  })
})
