import type { Command } from 'commander';
import type { Message } from 'kafkajs';
import { LifelineError, errorMessage } from '../errors.ts';
import { fromJsonValue } from '../ops/record-json.ts';
import { withIngestHeaders } from '../component/record-headers.ts';
import { readPath } from '../component/value-path.ts';
import { EXIT_CODES, runOpsCommand, topologyOption, type TopologyOptions } from './ops-session.ts';

interface ProduceOptions extends TopologyOptions {
  envelope?: boolean;
  keyField?: string;
  key?: string;
  reason?: string;
}

/** What one input line becomes before it is sent. */
interface PreparedRecord {
  readonly line: number;
  readonly message: Message;
}

/**
 * `lifeline produce TOPIC`: JSON lines on stdin, each validated against the topic's registered
 * schema and encoded. Nothing is sent unless every line is valid, so a typo on line 900 does not
 * leave 899 records behind.
 */
export function registerProduceCommand(program: Command): void {
  program.command('produce')
    .description('read JSON lines from stdin, validate and encode each with the topic\'s registered Avro schema, and send them '
      + '(all or none). A line is the value, or with --envelope an object {key, value, headers} as `lifeline consume` prints it. '
      + 'Records get Lifeline\'s headers (correlation id, source, ingest time, traceparent). Operator role; audited')
    .summary('send JSON lines from stdin, validated and Avro-encoded')
    .argument('<topic>', 'the topic')
    .option('--envelope', 'each line is {"key": …, "value": {…}, "headers": {…}} instead of the bare value')
    .option('--key-field <path>', 'take the record key from this dotted field of the value')
    .option('--key <key>', 'use this key for every record')
    .option('--reason <text>', 'why (required; goes to the audit trail)')
    .addOption(topologyOption())
    .action(async (topic: string, options: ProduceOptions) => {
      await runOpsCommand(options, 'produce', async (session) => {
        if (!options.reason?.trim()) throw new LifelineError('LL_CONFIG_INVALID', '--reason "…" is required: the audit trail says why records were injected');
        const reason = options.reason.trim();
        const admin = await session.admin();
        if (!(await admin.listTopics()).includes(topic)) throw new LifelineError('LL_CONFIG_INVALID', `topic ${topic} does not exist on the cluster`);
        const operator = await session.authorise('produce', topic, { reason });
        const text = await readStdin();
        const serde = session.serde;
        await serde.schemaIdFor(topic);
        const type = await serde.typeFor(await serde.schemaIdFor(topic));
        const prepared: PreparedRecord[] = [];
        const problems: string[] = [];
        const lines = text.split('\n');
        for (let index = 0; index < lines.length; index++) {
          const raw = (lines[index] as string).trim();
          if (raw === '') continue;
          try {
            prepared.push({ line: index + 1, message: await prepare(raw, options, (json) => serde.encode(topic, fromJsonValue(type, json)), operator.identity) });
          } catch (error) {
            problems.push(`line ${index + 1}: ${errorMessage(error)}`);
          }
        }
        if (problems.length > 0) {
          for (const problem of problems.slice(0, 20)) console.error(`lifeline: ${problem}`);
          throw new LifelineError('LL_SERIALIZE_INVALID', `${problems.length} of ${prepared.length + problems.length} line(s) are invalid; nothing was sent`);
        }
        if (prepared.length === 0) throw new LifelineError('LL_CONFIG_INVALID', 'no records on stdin');
        await session.audited(operator, 'produce', topic, { reason, parameters: { records: prepared.length } }, async () => {
          const producer = session.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
          await producer.connect();
          try {
            for (let start = 0; start < prepared.length; start += 500) {
              await producer.send({ topic, acks: -1, messages: prepared.slice(start, start + 500).map((record) => record.message) });
              if (prepared.length > 500) session.progress(`sent ${Math.min(prepared.length, start + 500)}/${prepared.length}`);
            }
          } finally {
            await producer.disconnect();
          }
          return { value: prepared.length, detail: `${prepared.length} record(s) produced` };
        });
        process.stdout.write(`${prepared.length} record(s) produced to ${topic}\n`);
        return EXIT_CODES.ok;
      });
    });
}

async function prepare(raw: string, options: ProduceOptions, encode: (json: unknown) => Promise<Buffer>, identity: string): Promise<Message> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (error) {
    throw new LifelineError('LL_CONFIG_INVALID', `not JSON: ${errorMessage(error)}`);
  }
  let value: unknown = parsed;
  let key: string | null = options.key ?? null;
  let headers: Record<string, string> = {};
  if (options.envelope) {
    if (parsed === null || typeof parsed !== 'object' || !('value' in parsed)) throw new LifelineError('LL_CONFIG_INVALID', 'with --envelope a line must be an object with "value"');
    const envelope = parsed as { key?: unknown; value: unknown; headers?: unknown };
    value = envelope.value;
    if (envelope.key !== undefined && envelope.key !== null) key = String(envelope.key);
    if (envelope.headers !== undefined) {
      if (envelope.headers === null || typeof envelope.headers !== 'object') throw new LifelineError('LL_CONFIG_INVALID', '"headers" must be an object of strings');
      headers = Object.fromEntries(Object.entries(envelope.headers).map(([name, header]) => [name, String(header)]));
    }
  }
  if (options.keyField) {
    const field = readPath(value, options.keyField);
    if (field === undefined || field === null) throw new LifelineError('LL_CONFIG_INVALID', `the value has no ${options.keyField} for the key`);
    key = String(field);
  }
  return { key, value: await encode(value), headers: withIngestHeaders(headers, `lifeline-cli:${identity}`) };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
