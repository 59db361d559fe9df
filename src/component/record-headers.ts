import { randomFillSync, randomUUID } from 'node:crypto';

/** The headers every Lifeline record carries (DESIGN.md, "Records"). */
export const LIFELINE_HEADERS = {
  correlationId: 'lifeline.correlation-id',
  idempotencyKey: 'lifeline.idempotency-key',
  source: 'lifeline.source',
  ingestedAt: 'lifeline.ingested-at',
  traceparent: 'traceparent',
} as const;

/** Random bytes for trace contexts, drawn from the OS a page at a time (one call per record cost more than the record). */
const TRACE_POOL_BYTES = 24 * 256;
const tracePool = Buffer.alloc(TRACE_POOL_BYTES);
let tracePoolOffset = TRACE_POOL_BYTES;

/** A new W3C trace context: version 00, random trace and span ids, sampled. */
export function newTraceparent(): string {
  if (tracePoolOffset + 24 > TRACE_POOL_BYTES) {
    randomFillSync(tracePool);
    tracePoolOffset = 0;
  }
  const at = tracePoolOffset;
  tracePoolOffset += 24;
  return `00-${tracePool.toString('hex', at, at + 16)}-${tracePool.toString('hex', at + 16, at + 24)}-01`;
}

/**
 * Fills in what a source did not set: a correlation id, the source label, the ingest time and a
 * trace context. What the source set (e.g. the webhook id as idempotency key) is kept.
 */
export function withIngestHeaders(headers: Readonly<Record<string, string>> | undefined, source: string, now: Date = new Date()): Record<string, string> {
  return {
    [LIFELINE_HEADERS.correlationId]: randomUUID(),
    [LIFELINE_HEADERS.source]: source,
    [LIFELINE_HEADERS.ingestedAt]: now.toISOString(),
    [LIFELINE_HEADERS.traceparent]: newTraceparent(),
    ...(headers ?? {}),
  };
}
