import { kafkaStatus, startKafka, stopKafka, type ComponentStatus } from './kafka-broker.ts';
import { registryStatus, startRegistry, stopRegistry } from './schema-registry.ts';
import { localInfraSettings, type LocalInfraSettings } from './settings.ts';

export interface InfraUpResult {
  readonly startedKafka: boolean;
  readonly startedRegistry: boolean;
  readonly seconds: number;
}

/** Idempotent: starts what is not running, waits until both answer. */
export async function infraUp(
  s: LocalInfraSettings = localInfraSettings(),
  log: (line: string) => void = () => undefined,
): Promise<InfraUpResult> {
  const started = performance.now();
  // The broker and the registry are independent; start them side by side to halve the cold start.
  const [startedKafka, startedRegistry] = await Promise.all([startKafka(s, log), startRegistry(s, log)]);
  return { startedKafka, startedRegistry, seconds: (performance.now() - started) / 1000 };
}

export async function infraDown(s: LocalInfraSettings = localInfraSettings()): Promise<{ kafka: boolean; registry: boolean }> {
  const [registry, kafka] = await Promise.all([stopRegistry(s), stopKafka(s)]);
  return { kafka, registry };
}

export async function infraStatus(s: LocalInfraSettings = localInfraSettings()): Promise<ComponentStatus[]> {
  return Promise.all([kafkaStatus(s), registryStatus(s)]);
}
