import type { KV } from '@nats-io/kv'
import type { Logger } from '../../shared/logger.js'
import { leaseKey, nodeKey } from './wire.js'

// Partition ownership through leases in a KV bucket whose keys live ttlMs
// unless written again. Take: atomic create (fails while another node's
// lease lives). Keep: update checked against the revision we wrote last (fails
// once anyone else wrote). A node also writes its own key each round, so
// every node knows how many are alive and takes only its fair share,
// ceil(P / live nodes), releasing the excess for a newcomer. The token a node
// stamps its writes with is the revision at which it took the lease: every
// later owner's is larger (fences.ts in the store).

export interface Lease { partition: number, token: number, rev: number, renewedAt: number }

export interface LeaseEvents {
  /** the lease is ours: replay the partition, then consume it */
  acquired: (partition: number, token: number) => Promise<void>
  /** the lease is gone (lost) or about to be given up (released): stop consuming before anything else */
  stopped: (partition: number, why: 'lost' | 'released') => Promise<void>
}

export class LeaseKeeper {
  readonly #kv: KV
  readonly #node: string
  readonly #partitions: number
  readonly #ttlMs: number
  readonly #ev: LeaseEvents
  readonly #logger: Logger
  readonly #owned = new Map<number, Lease>()
  #timer: NodeJS.Timeout | undefined
  #running: Promise<void> = Promise.resolve()
  #closing = false
  liveNodes = 1

  constructor (kv: KV, node: string, partitions: number, ttlMs: number, ev: LeaseEvents, logger: Logger) {
    this.#kv = kv
    this.#node = node
    this.#partitions = partitions
    this.#ttlMs = ttlMs
    this.#ev = ev
    this.#logger = logger
  }

  /** Ours and not past its TTL by our own clock (a process stopped past it must not act on it). */
  holds (partition: number): boolean {
    const l = this.#owned.get(partition)
    return l !== undefined && Date.now() - l.renewedAt < this.#ttlMs
  }

  /** Give the lease up at the next round (its consumer failed). */
  abandon (partition: number): void {
    const l = this.#owned.get(partition)
    if (l !== undefined) l.renewedAt = -Infinity
  }

  owned (): Lease[] {
    return [...this.#owned.values()]
  }

  start (): void {
    const round = (): void => {
      this.#running = this.#round().catch(err => { this.#logger.warn({ err }, 'lease round failed; retrying') })
      void this.#running.then(() => { if (!this.#closing) this.#timer = setTimeout(round, Math.max(200, Math.floor(this.#ttlMs / 4))) })
    }
    round()
  }

  async #round (): Promise<void> {
    await this.#kv.put(nodeKey(this.#node), String(Date.now()))
    for (const l of [...this.#owned.values()]) {
      if (Date.now() - l.renewedAt >= this.#ttlMs) {
        await this.#drop(l.partition, 'lost')
        await this.#kv.delete(leaseKey(l.partition), { previousSeq: l.rev }).catch(() => {})
        continue
      }
      try {
        l.rev = await this.#kv.update(leaseKey(l.partition), this.#node, l.rev)
        l.renewedAt = Date.now()
      } catch (err) {
        this.#logger.warn({ partition: l.partition, err: (err as Error).message }, 'lease renewal refused: another node owns the partition now')
        await this.#drop(l.partition, 'lost')
      }
    }
    let live = 0
    for await (const _k of await this.#kv.keys('node.*')) live++
    this.liveNodes = Math.max(1, live)
    const share = Math.ceil(this.#partitions / this.liveNodes)
    // the excess goes, highest first: a newcomer's create finds it free after our delete
    const mine = [...this.#owned.keys()].sort((a, b) => b - a)
    while (mine.length > share) {
      const p = mine.shift() as number
      const l = this.#owned.get(p) as Lease
      await this.#drop(p, 'released')
      await this.#kv.delete(leaseKey(p), { previousSeq: l.rev }).catch(() => {})
    }
    if (this.#owned.size >= share) return
    // start at a node-specific offset so nodes starting together do not all race for partition 0
    let off = 0
    for (let i = 0; i < this.#node.length; i++) off = (off * 31 + this.#node.charCodeAt(i)) >>> 0
    for (let i = 0; i < this.#partitions && this.#owned.size < share && !this.#closing; i++) {
      const p = (off + i) % this.#partitions
      if (this.#owned.has(p)) continue
      let rev: number
      try { rev = await this.#kv.create(leaseKey(p), this.#node) } catch { continue }
      this.#owned.set(p, { partition: p, token: rev, rev, renewedAt: Date.now() })
      this.#logger.info({ partition: p, token: rev, node: this.#node }, 'lease taken: replaying the partition, then consuming it')
      await this.#ev.acquired(p, rev)
    }
  }

  async #drop (partition: number, why: 'lost' | 'released'): Promise<void> {
    this.#owned.delete(partition)
    this.#logger.info({ partition, why, node: this.#node }, why === 'lost' ? 'lease lost: stopped consuming the partition' : 'lease released for a node with fewer partitions')
    await this.#ev.stopped(partition, why)
  }

  /** Give every lease up (a clean stop hands the partitions over at once instead of after the TTL). */
  async close (): Promise<void> {
    this.#closing = true
    clearTimeout(this.#timer)
    await this.#running
    for (const l of [...this.#owned.values()]) {
      await this.#drop(l.partition, 'released')
      await this.#kv.delete(leaseKey(l.partition), { previousSeq: l.rev }).catch(() => {})
    }
    await this.#kv.delete(nodeKey(this.#node)).catch(() => {})
  }
}
