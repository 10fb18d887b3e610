import { spawn } from 'node:child_process'

// Real scanners against loopback only, each from its own source address in
// 127.0.0.0/8 so its records are told apart from everything else.

export interface ScanResult { code: number | null, stdout: string, stderr: string }

export async function run (cmd: string, args: string[], timeoutMs = 120_000): Promise<ScanResult> {
  return await new Promise((resolve, reject) => {
    const p = spawn(cmd, args)
    let stdout = ''; let stderr = ''
    p.stdout.on('data', d => { stdout += String(d) })
    p.stderr.on('data', d => { stderr += String(d) })
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`${cmd} ${args.join(' ')} timed out`)) }, timeoutMs)
    p.on('error', reject)
    p.on('exit', code => { clearTimeout(timer); resolve({ code, stdout, stderr }) })
  })
}

const LOOPBACK_V4 = /^127\.\d+\.\d+\.\d+$/
const LOOPBACK_V6 = /^::1$/

/** nmap against loopback, from `source`. Refuses any other target. */
export async function nmap (opts: { type: '-sS' | '-sT' | '-sU', ports: string, source?: string, target?: string, extra?: string[] }): Promise<ScanResult> {
  const target = opts.target ?? '127.0.0.1'
  if (!LOOPBACK_V4.test(target) && !LOOPBACK_V6.test(target)) throw new Error(`scans stay on loopback; refusing target ${target}`)
  const args = [opts.type, '-Pn', '-n', '-p', opts.ports]
  if (target.includes(':')) args.unshift('-6')
  if (opts.source !== undefined) args.push('-S', opts.source, '-e', 'lo')
  args.push(...(opts.extra ?? []), target)
  const r = await run('nmap', args)
  if (r.code !== 0) throw new Error(`nmap ${args.join(' ')} failed (${r.code}): ${r.stderr}`)
  return r
}

/** Ports nmap reported in a state (from its normal output). */
export function nmapPorts (stdout: string, state: 'open' | 'closed' | 'filtered' | 'open|filtered'): number[] {
  const out: number[] = []
  for (const m of stdout.matchAll(/^(\d+)\/(tcp|udp)\s+(\S+)/gm)) if (m[3] === state) out.push(Number(m[1]))
  return out
}

/** TCP/UDP ports with a listening socket on this host right now (from ss). */
export async function listeningPorts (proto: 'tcp' | 'udp'): Promise<Set<number>> {
  const r = await run('ss', [proto === 'tcp' ? '-ltnH' : '-lunH'])
  const ports = new Set<number>()
  for (const line of r.stdout.split('\n')) {
    const m = /\s(\S+):(\d+)\s+\S+:\S+\s*/.exec(line)
    if (m !== null) ports.add(Number(m[2]))
  }
  return ports
}
