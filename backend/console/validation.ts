import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import type { FastifyRequest, FastifySchemaCompiler } from 'fastify'
import type { ValidationErrorBody } from './types.js'

// Schema validation for the console's routes. Fastify's own compiler stops
// at the first error and at the first failing part of the request; an
// operator (or a script) fixing a request wants every bad field at once. So
// the console compiles its schemas with allErrors (safe: every string and
// array in schemas.ts is bounded), remembers each route's validators, and
// when one part fails the error handler runs the rest too.

export type Part = 'params' | 'body' | 'querystring' | 'headers'
type Where = ValidationErrorBody['fields'][number]['in']
type Field = ValidationErrorBody['fields'][number]

const WHERE: Record<Part, Where> = { params: 'params', body: 'body', querystring: 'query', headers: 'headers' }
const PARTS: Part[] = ['params', 'querystring', 'headers', 'body']

export class ConsoleValidator {
  // query strings, params and headers are text: coerce them to the schema's
  // types; a JSON body has types of its own, and {"note": 42} is an error
  readonly #text = new Ajv({ allErrors: true, coerceTypes: 'array', useDefaults: true, removeAdditional: false, strict: true })
  readonly #json = new Ajv({ allErrors: true, coerceTypes: false, useDefaults: true, removeAdditional: false, strict: true })
  readonly #byRoute = new Map<string, Map<Part, ValidateFunction>>()

  readonly compiler: FastifySchemaCompiler<unknown> = ({ schema, method, url, httpPart }) => {
    const fn = (httpPart === 'body' ? this.#json : this.#text).compile(schema as object)
    const key = `${method} ${url}`
    let m = this.#byRoute.get(key)
    if (m === undefined) { m = new Map(); this.#byRoute.set(key, m) }
    m.set((httpPart ?? 'body') as Part, fn)
    return fn
  }

  /** Every invalid field of the request, over all of its parts. */
  fieldsOf (req: FastifyRequest, failed: { part: Part, errors: ErrorObject[] }): Field[] {
    const validators = this.#byRoute.get(`${req.method} ${req.routeOptions.url ?? ''}`)
    const out: Field[] = []
    for (const part of PARTS) {
      if (part === failed.part) { out.push(...describe(failed.errors, part, validators?.get(part)?.schema)); continue }
      const fn = validators?.get(part)
      if (fn === undefined) continue
      const data = part === 'params' ? req.params : part === 'querystring' ? req.query : part === 'headers' ? req.headers : req.body
      if (part === 'body' && data === undefined) continue
      if (!fn(data)) out.push(...describe(fn.errors ?? [], part, fn.schema))
    }
    return merge(out)
  }
}

function propSchema (root: unknown, field: string): Record<string, unknown> | undefined {
  const props = (root as { properties?: Record<string, Record<string, unknown>> } | undefined)?.properties
  return props?.[field]
}

function describe (errors: ErrorObject[], part: Part, schema: unknown): Field[] {
  const where = WHERE[part]
  const known = Object.keys((schema as { properties?: object } | undefined)?.properties ?? {}).filter(k => k !== 'access_token')
  const out: Field[] = []
  for (const e of errors) {
    let field = e.instancePath.split('/').filter(s => s !== '')[0] ?? ''
    let message = e.message ?? 'is invalid'
    switch (e.keyword) {
      case 'required':
        field = String((e.params as { missingProperty: string }).missingProperty)
        message = 'is required'
        break
      case 'additionalProperties':
        field = String((e.params as { additionalProperty: string }).additionalProperty)
        message = `is not a known ${where === 'body' ? 'field' : 'parameter'} (known: ${known.join(', ')})`
        break
      case 'enum':
        message = `must be one of: ${((e.params as { allowedValues: unknown[] }).allowedValues).map(String).join(', ')}`
        break
      case 'pattern': {
        const d = propSchema(schema, field)?.description
        message = typeof d === 'string' ? `must be ${d}` : 'has an invalid format'
        break
      }
      case 'type':
        message = `must be ${String((e.params as { type: string }).type).replace(/^integer$/, 'an integer').replace(/^string$/, 'a string').replace(/^object$/, 'a JSON object')}`
        break
      case 'maxItems':
      case 'uniqueItems':
        message = String(message)
        break
      default:
        break
    }
    out.push({ field: field === '' ? (where === 'body' ? 'body' : where) : field, in: where, message })
  }
  return out
}

/** One entry per field and place; several complaints about one field are joined. */
function merge (fields: Field[]): Field[] {
  const by = new Map<string, Field>()
  for (const f of fields) {
    const k = `${f.in}\0${f.field}`
    const cur = by.get(k)
    if (cur === undefined) by.set(k, { ...f })
    else if (!cur.message.split('; ').includes(f.message)) cur.message += `; ${f.message}`
  }
  return [...by.values()]
}

export function validationBody (fields: Field[]): ValidationErrorBody {
  return {
    error: 'PICKET_ERR_VALIDATION',
    message: fields.map(f => `${f.in === 'query' ? '?' : f.in === 'headers' ? 'header ' : ''}${f.field} ${f.message}`).join('; '),
    fields,
  }
}
