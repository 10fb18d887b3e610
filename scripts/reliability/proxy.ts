import { connect, createServer, type Server, type Socket } from 'node:net'

// A TCP relay between an agent and its collector that can stall: while
// stalled it forwards nothing either way and holds what arrives, so batches
// are in flight and unacked for as long as a drill likes. release() sends on
// what the agent had written, lets the collector take it, and then cuts
// every connection: the batches arrive, their acks never do.

interface Pair { client: Socket, up: Socket, toUp: Buffer[], toClient: Buffer[] }

export class StallProxy {
  readonly #server: Server
  readonly #pairs = new Set<Pair>()
  #stalled = false
  port = 0

  private constructor (target: { host: string, port: number }) {
    this.#server = createServer(client => {
      const up = connect(target.port, target.host)
      const pair: Pair = { client, up, toUp: [], toClient: [] }
      this.#pairs.add(pair)
      client.on('data', d => { if (this.#stalled) pair.toUp.push(d); else up.write(d) })
      up.on('data', d => { if (this.#stalled) pair.toClient.push(d); else client.write(d) })
      const drop = (): void => { client.destroy(); up.destroy(); this.#pairs.delete(pair) }
      client.on('close', () => { if (!this.#stalled) drop() })
      up.on('close', drop)
      client.on('error', () => {})
      up.on('error', () => {})
    })
  }

  static async start (target: { host: string, port: number }): Promise<StallProxy> {
    const p = new StallProxy(target)
    await new Promise<void>((resolve, reject) => {
      p.#server.once('error', reject)
      p.#server.listen(0, '127.0.0.1', () => { p.port = (p.#server.address() as { port: number }).port; resolve() })
    })
    return p
  }

  get address (): string { return `127.0.0.1:${this.port}` }

  stall (): void { this.#stalled = true }

  /**
   * Forward what the agents wrote while stalled, give the collector `graceMs`
   * to take it (its answers go nowhere), then cut every connection; new ones
   * flow freely.
   */
  async release (graceMs = 1000): Promise<void> {
    const pairs = [...this.#pairs]
    for (const p of pairs) for (const d of p.toUp.splice(0)) p.up.write(d)
    await new Promise(resolve => setTimeout(resolve, graceMs))
    for (const p of pairs) { p.client.destroy(); p.up.destroy(); this.#pairs.delete(p) }
    this.#stalled = false
  }

  async close (): Promise<void> {
    for (const p of this.#pairs) { p.client.destroy(); p.up.destroy() }
    await new Promise<void>(resolve => this.#server.close(() => resolve()))
  }
}
