import * as protoLoader from '@grpc/proto-loader'
import t from 'tap'
import { ACK_STATUSES, DROP_CAUSES, FINDING_STATES, sqlIn, TRIAGE_OCSF, TRIAGE_STATUSES } from '../../shared/enums.js'
import { PROTO_PATH } from '../../shared/proto/index.js'

// shared/enums.ts is the one definition; the .proto cannot import it, so this
// test holds the .proto to it.

const def = protoLoader.loadSync(PROTO_PATH, { keepCase: true })

function fields (name: string): Array<{ name: string, number: number }> {
  const t = def[name] as { type: { field: Array<{ name: string, number: number }> } }
  return t.type.field.map(f => ({ name: f.name, number: f.number }))
}

t.test('collector.proto DropCounters has one field per drop cause, numbered in DROP_CAUSES order', async t => {
  t.same(fields('picket.collector.v1.DropCounters'), DROP_CAUSES.map((name, i) => ({ name, number: i + 1 })))
})

t.test('collector.proto Ack.Status values are ACK_STATUSES, numbered in order', async t => {
  const ack = def['picket.collector.v1.Ack'] as { type: { enumType: Array<{ name: string, value: Array<{ name: string, number: number }> }> } }
  const status = ack.type.enumType.find(e => e.name === 'Status')
  t.ok(status, 'Ack has an enum Status')
  t.same(status?.value.map(v => ({ name: v.name, number: v.number })), ACK_STATUSES.map((name, i) => ({ name, number: i })))
})

t.test('every triage status maps to an OCSF status id; the SQL CHECK lists exactly the values', async t => {
  t.same(Object.keys(TRIAGE_OCSF).sort(), [...TRIAGE_STATUSES].sort())
  t.equal(sqlIn('state', FINDING_STATES), "CHECK (state IN ('open', 'closed'))")
  t.equal(sqlIn('x', ["it's"]), "CHECK (x IN ('it''s'))", 'quotes are escaped')
})
