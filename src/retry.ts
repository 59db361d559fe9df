import { setTimeout as sleep } from 'node:timers/promises';
import { LifelineError, errorMessage, isRetriable } from './errors.ts';

/**
 * Lifeline's one retry loop: exponential backoff with full jitter. It honours
 * `isRetriable`, never retries programmer errors, and wraps the last failure as
 * LL_RETRY_EXHAUSTED with the cause. Do not wrap a client's own retries in it.
 */
export interface RetryPolicy {
  /** Attempts after the first; 0 means try once. */
  readonly retries: number;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly factor: number;
  /** 0 = no jitter, 1 = delays uniformly drawn from [0, backoff]. */
  readonly jitter: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  retries: 8, initialDelayMs: 200, maxDelayMs: 30_000, factor: 2, jitter: 1,
});

/** Fast settings for tests. */
export const TEST_RETRY_POLICY: RetryPolicy = Object.freeze({
  retries: 5, initialDelayMs: 5, maxDelayMs: 50, factor: 2, jitter: 1,
});

export interface RetryOptions extends Partial<RetryPolicy> {
  readonly operation?: string;
  readonly shouldRetry?: (error: unknown) => boolean;
  readonly onRetry?: (info: { attempt: number; delayMs: number; error: unknown }) => void;
  readonly signal?: AbortSignal;
}

export function backoffDelay(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const exponential = Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.factor ** attempt);
  const jitter = exponential * policy.jitter * random();
  return Math.round(exponential - jitter);
}

export async function retry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const policy: RetryPolicy = { ...DEFAULT_RETRY_POLICY, ...options };
  const shouldRetry = options.shouldRetry ?? isRetriable;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      if (!shouldRetry(error)) throw error;
      if (attempt >= policy.retries || options.signal?.aborted) {
        throw new LifelineError(
          'LL_RETRY_EXHAUSTED',
          `${options.operation ?? 'operation'} failed after ${attempt + 1} attempts: ${errorMessage(error)}`,
          { cause: error, details: { attempts: attempt + 1 } },
        );
      }
      const delayMs = backoffDelay(attempt, policy);
      options.onRetry?.({ attempt: attempt + 1, delayMs, error });
      await sleep(delayMs, undefined, options.signal ? { signal: options.signal } : undefined).catch(() => undefined);
    }
  }
}
