import { createHash, randomBytes } from 'node:crypto'
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { PicketError } from '../shared/errors.js'

// The HTTP server's access tokens: a file of `TOKEN NAME` lines, one per
// analyst, `#` comments and blank lines allowed. The name is who a triage
// change is recorded under, so a token is a person's credential, never a
// shared password. Tokens come only from this file (or the systemd
// credential of the same format): a command line shows in `ps` to every user
// of the machine.

/** The systemd credential (LoadCredential=) the CLI looks for in $CREDENTIALS_DIRECTORY. */
export const TOKENS_CREDENTIAL = 'picket-http-tokens'
export const TOKEN_MIN_LENGTH = 32

// RFC 6750's b64token: what `Authorization: Bearer` can carry as is (hex and
// base64url fit), and bounded like the console's access_token parameter
const TOKEN_RE = /^[A-Za-z0-9._~+/-]+=*$/
const TOKEN_MAX_LENGTH = 4096
// an analyst name as the triage history shows it: 1 to 100 printable characters
const NAME_RE = /^[^\u0000-\u001f\u007f]{1,100}$/
const MAKE_ONE = 'make one with: openssl rand -hex 32'

export interface TokenEntry { token: string, name: string }

function digest (token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

/**
 * Token → analyst name. Tokens are kept and looked up by their SHA-256: a
 * lookup's timing then depends on a hash the caller cannot steer toward a
 * real token, not on how many of its characters were right.
 */
export class HttpTokens {
  readonly #names: ReadonlyMap<string, string>

  constructor (entries: readonly TokenEntry[]) {
    this.#names = new Map(entries.map(e => [digest(e.token), e.name]))
  }

  get size (): number { return this.#names.size }

  /** The analyst a presented token belongs to, or undefined for an unknown token. */
  analyst (token: string): string | undefined {
    return this.#names.get(digest(token))
  }
}

function tokenProblem (token: string): string | undefined {
  if (token.length < TOKEN_MIN_LENGTH) return `the token is ${token.length} characters; a token is at least ${TOKEN_MIN_LENGTH} random characters (${MAKE_ONE})`
  if (token.length > TOKEN_MAX_LENGTH) return `the token is longer than ${TOKEN_MAX_LENGTH} characters`
  if (!TOKEN_RE.test(token)) return `the token may hold only letters, digits and - . _ ~ + / (and = at its end) (${MAKE_ONE})`
  if (new Set(token).size < 8) return `the token repeats a few characters; a token is random (${MAKE_ONE})`
  return undefined
}

/** The entries of a tokens file's text; every bad line is named (never its token), and the file refused. */
export function parseTokens (text: string, file: string): TokenEntry[] {
  const entries: TokenEntry[] = []
  const errors: string[] = []
  const seen = new Set<string>()
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.replace(/\r$/, '').trim()
    if (line === '' || line.startsWith('#')) continue
    const m = /^(\S+)\s+(.+)$/.exec(line)
    const where = `${file} line ${i + 1}`
    if (m === null) { errors.push(`${where}: expected TOKEN NAME (the analyst name after the token, separated by a space)`); continue }
    const [, token, name] = m
    const problem = tokenProblem(token)
    if (problem !== undefined) { errors.push(`${where}: ${problem}`); continue }
    if (!NAME_RE.test(name)) { errors.push(`${where}: the analyst name must be 1 to 100 printable characters`); continue }
    if (seen.has(token)) { errors.push(`${where}: the same token appears on an earlier line; give each analyst a token of their own`); continue }
    seen.add(token)
    entries.push({ token, name })
  }
  if (errors.length > 0) throw new PicketError('PICKET_ERR_HTTP_TOKENS', `the tokens file is not valid:\n${errors.join('\n')}`, { file, errors })
  return entries
}

/**
 * Read a tokens file: it must be a regular file that neither group nor others
 * may read or write. One exception: systemd writes a credential 0400 and
 * grants the service's user read access with an ACL entry, which stat shows
 * as a group read bit (the ACL mask); a file directly in the service's own
 * $CREDENTIALS_DIRECTORY may carry that bit.
 */
export function readTokensFile (file: string, credentialsDirectory?: string): TokenEntry[] {
  let text: string
  try {
    const st = statSync(file)
    if (!st.isFile()) throw new PicketError('PICKET_ERR_HTTP_TOKENS', `the tokens file ${file} is not a regular file; give --http-tokens-file a file of TOKEN NAME lines`)
    const credential = credentialsDirectory !== undefined && credentialsDirectory !== '' && dirname(resolve(file)) === resolve(credentialsDirectory)
    if ((st.mode & (credential ? 0o037 : 0o077)) !== 0) {
      throw new PicketError('PICKET_ERR_HTTP_TOKENS', `the tokens file ${file} is open to group or others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}), ` +
        `so other users of this machine could read the tokens; run: chmod 600 ${file}`)
    }
    text = readFileSync(file, 'utf8')
  } catch (err) {
    if (err instanceof PicketError) throw err
    throw new PicketError('PICKET_ERR_HTTP_TOKENS', `the tokens file ${file} cannot be read: ${(err as Error).message}; check --http-tokens-file (a file of TOKEN NAME lines, mode 0600, readable by the backend's user)`)
  }
  return parseTokens(text, file)
}

export function loadHttpTokens (file: string, credentialsDirectory?: string): HttpTokens {
  return new HttpTokens(readTokensFile(file, credentialsDirectory))
}

/** A new token for `name`, written to a new tokens file (mode 0600; refuses to overwrite one). */
export function createTokensFile (file: string, name: string): TokenEntry {
  const entry = { token: randomBytes(32).toString('base64url'), name }
  const header = '# Picket HTTP access tokens: one "TOKEN NAME" line per analyst (mode 0600).\n' +
    '# A triage change is recorded under the name of the token that made it.\n'
  writeFileSync(file, `${header}${entry.token} ${entry.name}\n`, { mode: 0o600, flag: 'wx' })
  return entry
}
