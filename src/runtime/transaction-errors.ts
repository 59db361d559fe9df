import { LifelineError, errorCode, errorMessage } from '../errors.ts';

/**
 * What a failed Kafka transaction means for the task or source that ran it: retry it (a transient
 * race), reopen from what Kafka holds (fenced, outcome unknown, group moved on), or give up.
 */

/** kafkajs transactional races that succeed when the whole transaction is tried again. */
const TRANSIENT_TRANSACTION_ERRORS = new Set([
  'CONCURRENT_TRANSACTIONS', 'COORDINATOR_LOAD_IN_PROGRESS', 'COORDINATOR_NOT_AVAILABLE', 'NOT_COORDINATOR',
  'REQUEST_TIMED_OUT', 'NOT_ENOUGH_REPLICAS', 'LEADER_NOT_AVAILABLE', 'NOT_LEADER_FOR_PARTITION', 'UNKNOWN_TOPIC_OR_PARTITION',
]);

/** The Kafka error type (e.g. ILLEGAL_GENERATION) of an error or of what it wraps. */
export function transactionErrorType(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const type = (current as { type?: unknown }).type;
    if (typeof type === 'string') return type;
    current = (current as { originalError?: unknown }).originalError ?? current.cause;
  }
  return undefined;
}

/** The one place Lifeline retries kafkajs's known transactional races (e.g. kafkajs#1315). */
export function isTransientTransactionError(error: unknown): boolean {
  const type = transactionErrorType(error);
  if (type !== undefined) return TRANSIENT_TRANSACTION_ERRORS.has(type);
  return error instanceof Error && error.name === 'KafkaJSConnectionError';
}


export function commitOutcomeUnknown(where: string, cause: unknown): LifelineError {
  return new LifelineError('LL_COMMIT_OUTCOME_UNKNOWN', `the commit of ${where}'s transaction failed without an answer (${errorMessage(cause)}); going on from what Kafka holds, not from memory`, { cause });
}

/** A commit that may or may not have happened: the task must be reopened, not the transaction retried. */
export function isCommitOutcomeUnknown(error: unknown): boolean {
  return errorCode(error) === 'LL_COMMIT_OUTCOME_UNKNOWN';
}

/** Errors after which a task cannot go on from its in-memory state: it is closed and opened again. */
export function mustReopenTask(error: unknown): boolean {
  return isFencingError(error) || isCommitOutcomeUnknown(error) || isGroupFenced(error);
}

export function isFencingError(error: unknown): boolean {
  const type = transactionErrorType(error);
  return type === 'INVALID_PRODUCER_EPOCH' || type === 'PRODUCER_FENCED' || type === 'INVALID_TXN_STATE' || type === 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED';
}

/** Offsets refused for a stale generation or a partition this member gave up: the tasks are reopened from what Kafka holds. */
export function groupFenced(where: string, cause: unknown): LifelineError {
  return new LifelineError('LL_GROUP_FENCED', `${where}: the consumer group moved on (${errorMessage(cause)}); the partition's task is reopened from what Kafka holds`, { cause });
}

export function isGroupFenced(error: unknown): boolean {
  return errorCode(error) === 'LL_GROUP_FENCED';
}
