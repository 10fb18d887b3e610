#!/usr/bin/env node
// Runs the built CLI (npm run build). From a source checkout without a build,
// set PICKET_TSX=1 to run the TypeScript directly through tsx.
// Picket runs on Node.js 24 (scripts/setup.sh installs it in .runtime/node)
// and still on Node 20; older ones fail on their own in obscure ways.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

if (Number(process.versions.node.split('.')[0]) < 20) {
  console.error(`picket: Node.js ${process.version} is too old; Picket runs on Node.js 24, which sudo npm start installs: .runtime/node/bin/node bin/picket.js ...`)
  process.exit(1)
}

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
