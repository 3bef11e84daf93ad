// Query parameters that count milliseconds (`?since=`, `&wait=`), read one way.
import type { FastifyRequest } from 'fastify'

const MILLISECONDS = /^(0|[1-9]\d{0,15})$/

/** `?NAME=MS` as a non-negative integer; anything else (a repeated parameter too) is undefined, ignored. */
export function queryMilliseconds (request: FastifyRequest, name: string): number | undefined {
  const value = (request.query as Record<string, unknown> | undefined)?.[name]
  return typeof value === 'string' && MILLISECONDS.test(value) ? Number(value) : undefined
}
