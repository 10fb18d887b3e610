import t from 'tap'
import { readFileSync } from 'node:fs'
import { ERRORS } from '../../shared/errors.js'
import { rootPath } from '../../shared/paths.js'

// Like fastify's error registry: every code is documented, and the docs list
// no code that does not exist.

t.test('every PICKET_ERR_ code is documented in docs/errors.md', async t => {
  const doc = readFileSync(rootPath('docs', 'errors.md'), 'utf8')
  const documented = new Set([...doc.matchAll(/^## (PICKET_ERR_[A-Z_]+)$/gm)].map(m => m[1]))
  for (const code of Object.keys(ERRORS)) t.ok(documented.has(code), `${code} is documented`)
  for (const code of documented) t.ok(code in ERRORS, `${code} in docs exists in shared/errors.ts`)
})
