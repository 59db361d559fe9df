import assert from 'node:assert/strict';
import { test } from 'node:test';
import { localInfraSettings } from '../../../dev/infra/settings.ts';

function withEnv<T>(values: Record<string, string | undefined>, run: () => T): T {
  const saved = Object.fromEntries(Object.keys(values).map((name) => [name, process.env[name]]));
  try {
    for (const [name, value] of Object.entries(values)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    return run();
  } finally {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

test('the local broker runs G1 with a 512m heap unless LIFELINE_KAFKA_HEAP and LIFELINE_KAFKA_JVM_OPTS say otherwise', () => {
  const defaults = withEnv({ LIFELINE_KAFKA_HEAP: undefined, LIFELINE_KAFKA_JVM_OPTS: undefined }, () => localInfraSettings('/tmp'));
  assert.equal(defaults.kafkaHeap, '512m');
  assert.deepEqual(defaults.kafkaJvmOptions, ['-XX:+UseG1GC', '-Djava.awt.headless=true']);

  const tuned = withEnv({ LIFELINE_KAFKA_HEAP: '1g', LIFELINE_KAFKA_JVM_OPTS: ' -server  -XX:+UseG1GC -XX:MaxGCPauseMillis=20\n-Djava.awt.headless=true ' }, () => localInfraSettings('/tmp'));
  assert.equal(tuned.kafkaHeap, '1g');
  assert.deepEqual(tuned.kafkaJvmOptions, ['-server', '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20', '-Djava.awt.headless=true']);
});
