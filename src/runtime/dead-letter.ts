import type { IHeaders, Message } from 'kafkajs';
import { errorCode, errorMessage } from '../errors.ts';

export const DEAD_LETTER_HEADERS = {
  errorClass: 'lifeline.error.class',
  errorMessage: 'lifeline.error.message',
  component: 'lifeline.error.component',
  attempts: 'lifeline.error.attempts',
  originTopic: 'lifeline.origin.topic',
  originPartition: 'lifeline.origin.partition',
  originOffset: 'lifeline.origin.offset',
  failedAt: 'lifeline.error.failed-at',
} as const;

/** Error messages can quote input; keep them short so a dead letter never becomes a data dump. */
const MAX_ERROR_MESSAGE = 1000;

/**
 * A dead letter keeps the raw key and value bytes exactly as they arrived, the original headers,
 * and headers saying what failed, where and how often, so it can be inspected and replayed.
 */
export function deadLetterMessage(options: {
  component: string;
  error: unknown;
  /** The error's message as it may be shown (PHI scrubbed); defaults to the raw message. */
  errorText?: string;
  attempts: number;
  origin: { topic: string; partition: number; offset: string };
  key: Buffer | string | null;
  value: Buffer | null;
  headers?: IHeaders;
}): Message {
  return {
    key: options.key,
    value: options.value,
    headers: {
      ...(options.headers ?? {}),
      [DEAD_LETTER_HEADERS.errorClass]: errorCode(options.error),
      [DEAD_LETTER_HEADERS.errorMessage]: (options.errorText ?? errorMessage(options.error)).slice(0, MAX_ERROR_MESSAGE),
      [DEAD_LETTER_HEADERS.component]: options.component,
      [DEAD_LETTER_HEADERS.attempts]: String(options.attempts),
      [DEAD_LETTER_HEADERS.originTopic]: options.origin.topic,
      [DEAD_LETTER_HEADERS.originPartition]: String(options.origin.partition),
      [DEAD_LETTER_HEADERS.originOffset]: options.origin.offset,
      [DEAD_LETTER_HEADERS.failedAt]: new Date().toISOString(),
    },
  };
}

/** kafkajs headers (Buffer | string | arrays) as plain strings. */
export function headersAsStrings(headers: IHeaders | undefined): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue;
    const last = Array.isArray(value) ? value[value.length - 1] : value;
    if (last !== undefined) result[name] = last.toString();
  }
  return result;
}
