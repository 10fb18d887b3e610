import t from 'tap'
import fc from 'fast-check'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { packRecords } from '../../shared/codec.js'
import { CLASS } from '../../shared/ocsf/constants.js'
import { Projector } from '../../backend/detection/projector.js'
import { compileRuleSet } from '../../backend/detection/rules/compile.js'
import { loadRuleDir, parseRuleText } from '../../backend/detection/rules/load.js'
import { expandValue } from '../../backend/detection/rules/transforms.js'
import { rootPath } from '../../shared/paths.js'

// The Sigma matcher over projected columns: modifiers, case rules, the
// condition grammar and Sigma's Linux taxonomy, one rule and one record at a
// time, as the detection workers evaluate them.

const LIM = { maxStringBytes: 4096, maxDepth: 16, maxRecords: 100 }

function compile (detection: string, logsource = '{product: linux, category: process_creation}'): ReturnType<typeof compileRuleSet> {
  const text = `title: t\nid: 11111111-2222-3333-4444-555555555555\nlogsource: ${logsource}\ndetection:\n${detection}\nlevel: low\n`
  const { docs, problems } = parseRuleText(text, 'x.yml')
  if (problems.length > 0) throw new Error(problems.map(p => p.reason).join('; '))
  return compileRuleSet({ docs, files: ['x.yml'] })
}

function proc (cmd: string, exe = '/usr/bin/sh', extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { class_uid: CLASS.PROCESS_ACTIVITY.uid, activity_id: 1, time: Date.now(), device: { uid: 'h' }, process: { pid: 10, cmd_line: cmd, file: { path: exe } }, ...extra }
}

/** Whether the compiled rule matches each record. */
function run (rs: ReturnType<typeof compileRuleSet>, recs: Array<Record<string, unknown>>): boolean[] {
  const p = new Projector(rs.paths, recs.length + 1, undefined, rs.routing)
  const n = p.scan(packRecords(recs), LIM, Date.now())
  return Array.from({ length: n }, (_, r) => rs.detections[0].match(p.cols, r * p.S))
}

function matches (detection: string, recs: Array<Record<string, unknown>>, logsource?: string): boolean[] {
  return run(compile(detection, logsource), recs)
}

t.test('string modifiers are case-insensitive; lists are any-of unless |all', async t => {
  const recs = [proc('CURL -o /TMP/x http://a'), proc('wget http://b'), proc('echo hi')]
  t.same(matches('  sel:\n    CommandLine|contains: [curl, wget]\n  condition: sel', recs), [true, true, false], 'contains, list = any')
  t.same(matches('  sel:\n    CommandLine|contains|all: [curl, /tmp/]\n  condition: sel', recs), [true, false, false], 'contains|all')
  t.same(matches('  sel:\n    CommandLine|startswith: Curl\n  condition: sel', recs), [true, false, false], 'startswith')
  t.same(matches('  sel:\n    CommandLine|endswith: HTTP://B\n  condition: sel', recs), [false, true, false], 'endswith')
  t.same(matches('  sel:\n    CommandLine: ECHO HI\n  condition: sel', recs), [false, false, true], 'equality ignores case')
  t.same(matches('  sel:\n    CommandLine: "echo*"\n  condition: sel', recs), [false, false, true], 'wildcards')
})

t.test('|re is case-sensitive unless (?i); |cidr; |exists; null', async t => {
  const recs = [proc('wget -O /tmp/x'), proc('wget -o /tmp/x')]
  t.same(matches("  sel:\n    CommandLine|re: '\\s-O\\s'\n  condition: sel", recs), [true, false], 're is case-sensitive')
  t.same(matches("  sel:\n    CommandLine|re: '(?i)\\s-O\\s'\n  condition: sel", recs), [true, true], '(?i) makes it insensitive')
  const net = (ip: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ class_uid: 4001, activity_id: 1, time: Date.now(), device: { uid: 'h' }, dst_endpoint: { ip, port: 443 }, connection_info: { direction_id: 2 }, ...extra })
  const ls = '{product: linux, category: network_connection}'
  t.same(matches('  sel:\n    DestinationIp|cidr: 10.0.0.0/8\n  condition: sel', [net('10.1.2.3'), net('192.0.2.1')], ls), [true, false], 'cidr')
  t.same(matches("  sel:\n    Initiated: 'true'\n  condition: sel", [net('10.1.2.3'), net('10.1.2.3', { connection_info: { direction_id: 1 } })], ls), [true, false], "Initiated: 'true' is the outbound direction")
  t.same(matches('  sel:\n    DestinationHostname|exists: true\n  condition: sel', [net('1.1.1.1', { dst_endpoint: { ip: '1.1.1.1', hostname: 'a.example' } }), net('1.1.1.1')], ls), [true, false], 'exists')
  t.same(matches('  sel:\n    ParentCommandLine: null\n  condition: sel', [proc('x'), proc('x', '/bin/sh', { process: { pid: 1, cmd_line: 'x', parent_process: { cmd_line: 'bash' } } })]), [true, false], 'null: the field is absent')
})

