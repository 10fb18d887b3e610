#!/usr/bin/env node
// Runs the built CLI (npm run build). From a source checkout without a build,
// set PICKET_TSX=1 to run the TypeScript directly through tsx.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const built = new URL('../dist/cli/main.js', import.meta.url)
let mod
if (existsSync(fileURLToPath(built)) && process.env.PICKET_TSX !== '1') {
  mod = await import(built.href)
} else {
  const { register } = await import('tsx/esm/api')
  register()
  mod = await import(new URL('../cli/main.ts', import.meta.url).href)
}
const code = await mod.main(process.argv.slice(2))
if (typeof code === 'number') process.exitCode = code
