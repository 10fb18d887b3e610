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

// Process, file and DNS records in the OCSF shape the agent writes (the
// paths of the Sigma field map), for the shipped rules to raise findings of
// those classes: nmap run (SigmaHQ 3e102cd9), a cron file written (6c4e2f43),
// and an iodine-like stream of encoded DNS names (picket_dns_tunnelling).

export const NMAP_RULE = '3e102cd9-a70d-4a7a-9508-403963092f31'
export const CRON_RULE = '6c4e2f43-d94d-4ead-b64d-97e53fa2bd05'
export const DNS_RULE = 'picket_dns_tunnelling'

function base (host: string, cls: number, activity: number, t: number): Record<string, unknown> {
  return {
    class_uid: cls,
    activity_id: activity,
    time: t,
    severity_id: 1,
    device: { type_id: 1, uid: host, hostname: host },
    metadata: { version: '1.8.0', product: { name: 'Picket', vendor_name: 'Picket', version: 'test' } },
  }
}

export interface ProcessSpec { exe: string, cmd: string, user?: string, pid?: number, parent?: { exe: string, cmd: string, pid?: number }, grandparentPid?: number }

/** A process Launch (process_activity 1007). */
export function launchRecord (host: string, p: ProcessSpec, t = Date.now()): Record<string, unknown> {
  const parent = p.parent ?? { exe: '/usr/bin/bash', cmd: 'bash' }
  return {
    ...base(host, 1007, 1, t),
    process: {
      pid: p.pid ?? 4242,
      file: { path: p.exe },
      cmd_line: p.cmd,
      working_directory: '/root',
      user: { name: p.user ?? 'root' },
      parent_process: { pid: parent.pid ?? 4200, file: { path: parent.exe }, cmd_line: parent.cmd, ...(p.grandparentPid !== undefined ? { parent_process: { pid: p.grandparentPid } } : {}) },
    },
    actor: { user: { name: p.user ?? 'root' } },
  }
}

/** A file Create (file_activity 1001) by `exe`. */
export function fileRecord (host: string, path: string, exe: string, cmd: string, t = Date.now()): Record<string, unknown> {
  return {
    ...base(host, 1001, 1, t),
    file: { path, name: path.slice(path.lastIndexOf('/') + 1), type_id: 1 },
    actor: { process: { pid: 5151, file: { path: exe }, cmd_line: cmd, parent_process: { pid: 5100 } }, user: { name: 'root' } },
  }
}

/** `n` queries of distinct base32-looking names under `domain` by `comm` (dns_activity 4003 Query). */
export function tunnelQueries (host: string, domain: string, comm: string, n = 120, t = Date.now()): Array<Record<string, unknown>> {
  const b32 = 'abcdefghijklmnopqrstuvwxyz234567'
  return Array.from({ length: n }, (_, i) => {
    let label = ''
    for (let k = 0; k < 40; k++) label += b32[(i * 7 + k * 13 + (i * k) % 5) % 32]
    return {
      ...base(host, 4003, 1, t + i * 50),
      query: { hostname: `${label}${i % 10}.t.${domain}`, type: 'A', class: 'IN' },
      actor: { process: { pid: 777, name: comm, file: { path: `/usr/sbin/${comm}` } }, user: { name: 'root' } },
    }
  })
}
