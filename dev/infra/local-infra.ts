import { rmSync } from 'node:fs';
import { join } from 'node:path';
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

/**
 * After infraDown: deletes the broker's data (its next start formats storage anew) and the registry's
 * schemas, keeping the jar cache, logs and the secure broker's certificates and credentials. Tests and
 * benches leave their randomly named topics behind for the 7-day retention; a broker holding thousands
 * of partitions keeps a larger live heap and pauses longer (docs/development.md).
 */
export async function infraWipe(s: LocalInfraSettings = localInfraSettings()): Promise<string[]> {
  const running = (await infraStatus(s)).filter((component) => component.running);
  if (running.length > 0) throw new Error(`not wiping: ${running.map((component) => `${component.name} (pid ${component.pid ?? '?'})`).join(', ')} still running in ${s.root}`);
  const wiped = [join(s.root, 'kafka', 'data'), join(s.root, 'registry')];
  for (const path of wiped) rmSync(path, { recursive: true, force: true });
  return wiped;
}

export async function infraStatus(s: LocalInfraSettings = localInfraSettings()): Promise<ComponentStatus[]> {
  return Promise.all([kafkaStatus(s), registryStatus(s)]);
}
