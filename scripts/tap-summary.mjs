#!/usr/bin/env node
// Count the top-level subtests of every test file tap ran (from the raw TAP
// it saves under .tap/test-results) and print the final "N passed, N failed".
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'

const dir = process.argv[2] ?? '.tap/test-results'
const tapExit = Number(process.argv[3] ?? 0)
let passed = 0; let failed = 0; let skipped = 0; let todo = 0
const failures = []

function walk (d) {
  let entries = []
  try { entries = readdirSync(d) } catch { return }
  for (const e of entries) {
    const p = join(d, e)
    if (statSync(p).isDirectory()) walk(p)
    else if (p.endsWith('.tap')) count(p)
  }
}

function count (file) {
  const lines = readFileSync(file, 'utf8').split('\n')
  let points = 0
  let bailed = false
  for (const line of lines) {
    const m = /^(not ok|ok) \d+(?: - (.*))?$/.exec(line) ?? /^(not ok|ok) \d+(?: - (.*?))? # (.*)$/.exec(line)
    if (line.startsWith('Bail out!')) bailed = true
    if (m === null) continue
    points++
    const directive = /# (SKIP|TODO)/i.exec(line)?.[1]?.toUpperCase()
    if (directive === 'SKIP') skipped++
    else if (directive === 'TODO') todo++
    else if (m[1] === 'ok') passed++
    else { failed++; failures.push(`${relative(dir, file)}: ${m[2] ?? line}`) }
  }
  if (points === 0 || bailed) { failed++; failures.push(`${relative(dir, file)}: no results (crashed or bailed out)`) }
}

walk(dir)
if (tapExit !== 0 && failed === 0) { failed++; failures.push(`tap exited with status ${tapExit} (coverage below threshold or a runner error; see above)`) }
if (failures.length > 0) {
  console.log('\nfailed:')
  for (const f of failures) console.log('  - ' + f)
}
if (skipped > 0 || todo > 0) console.log(`${skipped} skipped, ${todo} todo`)
console.log(`${passed} passed, ${failed} failed`)
process.exitCode = failed > 0 ? 1 : 0
