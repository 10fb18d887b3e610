// Times for people. `new Date(ms).toISOString()` throws on NaN, ±Infinity and
// beyond ±8.64e15 ms; a value that came from a record can be any of those.

/** `ms` since the epoch as ISO 8601, or the number as text when no Date can hold it. Never throws. */
export function isoTime (ms: number): string {
  const d = new Date(ms)
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString()
}
