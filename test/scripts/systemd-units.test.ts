import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { rootPath } from '../../shared/paths.js'
import { BACKEND_NODE_ARGS } from '../../scripts/bench/lib/backend.js'
import { requireReal } from '../helpers/env.js'

// The systemd units stay hardened: systemd-analyze's exposure score (0 safe
// .. 10 unsafe) of each unit file, offline, stays within its bound, and they
// run Picket on the Node 24 that scripts/setup.sh installs. The README's
// "Running as services" says what the remaining points are for.

const BOUNDS = { 'picket-backend.service': 2.5, 'picket-agent.service': 1.7 }

function unit (name: string): string {
  return readFileSync(rootPath('scripts', 'systemd', name), 'utf8')
}

for (const [name, bound] of Object.entries(BOUNDS)) {
  t.test(`${name}: systemd-analyze security scores it ${bound} or lower`, async t => {
    // setup.sh installs Debian's systemd package, so CI=true fails rather than skips without it
    if (!requireReal(t, { commands: ['systemd-analyze'] })) return
    const r = spawnSync('systemd-analyze', ['security', '--offline=yes', '--no-pager', rootPath('scripts', 'systemd', name)], { encoding: 'utf8' })
    const m = /Overall exposure level for \S+: (\d+\.\d+)/.exec(r.stdout)
    t.ok(m !== null, `systemd-analyze reports a score (exit ${r.status}): ${(r.stderr + r.stdout).slice(-500)}`)
    const score = Number(m?.[1])
    t.ok(score <= bound, `exposure ${score} <= ${bound}`)
  })
}

t.test('the units run Picket on the Node 24 that setup.sh installs in the checkout', async t => {
  const runtime = readFileSync(rootPath('scripts', 'runtime.sh'), 'utf8')
  t.match(runtime, /^NODE24_LINK=\$PICKET_ROOT\/\.runtime\/node$/m, 'scripts/runtime.sh links .runtime/node to Node 24')
  for (const name of Object.keys(BOUNDS)) {
    const exec = /^ExecStart=(\S+) (?:--[\w-]+=\S+ )*(\S+)/m.exec(unit(name))
    t.equal(exec?.[1], '/opt/picket/.runtime/node/bin/node', `${name} runs the checkout's Node 24`)
    t.equal(exec?.[2], '/opt/picket/bin/picket.js', `${name} runs the checkout's picket`)
  }
  // Node 24's V8 grows a busy main thread's young generation to 128 MiB and
  // keeps it; the backend's main thread takes every flood's garbage first.
  // The flags are BACKEND_NODE_ARGS, the ones every test backend runs with,
  // so what the tests measure is what the units and `npm start` run.
  const flags = BACKEND_NODE_ARGS.join(' ')
  for (const name of ['picket-backend.service', 'picket-detect.service']) {
    t.ok(unit(name).includes(`/node/bin/node ${flags} /opt/picket/bin/picket.js`), `${name} runs node ${flags}`)
  }
  t.ok(readFileSync(rootPath('scripts', 'start.sh'), 'utf8').includes(`exec node ${flags} bin/picket.js start`), `scripts/start.sh (npm start) runs node ${flags}`)
})

t.test('the console token reaches the backend as a credential file, never on its command line', async t => {
  const u = unit('picket-backend.service')
  t.match(u, /^LoadCredential=picket-http-tokens:\/etc\/picket\/http-tokens$/m)
  t.match(u, /^ExecStart=.* --http-tokens-file \$\{CREDENTIALS_DIRECTORY\}\/picket-http-tokens(\s|$)/m)
  t.notMatch(u, /^ExecStart=.*--http-token[= ]/m, 'no token in argv')
  t.notMatch(u, /^Environment=.*PICKET_HTTP_TOKEN/m, 'nor in the environment')
})
