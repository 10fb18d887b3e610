import t from 'tap'
import { checkFile, checkHouse, floorOf, importsOf } from '../../scripts/house/check.js'
import { rootPath } from '../../shared/paths.js'

// The house rules (scripts/house/rules.ts) hold for the whole repository, and
// each rule really catches what it is about.

t.test('the repository keeps the house rules: floors, Node-free modules, file size, no test hooks', async t => {
  const v = checkHouse(rootPath())
  t.same(v.map(x => `${x.file}:${x.line}: [${x.rule}] ${x.message}`), [], 'no violations')
})

t.test('import forms are all read: static, type-only, re-export, dynamic', async t => {
  const text = [
    "import { a } from '../agent/x.js'",
    "import type { B } from './b.js'",
    "export { c } from '../../backend/c.js'",
    "const m = await import('../cli/main.js')",
    "import './side-effect.js'",
  ].join('\n')
  t.same(importsOf(text).map(i => [i.spec, i.line]), [['../agent/x.js', 1], ['./b.js', 2], ['../../backend/c.js', 3], ['../cli/main.js', 4], ['./side-effect.js', 5]])
})

t.test('a floor that points up is a violation, one that points down is not', async t => {
  t.equal(floorOf('bpf/index.ts')?.dir, 'bpf')
  t.same(checkFile('bpf/index.ts', "import { X } from '../agent/normalize/net.js'\n").map(v => v.rule), ['floors'], 'bpf → agent')
  t.same(checkFile('shared/codec.ts', "import { X } from '../backend/store/index.js'\n").map(v => v.rule), ['floors'], 'shared → backend')
  t.same(checkFile('agent/index.ts', "import { X } from '../backend/server.js'\n").map(v => v.rule), ['floors'], 'agent → backend')
  t.same(checkFile('backend/server.ts', "const a = await import('../agent/index.js')\n").map(v => v.rule), ['floors'], 'backend → agent, dynamically')
  t.same(checkFile('agent/index.ts', "import { X } from '../bpf/index.js'\nimport { Y } from '../shared/errors.js'\n"), [], 'agent → bpf, shared')
  t.same(checkFile('cli/start.ts', "import { X } from '../agent/index.js'\nimport { Y } from '../backend/server.js'\n"), [], 'the CLI wires both')
})

t.test('a Node-free module that imports Node is a violation', async t => {
  t.same(checkFile('shared/enums.ts', "import { readFileSync } from 'node:fs'\n").map(v => v.rule), ['node-free'])
  t.same(checkFile('backend/console/page/src/x.ts', "import Fastify from 'fastify'\n").map(v => v.rule), ['node-free'])
  t.same(checkFile('backend/console/page/src/x.ts', "import { TRIAGE } from '../../types.js'\n"), [])
})

t.test('a long production file and a test hook are violations; tests may do both', async t => {
  const long = 'x\n'.repeat(401)
  t.same(checkFile('backend/store/findings.ts', long).map(v => v.rule), ['size'])
  t.same(checkFile('bpf/addon/picket_bpf.c', long), [], 'the native addon may be long')
  t.same(checkFile('bpf/net.bpf.c', long), [], 'a BPF program may be long')
  t.same(checkFile('agent/options.ts', 'const x = process.env.PICKET_TEST_CRASH\n').map(v => v.rule), ['forbidden'])
  t.same(checkFile('test/agent/big.test.ts', long + 'process.env.PICKET_TEST_X\n'), [])
})
