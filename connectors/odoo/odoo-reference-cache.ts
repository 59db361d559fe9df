import { LifelineError } from '../../src/errors.ts';
import type { ReferenceRequest, ReferenceResolver } from './odoo-field-mapping.ts';
import type { OdooRecord } from './odoo-values.ts';

/**
 * many2one lookups by reference (a partner's `ref`, a product's `default_code`), cached: a batch
 * asks Odoo once per comodel and field for the references it has not seen, and a found id is kept
 * for `ttlMs` (references rarely move; a stale id fails loudly at write time, not silently).
 * Not-found is never cached, so a partner created a minute later is found.
 */
export type ReferenceSearch = (model: string, field: string, values: ReadonlyArray<string | number>) => Promise<readonly OdooRecord[]>;

export class ReferenceCache {
  private readonly entries = new Map<string, { id: number; expires: number }>();

  constructor(private readonly maxEntries = 20_000, private readonly ttlMs = 10 * 60_000) {}

  async resolver(requests: readonly ReferenceRequest[], search: ReferenceSearch): Promise<ReferenceResolver> {
    const now = Date.now();
    const found = new Map<string, number[]>();
    const missing = new Map<string, { model: string; field: string; values: Set<string | number> }>();
    for (const request of requests) {
      const key = cacheKey(request);
      const cached = this.entries.get(key);
      if (cached && cached.expires > now) {
        found.set(key, [cached.id]);
        continue;
      }
      const group = `${request.model}|${request.field}`;
      const entry = missing.get(group) ?? { model: request.model, field: request.field, values: new Set() };
      entry.values.add(request.value);
      missing.set(group, entry);
    }
    for (const { model, field, values } of missing.values()) {
      const rows = await search(model, field, [...values]);
      for (const row of rows) {
        const reference = row[field];
        if (typeof reference !== 'string' && typeof reference !== 'number') continue;
        const key = cacheKey({ model, field, value: reference });
        found.set(key, [...(found.get(key) ?? []), row.id]);
      }
      for (const value of values) {
        const key = cacheKey({ model, field, value });
        const ids = found.get(key);
        if (ids?.length === 1) this.remember(key, ids[0] as number, now);
      }
    }
    return (request) => {
      const ids = found.get(cacheKey(request)) ?? [];
      if (ids.length === 1) return ids[0] as number;
      const what = `${request.model} with ${request.field} = ${JSON.stringify(request.value)}`;
      return new LifelineError('LL_ODOO_REFERENCE_NOT_FOUND', ids.length === 0 ? `no ${what}` : `${ids.length} records are ${what} (ids ${ids.join(', ')}); the reference must be unique`,
        { details: { model: request.model, field: request.field } });
    };
  }

  private remember(key: string, id: number, now: number): void {
    this.entries.delete(key);
    this.entries.set(key, { id, expires: now + this.ttlMs });
    // Oldest first in a Map: drop from the front.
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
  }
}

function cacheKey(request: ReferenceRequest): string {
  return `${request.model}|${request.field}|${String(request.value)}`;
}
