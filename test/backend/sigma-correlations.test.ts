import t from 'tap'
import { CLASS } from '../../shared/ocsf/constants.js'
import { EngineRig, pack, rulesDir } from './helpers/records.js'

// Sigma temporal / temporal_ordered correlations beside value_count and
// event_count: every referenced rule (by id or by name) matched in the same
// group within the timespan, in order for temporal_ordered. The rules they
// reference raise nothing of their own. And Sigma filters (meta-rules) that
// exclude from the SigmaHQ rules they name.

const RULES = `title: download to /tmp
id: 0b4c3a2e-1111-4222-8333-944455556666
logsource: {product: linux, category: process_creation}
detection:
  sel: {Image|endswith: /curl, CommandLine|contains: /tmp/}
  condition: sel
level: low
---
title: chmod +x in /tmp
name: test_chmod_tmp
logsource: {product: linux, category: process_creation}
detection:
  sel: {Image|endswith: /chmod, CommandLine|contains|all: [+x, /tmp/]}
  condition: sel
level: low
---
title: download then make executable
name: test_dl_exec
correlation:
  type: TYPE
  rules: [0b4c3a2e-1111-4222-8333-944455556666, test_chmod_tmp]
  group-by: [device.uid, process.parent_process.pid]
  timespan: 1m
level: high
tags: [attack.execution, attack.t1105]
`

const T0 = Date.now()

function launch (host: string, dt: number, exe: string, cmd: string, ppid: number): Record<string, unknown> {
  return {
    class_uid: CLASS.PROCESS_ACTIVITY.uid, activity_id: 1, time: T0 + dt, severity_id: 1,
    device: { type_id: 1, uid: host, hostname: host },
    process: { pid: 1000 + dt, file: { path: exe }, cmd_line: cmd, parent_process: { pid: ppid } },
  }
}

const dl = (h: string, dt: number, ppid = 50): Record<string, unknown> => launch(h, dt, '/usr/bin/curl', 'curl -o /tmp/x http://a/x', ppid)
const cx = (h: string, dt: number, ppid = 50): Record<string, unknown> => launch(h, dt, '/usr/bin/chmod', 'chmod +x /tmp/x', ppid)

function fired (type: string, host: string, recs: Array<Record<string, unknown>>): string[] {
  const dir = rulesDir({ 'temporal.yml': RULES.replace('TYPE', type) }, false)
  try {
    const rig = new EngineRig(dir.dir)
    rig.sendBatch(host, pack(recs), T0)
    rig.engine.flush(T0 + 1000)
    rig.tick(T0 + 1000)
    return [...new Set(rig.findings.filter(f => f.activity === 'create').map(f => f.summary.rule))]
  } finally { dir.cleanup() }
}

t.test('temporal: both rules within the timespan, in either order, in the same group', async t => {
  t.same(fired('temporal', 'h', [cx('h', 0), dl('h', 10)]), ['test_dl_exec'], 'either order')
  t.same(fired('temporal', 'h', [dl('h', 0)]), [], 'one rule alone raises nothing (it is only referenced)')
  t.same(fired('temporal', 'h', [dl('h', -120_000), cx('h', 0)]), [], 'outside the timespan')
  t.same(fired('temporal', 'h', [dl('h', 0, 50), cx('h', 10, 51)]), [], 'different groups (parent pids)')
})

t.test('temporal_ordered: in the order listed', async t => {
  t.same(fired('temporal_ordered', 'h', [dl('h', 0), cx('h', 10)]), ['test_dl_exec'])
  t.same(fired('temporal_ordered', 'h', [cx('h', 0), dl('h', 10)]), [], 'the wrong order')
  t.same(fired('temporal_ordered', 'h', [cx('h', 0), dl('h', 10), cx('h', 20)]), ['test_dl_exec'], 'the right order after a stray step')
})

t.test('a temporal correlation takes no condition', async t => {
  const dir = rulesDir({ 'temporal.yml': RULES.replace('TYPE', 'temporal').replace('  timespan: 1m\n', '  timespan: 1m\n  condition: {gte: 2}\n') }, false)
  t.teardown(dir.cleanup)
  t.throws(() => new EngineRig(dir.dir), /temporal\.yml:\d+: a temporal correlation fires when all its rules matched within the timespan; it takes no condition/)
})

t.test('a Sigma filter (meta-rule) excludes from a SigmaHQ rule by its id, in Sigma field names', async t => {
  const filter = `title: our scanner host runs nmap
logsource: {product: linux, category: process_creation}
filter:
  rules: [3e102cd9-a70d-4a7a-9508-403963092f31]
  scanner:
    ParentImage: /opt/scanner/bin/run
  condition: not scanner
`
  const dir = rulesDir({ 'filter.yml': filter })
  t.teardown(dir.cleanup)
  const rig = new EngineRig(dir.dir)
  const nmap = (host: string, parent: string): Record<string, unknown> => ({ ...launch(host, 0, '/usr/bin/nmap', 'nmap 10.0.0.1', 60), process: { pid: 7, file: { path: '/usr/bin/nmap' }, cmd_line: 'nmap 10.0.0.1', parent_process: { pid: 60, file: { path: parent } } } })
  rig.sendBatch('scanner', pack([nmap('scanner', '/opt/scanner/bin/run')]), T0)
  rig.sendBatch('laptop', pack([nmap('laptop', '/usr/bin/bash')]), T0)
  rig.engine.flush(T0 + 1000)
  rig.tick(T0 + 1000)
  const hosts = rig.of('3e102cd9-a70d-4a7a-9508-403963092f31').map(f => f.summary.hostId)
  t.same([...new Set(hosts)], ['laptop'], 'the filtered parent raises nothing; the rest still does')
})
