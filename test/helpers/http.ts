import { request, type IncomingMessage } from 'node:http'

// Plain node:http requests for what fetch will not do: set Host (a rebound
// DNS name) and hold an event stream open.

export interface Answer { status: number, headers: IncomingMessage['headers'], body: string }

/** One request to a base URL (http://HOST:PORT) and path, with any headers, Host included. */
export async function httpRequest (base: string, path: string, opts: { method?: string, headers?: Record<string, string>, body?: string } = {}): Promise<Answer> {
  const u = new URL(base)
  return await new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method: opts.method ?? 'GET', headers: opts.headers ?? {} }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { body += d })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body }) })
    })
    req.on('error', reject)
    req.end(opts.body)
  })
}

export interface OpenStream { status: number, text: () => string, close: () => void }

/** GET an event stream and keep it open: resolves once the status line is in (a refusal: once its body is). */
export async function openEventStream (base: string, path: string, headers: Record<string, string> = {}): Promise<OpenStream> {
  const u = new URL(base)
  return await new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      let buf = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { buf += d })
      res.on('error', () => {})
      const stream = { status: res.statusCode ?? 0, text: () => buf, close: () => { req.destroy() } }
      // a refusal is a whole (short) answer: wait for it
      if (stream.status === 200) resolve(stream)
      else res.on('end', () => { resolve(stream) })
    })
    req.on('error', reject)
    req.end()
  })
}