t.test('windash, base64 and base64offset', async t => {
  t.same(expandValue(' -enc ', ['windash', 'contains']), [' -enc ', ' /enc ', ' \u2013enc ', ' \u2014enc ', ' \u2015enc '])
  t.same(matches('  sel:\n    CommandLine|windash|contains: " -s "\n  condition: sel', [proc('nmap /s x'), proc('nmap -s x'), proc('nmap s x')]), [true, true, false])
  const b64 = Buffer.from('curl http://evil').toString('base64')
  t.same(matches('  sel:\n    CommandLine|base64: curl http://evil\n  condition: sel', [proc(b64), proc(b64.toLowerCase())]), [true, false], 'base64 is matched as encoded, case-sensitively')
  t.throws(() => compile('  sel:\n    CommandLine|base64offset: x\n  condition: sel'), /base64offset\|contains/)
  fc.assert(fc.property(fc.string({ minLength: 0, maxLength: 6 }), fc.string({ minLength: 1, maxLength: 12 }), fc.string({ maxLength: 6 }), (pre, v, post) => {
    const enc = Buffer.from(pre + v + post, 'utf8').toString('base64')
    return expandValue(v, ['base64offset', 'contains']).some(x => enc.includes(x as string))
  }), { numRuns: 300 })
  t.pass('base64offset finds the value at every offset of 300 random texts')
})

t.test('contains / startswith / endswith agree with lower-cased includes (property)', async t => {
  // wildcard and escape characters excluded: they mean something in a Sigma value
  const text = fc.string({ unit: fc.constantFrom('a', 'B', 'c', ' ', '/', '-', 'É', 'é', '|'), maxLength: 12 })
  fc.assert(fc.property(text, fc.array(text, { minLength: 3, maxLength: 3 }), (needle, hays) => {
    const recs = hays.map(h => proc(h))
    const lc = needle.toLowerCase()
    const y = JSON.stringify(needle)
    const want = (f: (h: string) => boolean): boolean[] => hays.map(f)
    return JSON.stringify(matches(`  sel:\n    CommandLine|contains: ${y}\n  condition: sel`, recs)) === JSON.stringify(want(h => h.toLowerCase().includes(lc))) &&
      JSON.stringify(matches(`  sel:\n    CommandLine|startswith: ${y}\n  condition: sel`, recs)) === JSON.stringify(want(h => h.toLowerCase().startsWith(lc))) &&
      JSON.stringify(matches(`  sel:\n    CommandLine|endswith: ${y}\n  condition: sel`, recs)) === JSON.stringify(want(h => h.toLowerCase().endsWith(lc)))
  }), { numRuns: 150 })
  t.pass('150 random needles and haystacks agree')
})

t.test('the condition grammar', async t => {
  const det = (cond: string): string => `  selection_a:\n    CommandLine|contains: aaa\n  selection_b:\n    CommandLine|contains: bbb\n  filter_c:\n    CommandLine|contains: ccc\n  condition: ${cond}`
  const recs = [proc('aaa'), proc('bbb'), proc('aaa bbb'), proc('aaa ccc'), proc('zzz')]
  t.same(matches(det('1 of selection_*'), recs), [true, true, true, true, false])
  t.same(matches(det('all of selection_*'), recs), [false, false, true, false, false])
  t.same(matches(det('1 of selection_* and not 1 of filter_*'), recs), [true, true, true, false, false])
  t.same(matches(det('1 of them'), recs), [true, true, true, true, false])
  t.same(matches(det('all of them'), recs), [false, false, false, false, false])
  t.same(matches(det('(selection_a and not filter_c) or selection_b'), recs), [true, true, true, false, false])
  t.same(matches(det('not selection_a'), recs), [false, true, false, false, true])
})

