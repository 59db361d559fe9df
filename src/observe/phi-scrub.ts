import { PHI_MASK } from './phi-mask.ts';

/**
 * Free text about a record — an error message thrown by a processor or a library — may quote the
 * record's PHI. Before such text reaches a log line or a dead-letter header, every PHI value of the
 * record (found by the schema's `"phi": true` paths) is replaced by "[PHI]".
 */
export function scrubPhiFromText(text: string, value: unknown, phiPaths: readonly string[]): string {
  if (phiPaths.length === 0 || value === null || value === undefined) return text;
  const secrets = new Set<string>();
  for (const path of phiPaths) collect(value, path.split('.'), secrets);
  let scrubbed = text;
  // Longest first, so a value containing another is replaced whole.
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    if (secret.length < 2) continue;
    scrubbed = scrubbed.split(secret).join(PHI_MASK);
  }
  return scrubbed;
}

function collect(value: unknown, steps: readonly string[], into: Set<string>): void {
  if (value === null || value === undefined) return;
  if (steps.length === 0) {
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'bigint') into.add(String(value));
    else if (typeof value === 'object') into.add(JSON.stringify(value));
    return;
  }
  const [step, ...rest] = steps as [string, ...string[]];
  let name = step;
  let each: 'array' | 'map' | undefined;
  if (name.endsWith('[]')) {
    name = name.slice(0, -2);
    each = 'array';
  } else if (name.endsWith('{}')) {
    name = name.slice(0, -2);
    each = 'map';
  }
  const next = name === '' ? value : typeof value === 'object' ? (value as Record<string, unknown>)[name] : undefined;
  if (each === 'array' && Array.isArray(next)) for (const element of next) collect(element, rest, into);
  else if (each === 'map' && next && typeof next === 'object') for (const element of Object.values(next)) collect(element, rest, into);
  else if (each === undefined) collect(next, rest, into);
}
