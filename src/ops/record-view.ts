import type { KafkaMessage } from 'kafkajs';
import { LifelineError, errorCode, errorMessage } from '../errors.ts';
import type { AvroSerde } from '../kafka/avro-serde.ts';
import { compilePhiMask } from '../observe/phi-mask.ts';
import { headersAsStrings } from '../runtime/dead-letter.ts';
import { phiPathsOfType, toJsonValue } from './record-json.ts';

/** A record as `lifeline consume` prints it: one JSON object per line. */
export interface RecordView {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly timestamp: string;
  readonly key: string | null;
  readonly headers: Readonly<Record<string, string>>;
  readonly schemaId?: number;
  readonly value?: unknown;
  /** Set instead of `value` when the bytes do not decode. */
  readonly error?: string;
}

/**
 * Decodes and masks records for human eyes. PHI paths come from the topic's declared contract and
 * from the writer schema's own `"phi": true` marks, so a record written with another version of
 * the schema is masked by what it says about itself. Bytes that do not decode are never shown
 * masked-by-accident: only their size, unless PHI is revealed.
 */
export class RecordViewer {
  private readonly masks = new Map<string, (value: unknown) => unknown>();

  constructor(private readonly serde: AvroSerde, private readonly declaredPhiPaths: (topic: string) => readonly string[], private readonly reveal: boolean) {}

  async view(topic: string, partition: number, message: KafkaMessage): Promise<RecordView> {
    const base = {
      topic, partition, offset: message.offset,
      timestamp: new Date(Number(message.timestamp)).toISOString(),
      key: message.key?.toString('utf8') ?? null,
      headers: headersAsStrings(message.headers),
    };
    if (message.value === null) return { ...base, value: null };
    return { ...base, ...(await this.valueView(topic, message.value)) };
  }

  /** The value part: decoded and masked, or why it could not be decoded. */
  async valueView(topic: string, bytes: Buffer): Promise<{ schemaId?: number; value?: unknown; error?: string }> {
    try {
      const decoded = await this.serde.decode(bytes);
      const json = toJsonValue(decoded.value);
      return { schemaId: decoded.schemaId, value: this.reveal ? json : (await this.maskFor(topic, decoded.schemaId))(json) };
    } catch (error) {
      const shown = this.reveal ? `; raw: ${JSON.stringify(bytes.toString('latin1'))}` : ` (${bytes.length} bytes, not shown: they may hold PHI)`;
      return { error: `${errorCode(error)}: ${errorMessage(error)}${shown}` };
    }
  }

  /**
   * The value with exactly one PHI field unmasked (`field`, one of the topic's PHI paths, declared or
   * marked by the writer schema) and every other PHI field still masked. A path that is not PHI is
   * refused: it is shown already, and accepting any path would make this a way round the mask.
   */
  async revealField(topic: string, bytes: Buffer, field: string): Promise<{ schemaId: number; value: unknown; phiFields: readonly string[] }> {
    const decoded = await this.serde.decode(bytes);
    const paths = await this.phiPathsFor(topic, decoded.schemaId);
    if (!paths.includes(field)) {
      throw new LifelineError('LL_CONFIG_INVALID', `${field} is not a PHI field of ${topic} (its PHI fields: ${paths.join(', ') || 'none'}); other fields are shown unmasked already`);
    }
    return { schemaId: decoded.schemaId, value: compilePhiMask(paths.filter((path) => path !== field))(toJsonValue(decoded.value)), phiFields: paths };
  }

  private async phiPathsFor(topic: string, schemaId: number): Promise<string[]> {
    let writerPaths: readonly string[];
    try {
      writerPaths = phiPathsOfType(await this.serde.typeFor(schemaId));
    } catch {
      writerPaths = [];
    }
    return [...new Set([...this.declaredPhiPaths(topic), ...writerPaths])];
  }

  private async maskFor(topic: string, schemaId: number): Promise<(value: unknown) => unknown> {
    const key = `${topic}\u0000${schemaId}`;
    let mask = this.masks.get(key);
    if (!mask) {
      mask = compilePhiMask(await this.phiPathsFor(topic, schemaId));
      this.masks.set(key, mask);
    }
    return mask;
  }
}

