const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Parses "250ms", "30s", "15m", "2h", "7d", "1w" (or a plain number of ms). Returns undefined if malformed. */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/.exec(value.trim());
  if (!match) return undefined;
  return Math.round(Number(match[1]) * (UNITS[match[2] as string] as number));
}

export const DURATION_PATTERN = '^\\d+(\\.\\d+)?\\s*(ms|s|m|h|d|w)$';
