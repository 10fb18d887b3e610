import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type Browser, type ConsoleMessage, type Dialog, type Page } from 'playwright-core'
import { startBackend, type BackendHandle, type BackendOptions } from '../../../backend/server.js'
import { rootPath } from '../../../shared/paths.js'
import { newToken, writeTokensFile } from '../../helpers/tokens.js'

// Shared by the console tests: a real backend on free ports with a temp
// alert store, the built page, Debian's chromium through playwright-core,
// and a watch on everything a page might do that it should not.

export const CHROMIUM = process.env.PICKET_CHROMIUM ?? '/usr/bin/chromium'
export const ARTIFACTS = rootPath('test-artifacts')

let built = false

/** Build the page once per test process (esbuild + tsc on the page: about a second). */
export function buildPage (): void {
  if (built) return
  const r = spawnSync(process.execPath, [rootPath('backend', 'console', 'page', 'build.mjs')], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`the console page does not build:\n${r.stdout}\n${r.stderr}`)
  built = true
}

export interface TestBackend {
  b: BackendHandle
  url: string
  dir: string
  /** alice's access token, from the backend's tokens file */
  token: string
  close: () => Promise<void>
}

/** A backend whose tokens file names alice; reads without a token are open unless opts say otherwise (as under picket start). */
export async function startTestBackend (opts: BackendOptions = {}): Promise<TestBackend> {
  const dir = mkdtempSync(join(tmpdir(), 'picket-console-'))
  const token = newToken()
  const httpTokensFile = writeTokensFile(dir, { alice: token })
  const b = await startBackend({ listen: '127.0.0.1:0', http: '127.0.0.1:0', db: join(dir, 'picket.db'), workers: 1, httpTokensFile, httpAnonymousReads: true, ...opts })
  if (b.http === undefined) throw new Error('backend has no HTTP server')
  return {
    b,
    url: b.http.url,
    dir,
    token,
    close: async () => {
      await b.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Why chromium cannot run here, or undefined when it can. */
export function chromiumMissing (): string | undefined {
  if (!existsSync(CHROMIUM)) return `needs ${CHROMIUM} (scripts/setup.sh installs Debian's chromium)`
  return undefined
}

export async function launchChromium (): Promise<Browser> {
  return await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
}

export interface Watch {
  dialogs: string[]
  errors: string[]
  requests: string[]
}

/** Record dialogs (dismissed), console errors, page errors and every request the page makes. */
export function watchPage (page: Page): Watch {
  const w: Watch = { dialogs: [], errors: [], requests: [] }
  page.on('dialog', (d: Dialog) => { w.dialogs.push(`${d.type()}: ${d.message()}`); void d.dismiss() })
  page.on('console', (m: ConsoleMessage) => { if (m.type() === 'error') w.errors.push(m.text()) })
  page.on('pageerror', (e: Error) => { w.errors.push(`pageerror: ${e.message}`) })
  page.on('request', (r) => { w.requests.push(r.url()) })
  return w
}

export function artifactPath (name: string): string {
  mkdirSync(ARTIFACTS, { recursive: true })
  return join(ARTIFACTS, name)
}

/** Poll `f` until it returns something other than undefined. */
export async function until<T> (f: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await f()
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}
