import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import kafkajs from 'kafkajs';
import type { DestinationStream } from 'pino';
import { LifelineError } from '../../../src/errors.ts';
import { compileContract } from '../../../src/kafka/avro-contract.ts';
import { REDACTED, componentLogger, createLogger, kafkaLogCreator, withCorrelation } from '../../../src/observe/logger.ts';
import { createPhiRedactor } from '../../../src/observe/phi-mask.ts';

const { logLevel } = kafkajs;

/** A pino destination that keeps each JSON line in memory, written synchronously. */
function memoryDestination(): DestinationStream & { readonly text: () => string; readonly entries: () => Array<Record<string, unknown>> } {
  const lines: string[] = [];
  return {
    write: (line: string) => void lines.push(line),
    text: () => lines.join(''),
    entries: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

const admissionContract = compileContract({
  type: 'record', name: 'Admission', namespace: 'lifeline.test',
  fields: [
    { name: 'admission_id', type: 'string' },
    { name: 'patient', type: { type: 'record', name: 'Patient', fields: [{ name: 'mrn', type: 'string', phi: true }, { name: 'ward', type: 'string' }] } },
    { name: 'diagnoses', type: { type: 'array', items: { type: 'record', name: 'Diagnosis', fields: [{ name: 'code', type: 'string', phi: true }] } } },
  ],
});

describe('createLogger', () => {
  test('writes JSON lines with ISO timestamps, level names, the name and bound context', () => {
    const destination = memoryDestination();
    const logger = createLogger({ destination, name: 'lifeline', level: 'debug' });
    const charges = componentLogger(logger, 'charge_dedup', { processor: 'dedup' });
    withCorrelation(charges, 'corr-42').debug({ partition: 3 }, 'record processed');

    const [entry] = destination.entries();
    assert.ok(entry);
    assert.equal(entry.level, 'debug');
    assert.equal(entry.name, 'lifeline');
    assert.equal(entry.component, 'charge_dedup');
    assert.equal(entry.processor, 'dedup');
    assert.equal(entry.correlation_id, 'corr-42');
    assert.equal(entry.partition, 3);
    assert.equal(entry.msg, 'record processed');
    assert.match(String(entry.time), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  });

  test('the level filters lines', () => {
    const destination = memoryDestination();
    const logger = createLogger({ destination, level: 'warn' });
    logger.info('not shown');
    logger.warn('shown');
    assert.deepEqual(destination.entries().map((entry) => entry.msg), ['shown']);
  });

  test('writes no PHI when records are logged through the redactor', () => {
    const destination = memoryDestination();
    const logger = createLogger({ destination });
    const topic = 'partner.admission.received.v1';
    const redact = createPhiRedactor(new Map([[topic, admissionContract.phiPaths]]));
    const decoded: unknown = admissionContract.type.fromBuffer(admissionContract.type.toBuffer({
      admission_id: 'ADM-1', patient: { mrn: 'MRN-778812', ward: 'ICU' }, diagnoses: [{ code: 'B20' }, { code: 'F32.1' }],
    }));
    logger.info({ topic, record: redact(topic, decoded) }, 'admission received');
    logger.warn({ topic: 'partner.unknown.v1', record: redact('partner.unknown.v1', { mrn: 'MRN-999' }) }, 'unknown topic');

    const text = destination.text();
    for (const phi of ['MRN-778812', 'B20', 'F32.1', 'MRN-999']) assert.ok(!text.includes(phi), `${phi} leaked: ${text}`);
    const [entry] = destination.entries();
    assert.deepEqual(entry?.record, { admission_id: 'ADM-1', patient: { mrn: '[PHI]', ward: 'ICU' }, diagnoses: [{ code: '[PHI]' }, { code: '[PHI]' }] });
  });

  test('redacts secret keys at any depth, in bindings as well as in the logged object', () => {
    const destination = memoryDestination();
    const logger = createLogger({ destination });
    logger.child({ token: 'bound-token' }).info({
      password: 'p0',
      odoo: { url: 'http://odoo', api_key: 'k1', apiKey: 'k2' },
      kafka: { sasl: { mechanism: 'plain', username: 'svc', password: 'p1' } },
      request: { headers: { authorization: 'Bearer abc', 'x-trace': 't' } },
      deep: { a: { b: { c: { d: { e: { f: { g: { secret: 's5' } } } } } } } },
      webhooks: [{ partner: 'ACME', secret: 's6' }],
    }, 'configured');

    const text = destination.text();
    for (const secret of ['bound-token', 'p0', 'k1', 'k2', 'p1', 'Bearer abc', 's5', 's6']) assert.ok(!text.includes(`"${secret}"`), `${secret} leaked: ${text}`);
    const [entry] = destination.entries();
    assert.equal(entry?.token, REDACTED);
    assert.deepEqual(entry?.kafka, { sasl: { mechanism: 'plain', username: 'svc', password: REDACTED } });
    assert.deepEqual(entry?.request, { headers: { authorization: REDACTED, 'x-trace': 't' } });
    assert.deepEqual(entry?.webhooks, [{ partner: 'ACME', secret: REDACTED }]);
  });
  test('redacts inside frozen configuration and errors, keeping errors serialized as errors', () => {
    const destination = memoryDestination();
    const logger = createLogger({ destination });
    const config = Object.freeze({ odoo: Object.freeze({ url: 'http://odoo', password: 'frozen-pw' }) });
    const error = new LifelineError('LL_CONFIG_INVALID', 'odoo refused the login', { details: { login: 'svc', password: 'err-pw' } });
    logger.error({ config, err: error }, 'startup failed');

    const text = destination.text();
    assert.ok(!text.includes('frozen-pw') && !text.includes('err-pw'), text);
    const [entry] = destination.entries();
    assert.deepEqual(entry?.config, { odoo: { url: 'http://odoo', password: REDACTED } });
    const err = entry?.err as Record<string, unknown>;
    assert.equal(err.message, 'odoo refused the login');
    assert.equal(err.code, 'LL_CONFIG_INVALID');
    assert.match(String(err.stack), /LifelineError: odoo refused the login/);
    assert.deepEqual(err.details, { login: 'svc', password: REDACTED });
    assert.equal(error.details.password, 'err-pw', 'the logged error itself is untouched');
    assert.equal(config.odoo.password, 'frozen-pw');
  });

  test('a cyclic object is logged without hanging', () => {
    const destination = memoryDestination();
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    createLogger({ destination }).info({ cyclic }, 'cyclic');
    assert.equal(destination.entries().length, 1);
  });
});

describe('kafkaLogCreator', () => {
  const entryAt = (level: number, message: string, fields: Record<string, unknown> = {}) => ({
    namespace: 'Consumer', level, label: 'L', log: { timestamp: new Date().toISOString(), logger: 'kafkajs', message, ...fields },
  });

  test('maps kafkajs levels to pino levels and logs context under kafka, as a kafkajs child', () => {
    const destination = memoryDestination();
    const logKafka = kafkaLogCreator(createLogger({ destination, level: 'debug' }))(logLevel.DEBUG);
    logKafka(entryAt(logLevel.ERROR, 'Crash: KafkaJSNumberOfRetriesExceeded', { groupId: 'charge_dedup', retryCount: 5 }));
    logKafka(entryAt(logLevel.WARN, 'Rebalancing'));
    logKafka(entryAt(logLevel.INFO, 'Starting'));
    logKafka(entryAt(logLevel.DEBUG, 'Fetching'));
    logKafka(entryAt(logLevel.NOTHING, 'never'));

    const entries = destination.entries();
    assert.deepEqual(entries.map((entry) => [entry.level, entry.msg]), [
      ['error', 'Crash: KafkaJSNumberOfRetriesExceeded'], ['warn', 'Rebalancing'], ['debug', 'Starting'], ['debug', 'Fetching'],
    ]);
    assert.equal(entries[0]?.component, 'kafkajs');
    assert.equal(entries[0]?.namespace, 'Consumer');
    assert.deepEqual(entries[0]?.kafka, { groupId: 'charge_dedup', retryCount: 5 });
    assert.equal(entries[1]?.kafka, undefined, 'no empty kafka object when there is no context');
  });

  test('broker error answers the caller handles are debug detail, lost connections warnings, other errors errors', () => {
    const destination = memoryDestination();
    const logKafka = kafkaLogCreator(createLogger({ destination, level: 'debug' }))(logLevel.DEBUG);
    const at = (namespace: string, message: string) => ({ ...entryAt(logLevel.ERROR, message, { error: 'x' }), namespace });
    logKafka(at('Connection', 'Response CreateTopics(key: 19, version: 3)'));
    logKafka(at('Connection', 'Response Metadata(key: 3, version: 6)'));
    logKafka(at('Connection', 'Connection error: connect ECONNREFUSED 127.0.0.1:9092'));
    logKafka(at('BrokerPool', 'Failed to connect to seed broker, trying another broker from the list'));
    logKafka(at('Consumer', 'Crash: KafkaJSNumberOfRetriesExceeded'));
    assert.deepEqual(destination.entries().map((entry) => entry.level), ['debug', 'debug', 'warn', 'warn', 'error']);
  });

  test('the pino level still applies, and secrets in kafkajs context are redacted', () => {
    const destination = memoryDestination();
    const logKafka = kafkaLogCreator(createLogger({ destination, level: 'info' }))(logLevel.DEBUG);
    logKafka(entryAt(logLevel.DEBUG, 'Fetching'));
    logKafka(entryAt(logLevel.WARN, 'Connecting', { sasl: { mechanism: 'plain', password: 'hunter2' } }));
    const entries = destination.entries();
    assert.equal(entries.length, 1);
    assert.deepEqual(entries[0]?.kafka, { sasl: { mechanism: 'plain', password: REDACTED } });
  });
});
