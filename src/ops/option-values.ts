import { parseDuration } from '../component/duration.ts';
import { LifelineError } from '../errors.ts';

// Values an operator types (on the command line or in the console's forms), checked the same way
// for both: a bad one is LL_CONFIG_INVALID naming the option and what it should look like.

/** `--since 2026-11-24T10:00:00Z`: an ISO 8601 time (without a zone, local time, as kafka-consumer-groups reads it). */
export function parseTime(text: string, option: string): number {
  const at = Date.parse(text);
  if (Number.isNaN(at)) throw new LifelineError('LL_CONFIG_INVALID', `${option} must be an ISO 8601 date-time like 2026-11-24T10:00:00Z (got "${text}")`);
  return at;
}

export function parseInteger(text: string, option: string, minimum = Number.MIN_SAFE_INTEGER): number {
  if (!/^-?\d+$/.test(text.trim()) || Number(text) < minimum) {
    throw new LifelineError('LL_CONFIG_INVALID', `${option} must be a whole number${minimum > Number.MIN_SAFE_INTEGER ? ` ≥ ${minimum}` : ''} (got "${text}")`);
  }
  return Number(text);
}

export function durationMs(text: string, option: string): number {
  const ms = parseDuration(text);
  if (ms === undefined) throw new LifelineError('LL_CONFIG_INVALID', `${option} must be a duration like 500ms, 10s, 5m (got "${text}")`);
  return ms;
}

export function requireReason(reason: string | undefined): string {
  if (!reason || reason.trim().length === 0) throw new LifelineError('LL_CONFIG_INVALID', '--reason "…" is required: the audit trail says why');
  return reason.trim();
}
