import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Admin, Kafka } from 'kafkajs';
import { LifelineError } from '../../../src/errors.ts';
import { compileContract } from '../../../src/kafka/avro-contract.ts';
import { AvroSerde, subjectFor } from '../../../src/kafka/avro-serde.ts';
import { ensureTopics } from '../../../src/kafka/topic-admin.ts';
import { createTestTopics, infra, testKafka, uniqueName } from '../../../testing/harness.ts';

const chargeV1 = {
  type: 'record', name: 'LabCharge', namespace: 'lifeline.test',
  fields: [
    { name: 'charge_id', type: 'string' },
    { name: 'patient_mrn', type: 'string', phi: true },
    { name: 'amount_minor', type: 'long' },
    { name: 'currency', type: 'string' },
    { name: 'lines', type: { type: 'array', items: { type: 'record', name: 'Line', fields: [{ name: 'code', type: 'string' }, { name: 'qty', type: 'int' }] } } },
    { name: 'note', type: ['null', 'string'], default: null },
  ],
};
const chargeV2Compatible = { ...chargeV1, fields: [...chargeV1.fields, { name: 'facility', type: 'string', default: 'MAIN' }] };
const chargeV2AddedWithoutDefault = { ...chargeV1, fields: [...chargeV1.fields, { name: 'payer_id', type: 'string' }] };
const chargeV2TypeChange = { ...chargeV1, fields: chargeV1.fields.map((field) => (field.name === 'amount_minor' ? { ...field, type: 'string' } : field)) };

const sample = {
  charge_id: 'LAB1|ACME|MSG0001', patient_mrn: 'MRN-778812', amount_minor: 12_550, currency: 'EUR',
  lines: [{ code: 'CBC', qty: 1 }, { code: 'LIPID', qty: 2 }], note: null,
};

describe('AvroSerde against the real schema registry and broker', () => {
  let kafka: Kafka;
  let admin: Admin;
  let serde: AvroSerde;
  let registryUrl: string;

  before(async () => {
    ({ registryUrl } = await infra());
    kafka = await testKafka();
    admin = await createTestTopics(kafka, []);
    serde = new AvroSerde({ url: registryUrl });
  });
  after(async () => admin.disconnect());

  test('a record survives produce and consume, and its wire schema id resolves in the registry', async () => {
    const topic = uniqueName('test.charge.received.v1');
    // ensureTopics waits until the new topic's metadata is known (kafkajs's waitForLeaders can throw UNKNOWN_TOPIC_OR_PARTITION on a fresh broker).
    await ensureTopics(admin, [{ name: topic, partitions: 1 }]);
    const id = await serde.register(topic, compileContract(chargeV1));

    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ key: sample.charge_id, value: await serde.encode(topic, sample) }] });
    await producer.disconnect();

    const consumer = kafka.consumer({ groupId: uniqueName('test-group') });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const received = await new Promise<Buffer>((resolve) => {
      void consumer.run({ eachMessage: async ({ message }) => resolve(message.value as Buffer) });
    });
    await consumer.disconnect();

    assert.equal(received[0], 0, 'magic byte');
    assert.equal(received.readInt32BE(1), id, 'schema id in the wire format');
    const decoded = await new AvroSerde({ url: registryUrl }).decode(received); // a fresh serde: nothing cached
    assert.deepEqual(plain(decoded.value), sample);
    assert.equal(decoded.schemaId, id);

    const response = await fetch(`${registryUrl}/schemas/ids/${id}`);
    assert.equal(response.status, 200);
    const body = (await response.json()) as { schema: string };
    assert.equal(JSON.parse(body.schema).name, 'LabCharge');
    const config = (await (await fetch(`${registryUrl}/config/${subjectFor(topic)}`)).json()) as { compatibilityLevel: string };
    assert.equal(config.compatibilityLevel, 'BACKWARD');
  });

  test('a BACKWARD-compatible change registers as a new version; old records still decode', async () => {
    const topic = uniqueName('test.charge.evolving.v1');
    const v1 = await serde.register(topic, compileContract(chargeV1));
    const oldBytes = await serde.encode(topic, sample);
    const v2 = await serde.register(topic, compileContract(chargeV2Compatible));
    assert.notEqual(v1, v2);
    const versions = (await (await fetch(`${registryUrl}/subjects/${subjectFor(topic)}/versions`)).json()) as number[];
    assert.equal(versions.length, 2);
    assert.deepEqual(plain((await serde.decode(oldBytes)).value), sample);
    const newBytes = await serde.encode(topic, { ...sample, facility: 'EAST' });
    assert.equal(newBytes.readInt32BE(1), v2);
  });

  test('an added field without a default is refused, naming the field and the rule', async () => {
    const topic = uniqueName('test.charge.breaking.v1');
    await serde.register(topic, compileContract(chargeV1));
    await assert.rejects(serde.register(topic, compileContract(chargeV2AddedWithoutDefault)), (error: unknown) => {
      assert.ok(error instanceof LifelineError);
      assert.equal(error.code, 'LL_SCHEMA_INCOMPATIBLE');
      assert.match(error.message, /lifeline\.test\.LabCharge\.payer_id/);
      assert.match(error.message, /BACKWARD/);
      assert.match(error.message, /without a default/);
      return true;
    });
  });

  test('a changed field type is refused, naming the field and both types', async () => {
    const topic = uniqueName('test.charge.breaking.v1');
    await serde.register(topic, compileContract(chargeV1));
    await assert.rejects(serde.register(topic, compileContract(chargeV2TypeChange)), /amount_minor changed type from long to string.*BACKWARD/);
  });

  test('the registry itself enforces BACKWARD on the subject, not only our local check', async () => {
    const topic = uniqueName('test.charge.registry.v1');
    await serde.register(topic, compileContract(chargeV1));
    const response = await fetch(`${registryUrl}/subjects/${subjectFor(topic)}/versions`, {
      method: 'POST',
      headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
      body: JSON.stringify({ schema: JSON.stringify(chargeV2AddedWithoutDefault) }),
    });
    assert.equal(response.status, 409);
  });

  test('invalid values name the offending field without echoing its value', async () => {
    const topic = uniqueName('test.charge.invalid.v1');
    await serde.register(topic, compileContract(chargeV1));
    await assert.rejects(serde.encode(topic, { ...sample, amount_minor: '12.50', patient_mrn: 12 }), (error: unknown) => {
      assert.ok(error instanceof LifelineError);
      assert.equal(error.code, 'LL_SERIALIZE_INVALID');
      assert.match(error.message, /amount_minor: expected long/);
      assert.match(error.message, /patient_mrn: expected string/);
      assert.doesNotMatch(error.message, /12\.50/);
      return true;
    });
  });

  test('bytes that are not Avro, and unknown schema ids, fail with stable codes', async () => {
    await assert.rejects(serde.decode(Buffer.from('{"json":true}')), { code: 'LL_DESERIALIZE_NOT_AVRO' });
    await assert.rejects(serde.decode(Buffer.alloc(0)), { code: 'LL_DESERIALIZE_NOT_AVRO' });
    const unknown = Buffer.from([0, 0x7f, 0xff, 0xff, 0x00, 0x02]);
    await assert.rejects(serde.decode(unknown), { code: 'LL_DESERIALIZE_UNKNOWN_SCHEMA' });
  });

  test('PHI fields are collected from the schema', () => {
    assert.deepEqual(compileContract(chargeV1).phiPaths, ['patient_mrn']);
  });
});

/** avsc decodes records into generated classes; compare their data only. */
function plain(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value));
}
