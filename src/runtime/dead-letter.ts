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
  /** `json` when the value is the record as JSON (a source's record that never became Avro); absent for raw bytes. */
  valueFormat: 'lifeline.dlq.value-format',
  /** The registry subject the JSON value is re-encoded with on replay (`<origin topic>-value`). */
  originSubject: 'lifeline.origin.subject',
} as const;

/**
 * JSON that survives a round trip of an Avro value: bytes fields (Buffers) become
 * `{"$bytes":"<base64>"}` and come back as Buffers.
 */
export function avroValueToJson(value: unknown): string {
  return JSON.stringify(value, function replacer(this: unknown, key: string, item: unknown) {
    const original = (this as Record<string, unknown>)[key];
    if (Buffer.isBuffer(original)) return { $bytes: original.toString('base64') };
    if (typeof item === 'bigint') return Number(item);
    return item;
  });
}

export function avroValueFromJson(text: string): unknown {
  return JSON.parse(text, (_key, item: unknown) => {
    if (item !== null && typeof item === 'object' && !Array.isArray(item)) {
      const keys = Object.keys(item);
      if (keys.length === 1 && keys[0] === '$bytes' && typeof (item as { $bytes: unknown }).$bytes === 'string') return Buffer.from((item as { $bytes: string }).$bytes, 'base64');
    }
    return item;
  });
}

/**
 * A source's dead letter. A source's record has no origin offset (it never reached Kafka), and
 * usually no Avro bytes (it did not encode): the value is kept as JSON with the origin topic and
 * subject, so `lifeline dlq replay` re-encodes it in the origin's format once the cause is fixed.
 * When the record did encode (too large for its topic), the Avro bytes are kept as they are.
 */
export function sourceDeadLetterMessage(options: {
  component: string;
  error: unknown;
  originTopic: string;
  key: string | null;
  value: unknown;
  /** The Avro wire-format bytes, when the record encoded. */
  encoded?: Buffer | null;
  headers?: IHeaders;
}): Message {
  const json = options.encoded === undefined;
  const message = deadLetterMessage({
    component: options.component, error: options.error, attempts: 1,
    origin: { topic: options.originTopic, partition: -1, offset: '-1' },
    key: options.key,
    value: json ? (options.value === null ? null : Buffer.from(avroValueToJson(options.value))) : options.encoded ?? null,
    headers: options.headers ?? {},
  });
  return {
    ...message,
    headers: {
      ...message.headers,
      ...(json && options.value !== null ? { [DEAD_LETTER_HEADERS.valueFormat]: 'json' } : {}),
      ...(options.originTopic ? { [DEAD_LETTER_HEADERS.originSubject]: `${options.originTopic}-value` } : {}),
    },
  };
}

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
