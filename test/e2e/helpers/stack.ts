import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnPicket, type PicketProcess } from '../../helpers/cli.js'

// Real `picket backend` and `picket agent` processes, as an operator runs them.

export interface Stack {
  backend: PicketProcess
  agent: PicketProcess
  collector: string
  httpUrl: string
  db: string
  hostId: string
  agentMetrics: string
  close: () => Promise<void>
}

export interface FindingSummary {
  id: string
  hostId: string
  sources: string[]
  ports: number
  technique: string | undefined
  activity: number
  finding: Record<string, any>
}

async function freePort (): Promise<number> {
  const { createServer } = await import('node:net')
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)) })
  })
}

export async function startStack (opts: { hostId?: string, agentArgs?: string[] } = {}): Promise<Stack> {
  const dir = mkdtempSync(join(tmpdir(), 'picket-e2e-'))
  const db = join(dir, 'picket.db')
  const backend = spawnPicket(['backend', '--listen', '127.0.0.1:0', '--http', '127.0.0.1:0', '--db', db, '--log-level', 'warn'])
  const m = await backend.waitFor(/collector on (\S+), console and \/metrics on (\S+),/)
  const collector = m[1]
  const httpUrl = m[2]
  const hostId = opts.hostId ?? 'e2e-host'
  const metricsPort = await freePort()
  const agent = spawnPicket(['agent', '--collector', collector, '--data', join(dir, 'agent'), '--host-id', hostId, '--metrics', String(metricsPort), '--log-level', 'warn', ...(opts.agentArgs ?? [])])
  const agentMetrics = `http://127.0.0.1:${metricsPort}/metrics`
  const end = Date.now() + 30_000
  for (;;) {
    try {
      const text = await (await fetch(agentMetrics)).text()
      if (/^picket_agent_connected 1$/m.test(text)) break
    } catch {}
    if (Date.now() > end) throw new Error(`agent did not connect; stderr:\n${agent.stderr()}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return {
    backend, agent, collector, httpUrl, db, hostId, agentMetrics,
    close: async () => {
      await agent.stop('SIGINT')
      await backend.stop('SIGINT')
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Findings from the alert store through `picket alerts --json` (reads SQLite directly). */
export async function findings (db: string): Promise<FindingSummary[]> {
  const p = spawnPicket(['alerts', '--db', db, '--json', '--limit', '500'])
  const code = await p.exited
  if (code !== 0) throw new Error(`picket alerts failed (${code}): ${p.stderr()}`)
  const list = JSON.parse(p.stdout()) as Array<Record<string, any>>
  return list.map(f => {
    const u = f.unmapped?.picket ?? {}
    const sources: string[] = Array.isArray(u.sources) ? u.sources.map((s: any) => typeof s === 'string' ? s : s.ip) : []
    const ports = Number(u.ports_total ?? (Array.isArray(u.ports) ? u.ports.length : 0))
    return {
      id: f.finding_info?.uid,
      hostId: f.device?.uid,
      sources,
      ports,
      technique: f.finding_info?.attacks?.[0]?.technique?.uid,
      activity: f.activity_id,
      finding: f,
    }
  })
}
