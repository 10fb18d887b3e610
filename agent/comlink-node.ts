import type { Endpoint } from 'comlink'
import type { MessagePort } from 'node:worker_threads'

// comlink speaks the DOM's addEventListener; worker_threads ports speak
// EventEmitter. This is comlink's own node-adapter (dist/esm/node-adapter.mjs),
// typed, so the control plane needs no untyped import.

type Listener = ((ev: { data: unknown }) => void) | { handleEvent: (ev: { data: unknown }) => void }

export function nodeEndpoint (port: MessagePort): Endpoint {
  const listeners = new WeakMap<object, (data: unknown) => void>()
  const ep = {
    postMessage: (message: unknown, transfer?: unknown[]) => {
      port.postMessage(message, transfer as never)
    },
    addEventListener: (_type: string, eh: Listener) => {
      const l = (data: unknown): void => {
        if (typeof eh === 'function') eh({ data })
        else eh.handleEvent({ data })
      }
      port.on('message', l)
      listeners.set(eh, l)
    },
    removeEventListener: (_type: string, eh: Listener) => {
      const l = listeners.get(eh)
      if (l === undefined) return
      port.off('message', l)
      listeners.delete(eh)
    },
    start: () => { port.start() },
  }
  return ep as unknown as Endpoint
}
