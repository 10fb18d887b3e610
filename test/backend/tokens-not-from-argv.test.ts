import t from 'tap'
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { spawnPicket } from '../helpers/cli.js'
import { httpRequest } from '../helpers/http.js'
import { newToken, writeTokensFile } from '../helpers/tokens.js'
import { tempDir } from './helpers/records.js'

// Defect 13 of issue 11: `picket backend --http-token T` put the token in
// argv, which `ps` shows every user of the machine. Tokens now come from a
// file only, and a file other users could read is refused.

const ENV = { PICKET_TSX: '1', PICKET_LOG_LEVEL: 'warn', PICKET_HTTP_TOKEN: '', PICKET_HTTP_TOKENS_FILE: '', CREDENTIALS_DIRECTORY: '' }

/** Run `picket backend ARGS`; one that starts instead of refusing is stopped and reported as running. */
async function backend (args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | string, err: string }> {
  const p = spawnPicket(['backend', '--listen', '127.0.0.1:0', '--http', '127.0.0.1:0', '--db', ':memory:', '--workers', '1', ...args], { env: { ...ENV, ...env } })
  const started = p.waitFor(/collector on \S+,/, { timeoutMs: 60_000 }).then(() => 'running' as const, () => undefined)
  const code = await Promise.race([p.exited, started.then(s => s ?? p.exited)])
  await p.stop('SIGKILL')
  return { code, err: p.stderr() }
}

t.test('--http-token is refused, naming --http-tokens-file; a tokens file open to the group is refused, naming chmod 600 (defect 13)', async t => {
  const tmp = tempDir('picket-tokens-')
  t.teardown(tmp.cleanup)
  const secret = newToken()

  const argv = await backend(['--http-token', secret])
  t.equal(argv.code, 2, '--http-token: the backend does not start')
  t.match(argv.err, /--http-token is refused: a token on the command line shows in ps/)
  t.match(argv.err, /--http-tokens-file FILE/, 'says where tokens go instead')
  t.equal((await backend([`--http-token=${secret}`])).code, 2, 'in the --flag=value form too')

  const env = await backend([], { PICKET_HTTP_TOKEN: secret })
  t.equal(env.code, 2, 'PICKET_HTTP_TOKEN is refused, not silently ignored')
  t.match(env.err, /PICKET_HTTP_TOKEN is no longer read.*--http-tokens-file/s)

  const open = writeTokensFile(tmp.dir, { frank: secret }, 0o640)
  const grp = await backend(['--http-tokens-file', open])
  t.equal(grp.code, 1, 'a group-readable tokens file: the backend does not start')
  t.match(grp.err, /open to group or others \(mode 0640\)/)
  t.match(grp.err, `chmod 600 ${open}`, 'names the fix')
  t.match(grp.err, 'PICKET_ERR_HTTP_TOKENS')

  writeFileSync(open, `# ok\n${secret} frank\nshort-token grace\n${secret} heidi\n`)
  chmodSync(open, 0o600)
  const bad = await backend(['--http-tokens-file', open])
  t.equal(bad.code, 1)
  t.match(bad.err, /line 3: the token is 11 characters; a token is at least 32 random characters \(make one with: openssl rand -hex 32\)/)
  t.match(bad.err, /line 4: the same token appears on an earlier line/)
  t.notMatch(bad.err, secret, 'no token is ever printed')
  t.notMatch(bad.err, 'short-token')
})

t.test('under systemd the tokens come from $CREDENTIALS_DIRECTORY/picket-http-tokens, as systemd leaves it', async t => {
  const tmp = tempDir('picket-cred-')
  t.teardown(tmp.cleanup)
  const creds = join(tmp.dir, 'credentials')
  mkdirSync(creds, { mode: 0o700 })
  const token = newToken()
  // LoadCredential= writes 0400 and grants the service's user read access with
  // an ACL entry: stat shows the ACL's mask as group r--, so the mode reads 0440
  const cred = writeTokensFile(creds, { ivan: token }, 0o440, 'picket-http-tokens')
  const p = spawnPicket(['backend', '--listen', '127.0.0.1:0', '--http', '127.0.0.1:0', '--db', ':memory:', '--workers', '1'], { env: { ...ENV, CREDENTIALS_DIRECTORY: creds } })
  t.teardown(async () => { await p.stop('SIGKILL') })
  const url = (await p.waitFor(/console and \/metrics on (http:\/\/\S+),/, { timeoutMs: 60_000 }))[1]
  t.equal((await httpRequest(url, '/metrics')).status, 401, 'tokens are configured: no anonymous reads')
  t.equal((await httpRequest(url, '/metrics', { headers: { authorization: `Bearer ${token}` } })).status, 200, 'the credential\'s token works')
  await p.stop('SIGINT')

  const elsewhere = await backend(['--http-tokens-file', cred])
  t.equal(elsewhere.code, 1, 'the same mode outside the service\'s credentials folder is refused')
  t.match(elsewhere.err, /mode 0440.*chmod 600/s)
})
