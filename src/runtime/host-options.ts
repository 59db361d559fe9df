import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import type { AvroSerde } from '../kafka/avro-serde.ts';
import type { RuntimeMetrics } from '../observe/metrics.ts';
import type { ComponentDeclaration, Topology } from '../topology/model.ts';

/** What the runtime hands every host (processor, source, sink) of one component. */
export interface HostOptions {
  readonly kafka: Kafka;
  readonly serde: AvroSerde;
  readonly metrics: RuntimeMetrics;
  readonly logger: Logger;
  readonly topology: Topology;
  readonly declaration: ComponentDeclaration;
  /** Called when the component must stop the whole runtime (on_error: fail, or fenced). */
  readonly onFatal: (error: Error) => void;
  /** Group session timeout; lower in tests so a killed member's partitions move sooner. */
  readonly sessionTimeoutMs?: number;
}
