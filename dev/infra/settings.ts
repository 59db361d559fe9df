import { join, resolve } from 'node:path';
import versions from '../../deploy/versions.json' with { type: 'json' };

/**
 * Where and how the local Kafka broker and schema registry run. The versions come from
 * deploy/versions.json, shared with the Dockerfile and docker-compose.yml. Every value can be
 * overridden from the environment so a machine with busy ports or another Kafka version
 * needs no code change.
 */
export interface LocalInfraSettings {
  readonly root: string;
  readonly kafkaVersion: string;
  readonly log4jVersion: string;
  readonly kafkaHost: string;
  readonly kafkaPort: number;
  readonly controllerPort: number;
  readonly kafkaHeap: string;
  /**
   * The broker's JVM options other than its heap and GC log (LIFELINE_KAFKA_JVM_OPTS replaces them, as
   * KAFKA_JVM_PERFORMANCE_OPTS does for Kafka's own scripts). Kafka's script defaults (G1 with a 20 ms
   * pause goal, heap 1g) were measured against these on fresh brokers under the latency bench
   * (2026-12-03, 2 interleaved rounds each): more young collections (47 and 64 against 16 and 16,
   * 1.7–2.1 s of pauses against 0.7–0.8 s) and no better latency on 2 cores, so they are not the default.
   */
  readonly kafkaJvmOptions: readonly string[];
  readonly registryVersion: string;
  readonly registryPort: number;
  readonly registryManagementPort: number;
  readonly registryHeap: string;
  /**
   * LIFELINE_KAFKA_SECURE=1: the broker listens with SASL_SSL only (SCRAM-SHA-512 users `admin` and
   * `lifeline` made at format time, a self-signed CA and certificate made on first use) and
   * authorises with ACLs. Use its own LIFELINE_HOME and ports beside a plaintext one.
   */
  readonly secure: boolean;
  /** Where the jars are cached; LIFELINE_CACHE_DIR shares one cache between several homes. */
  readonly cacheDir: string;
}

const KAFKA_JVM_OPTIONS = '-XX:+UseG1GC -Djava.awt.headless=true';

function intFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0 || value > 65535) {
    throw new Error(`${name} must be a port number, got "${raw}"`);
  }
  return value;
}

export function localInfraSettings(cwd: string = process.cwd()): LocalInfraSettings {
  const env = process.env;
  return Object.freeze({
    root: resolve(cwd, env.LIFELINE_HOME ?? '.lifeline'),
    kafkaVersion: env.LIFELINE_KAFKA_VERSION ?? versions.kafka,
    log4jVersion: env.LIFELINE_LOG4J_VERSION ?? versions.log4j,
    kafkaHost: '127.0.0.1',
    kafkaPort: intFromEnv('LIFELINE_KAFKA_PORT', 9092),
    controllerPort: intFromEnv('LIFELINE_KAFKA_CONTROLLER_PORT', 9093),
    kafkaHeap: env.LIFELINE_KAFKA_HEAP ?? '512m',
    kafkaJvmOptions: (env.LIFELINE_KAFKA_JVM_OPTS ?? KAFKA_JVM_OPTIONS).split(/\s+/).filter(Boolean),
    registryVersion: env.LIFELINE_REGISTRY_VERSION ?? versions.apicurio,
    registryPort: intFromEnv('LIFELINE_REGISTRY_PORT', 8081),
    registryManagementPort: intFromEnv('LIFELINE_REGISTRY_MANAGEMENT_PORT', intFromEnv('LIFELINE_REGISTRY_PORT', 8081) + 1),
    registryHeap: env.LIFELINE_REGISTRY_HEAP ?? '384m',
    secure: env.LIFELINE_KAFKA_SECURE === '1',
    cacheDir: resolve(cwd, env.LIFELINE_CACHE_DIR ?? join(env.LIFELINE_HOME ?? '.lifeline', 'cache')),
  });
}

export function kafkaBootstrap(settings: LocalInfraSettings): string {
  return `${settings.kafkaHost}:${settings.kafkaPort}`;
}

export function registryUrl(settings: LocalInfraSettings): string {
  return `http://${settings.kafkaHost}:${settings.registryPort}/apis/ccompat/v7`;
}
