import { randomBytes, randomUUID } from 'node:crypto';

/** The headers every Lifeline record carries (DESIGN.md, "Records"). */
export const LIFELINE_HEADERS = {
  correlationId: 'lifeline.correlation-id',
  idempotencyKey: 'lifeline.idempotency-key',
  source: 'lifeline.source',
  ingestedAt: 'lifeline.ingested-at',
  traceparent: 'traceparent',
} as const;

/** A new W3C trace context: version 00, random trace and span ids, sampled. */
export function newTraceparent(): string {
  return `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`;
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
