import type { StreamFinding, StreamHosts } from '../../types.js'
import { byId, replace } from './dom.js'

// What main.ts asks of each view (findings list, finding detail, hosts).

export interface View {
  /** builds into `main`; resolves when the first data is shown */
  mount: (main: HTMLElement) => Promise<void>
  finding?: (ev: StreamFinding) => void
  hosts?: (ev: StreamHosts) => void
  /** the stream said to fetch everything again */
  reload?: () => void
  /** refresh relative times and stale flags */
  tick?: () => void
  unmount?: () => void
}

/** Say something to screen readers (the polite live region). */
export function announce (text: string): void {
  const el = byId('announcer')
  replace(el, text)
}

let bannerTimer: number | undefined

/** Show a message (errors from the API) in the banner under the header. */
export function banner (text: string, kind: 'error' | 'info' = 'error'): void {
  const el = byId('banner')
  el.className = `banner ${kind}`
  el.hidden = false
  replace(el, text)
  if (bannerTimer !== undefined) window.clearTimeout(bannerTimer)
  if (kind === 'info') bannerTimer = window.setTimeout(() => { el.hidden = true }, 6000)
}

export function clearBanner (): void {
  byId('banner').hidden = true
}
