// Whole numbers a client sends as text: the sequence number in an id, and the query's counts of
// milliseconds (`?since=`, `&wait=`), all read one way.
import type { FastifyRequest } from 'fastify'

// Digits without a leading zero, at most 16 of them: a safe integer, or near enough never to matter.
const WHOLE_NUMBER = /^(0|[1-9]\d{0,15})$/

/** `text` as a non-negative integer, or undefined when it is anything else. */
export function wholeNumber (text: unknown): number | undefined {
  return typeof text === 'string' && WHOLE_NUMBER.test(text) ? Number(text) : undefined
}

/** `?NAME=MS` as a non-negative integer; anything else (a repeated parameter too) is undefined, ignored. */
export function queryMilliseconds (request: FastifyRequest, name: string): number | undefined {
  return wholeNumber((request.query as Record<string, unknown> | undefined)?.[name])
}
