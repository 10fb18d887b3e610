import { randomBytes } from 'node:crypto'
import { chmodSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

// Access tokens files as an operator writes them: `TOKEN NAME` lines, mode 0600.

export function newToken (): string {
  return randomBytes(24).toString('hex')
}

/** Write `names` (analyst → token) to DIR/NAME with `mode`; returns the file's path. */
export function writeTokensFile (dir: string, names: Record<string, string>, mode = 0o600, name = 'http-tokens'): string {
  const file = join(dir, name)
  const lines = ['# test tokens', ...Object.entries(names).map(([name, token]) => `${token} ${name}`)]
  writeFileSync(file, lines.join('\n') + '\n', { mode })
  chmodSync(file, mode) // the umask may have taken bits away
  return file
}