t.test("Sigma's Linux taxonomy: mapped fields, implied activity, fallbacks, and unmapped fields named", async t => {
  t.same(matches('  sel:\n    Image|endswith: /nmap\n  condition: sel', [proc('nmap', '/usr/bin/nmap'), { ...proc('nmap', '/usr/bin/nmap'), activity_id: 2 }]), [true, false], 'process_creation is a Launch: a Terminate does not match')
  t.same(matches('  sel:\n    process.file.path|endswith: /nmap\n  condition: sel', [{ ...proc('nmap', '/usr/bin/nmap'), activity_id: 2 }], '{product: picket, category: process_creation}'), [true], "Picket's own rules name their activity themselves")
  t.same(matches('  sel:\n    User: alice\n  condition: sel', [proc('x', '/bin/sh', { actor: { user: { name: 'alice' } } }), proc('x', '/bin/sh', { process: { pid: 1, cmd_line: 'x', user: { name: 'alice' } } }), proc('x', '/bin/sh', { actor: { user: { name: 'bob' } }, process: { pid: 1, user: { name: 'alice' } } })]), [true, true, false], 'User: actor.user.name, else process.user.name')
  const fe = (path: string, act: number): Record<string, unknown> => ({ class_uid: 1001, activity_id: act, time: Date.now(), device: { uid: 'h' }, file: { path }, actor: { process: { file: { path: '/usr/bin/tee' } } } })
  t.same(matches('  sel:\n    TargetFilename|startswith: /etc/cron.d/\n    Image|endswith: /tee\n  condition: sel', [fe('/etc/cron.d/x', 1), fe('/etc/cron.d/x', 3), fe('/etc/cron.d/x', 2)], '{product: linux, category: file_event}'), [true, true, false], 'file_event: created or rewritten, not read')
  t.throws(() => compile('  sel:\n    OriginalFileName: x\n  condition: sel'), /x\.yml:6: detection\.sel: Sigma field 'OriginalFileName' has no OCSF mapping for category process_creation/)
  t.throws(() => compile("  sel:\n    Initiated: 'maybe'\n  condition: sel", '{product: linux, category: network_connection}'), /Initiated takes one of true, false/)
})

t.test('a corpus rule that cannot compile is left out with file, line and reason; the others load', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'picket-corpus-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'corpus'))
  const rule = (title: string, field: string): string => `title: ${title}\nlogsource: {product: linux, category: process_creation}\ndetection:\n  sel:\n    ${field}: x\n  condition: sel\n`
  writeFileSync(join(dir, 'own.yml'), rule('own', 'CommandLine|contains'))
  writeFileSync(join(dir, 'corpus', 'good.yml'), rule('good', 'Image|endswith'))
  writeFileSync(join(dir, 'corpus', 'unmapped.yml'), rule('unmapped', 'OriginalFileName'))
  writeFileSync(join(dir, 'corpus', 'broken.yml'), 'title: [unclosed\n')
  const col = loadRuleDir(dir)
  t.same(col.docs.map(d => d.title).sort(), ['good', 'own'])
  t.same(col.skipped?.map(p => [p.file.slice(dir.length + 1), p.line]), [['corpus/broken.yml', 2], ['corpus/unmapped.yml', 5]].sort())
  t.match(col.skipped?.[1]?.reason, /Sigma field 'OriginalFileName' has no OCSF mapping/)
  t.equal(compileRuleSet(col).detections.length, 2)
  writeFileSync(join(dir, 'own.yml'), rule('own', 'OriginalFileName'))
  t.throws(() => compileRuleSet(loadRuleDir(dir)), /own\.yml:5: detection\.sel: Sigma field 'OriginalFileName'/, "the deployment's own rules stay strict")
})

t.test("with the shipped corpus, each class's records fill only their own rules' fields", async t => {
  const rs = compileRuleSet(loadRuleDir(rootPath('backend', 'rules')))
  const slotsOf = (uid: number): string[] => (rs.routing.classes.find(c => c.uid === uid)?.slots ?? []).map(s => rs.paths[s])
  t.ok(slotsOf(1007).includes('process.cmd_line') && slotsOf(1007).includes('process.parent_process.file.path'), 'process_activity: the process fields')
  t.notOk(slotsOf(4001).includes('process.cmd_line'), 'network_activity does not read process.cmd_line')
  t.ok(slotsOf(1001).includes('file.path') && !slotsOf(1001).includes('process.cmd_line'), 'file_activity: file.path, not the launch fields')
})
