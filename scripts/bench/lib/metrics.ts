// Read a Prometheus text endpoint into {name{labels} → value}.
export async function scrape (url: string): Promise<Map<string, number>> {
  const res = await fetch(url)
  if (!res.ok) throw new Error(`GET ${url}: ${res.status}`)
  const out = new Map<string, number>()
  for (const line of (await res.text()).split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue
    const i = line.lastIndexOf(' ')
    out.set(line.slice(0, i), Number(line.slice(i + 1)))
  }
  return out
}

export function metric (m: Map<string, number>, name: string, labels?: Record<string, string>): number {
  if (labels === undefined) return m.get(name) ?? 0
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`)
  let sum = 0
  for (const [key, v] of m) {
    if (!key.startsWith(name + '{')) continue
    if (want.every(w => key.includes(w))) sum += v
  }
  return sum
}
