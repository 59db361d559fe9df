import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import type { CanonicalRecord } from '../../connectors/formats/canonical.ts';
import { LifelineError } from '../../src/errors.ts';
import { loadContract } from '../../src/kafka/avro-contract.ts';

/**
 * Shared by the fuzz tests: how many cases to run (LIFELINE_FUZZ_RUNS, default small enough for
 * `npm test`; `npm run fuzz` runs many more), seeds from the fixture corpus, byte-level mutations
 * that model what partners really send wrong, and the property every adapter must keep: a clean
 * LL_ error, or canonical records that encode with their Avro contracts.
 */

export function fuzzRuns(defaultRuns: number): number {
  const fromEnv = Number(process.env.LIFELINE_FUZZ_RUNS);
  return Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : defaultRuns;
}

/** A test's time limit: its own in the suite, none for a long run (LIFELINE_FUZZ_RUNS set). */
export function fuzzTimeout(defaultMs: number): number {
  return process.env.LIFELINE_FUZZ_RUNS ? Number.POSITIVE_INFINITY : defaultMs;
}

/** fast-check parameters: the run count; LIFELINE_FUZZ_SEED (and LIFELINE_FUZZ_PATH) replay a reported failure. */
export function fuzzParameters(defaultRuns: number): fc.Parameters<unknown> {
  const seed = Number(process.env.LIFELINE_FUZZ_SEED);
  const path = process.env.LIFELINE_FUZZ_PATH;
  return { numRuns: fuzzRuns(defaultRuns), includeErrorInReport: true, ...(Number.isInteger(seed) ? { seed } : {}), ...(path ? { path } : {}) };
}

/** Every fixture file of a format, as bytes (the public corpus and our own). */
export function seedFiles(predicate: (name: string) => boolean): Buffer[] {
  const files: Buffer[] = [];
  for (const dir of ['tests/fixtures/partner/own', 'tests/fixtures/partner/public/hl7v2', 'tests/fixtures/partner/public/fhir-r4', 'tests/fixtures/partner/public/csv']) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names.sort()) if (predicate(name)) files.push(readFileSync(join(dir, name)));
  }
  return files;
}

/** Tokens partners' content breaks on: separators, escapes, segment starts, BOMs, bad bytes. */
const TOKENS: readonly Buffer[] = [
  '|', '^', '~', '&', '\\', '\\T\\', '\\F\\', '\\S\\', '\\E\\', '\\R\\', '\\X0D\\', '\\X0A\\', '\\XC3\\', '\\X', '\\.br\\', '\\H\\', '\\Cxx\\',
  '\r', '\n', '\r\n', '\v', '\x1c', 'MSH|^~\\&|', 'FT1|', 'BHS|', 'BTS|7', 'FHS|', 'FTS|2', 'OBX|1|ST|', 'ZPI|1|x',
  ',', '"', '""', ',,,,', '{', '}', '[', ']', '":', 'null', '-1e309', '1e-7', '12.345', '"resourceType":"Bundle"',
  '\uFEFF', '\u0000', '\u2028', '\uD83D\uDE00', 'é',
].map((token) => Buffer.from(token, 'utf8'));
const RAW_BYTES: readonly Buffer[] = [Buffer.from([0xe9]), Buffer.from([0xff, 0xfe]), Buffer.from([0xc3]), Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from([0x80])];

type Mutation = (input: Buffer) => Buffer;

const position = (input: Buffer, fraction: number): number => Math.floor(fraction * (input.length + 1));

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.double({ min: 0, max: 1, noNaN: true }).map((at): Mutation => (input) => input.subarray(0, position(input, at))), // truncation
  fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 1, max: 64 })).map(([at, length]): Mutation => (input) => {
    const start = position(input, at);
    return Buffer.concat([input.subarray(0, start), input.subarray(start + length)]);
  }),
  fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.constantFrom(...TOKENS, ...RAW_BYTES)).map(([at, token]): Mutation => (input) => {
    const start = position(input, at);
    return Buffer.concat([input.subarray(0, start), token, input.subarray(start)]);
  }),
  fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 0, max: 255 })).map(([at, byte]): Mutation => (input) => {
    if (input.length === 0) return input;
    const copy = Buffer.from(input);
    copy[Math.min(copy.length - 1, position(input, at))] = byte;
    return copy;
  }),
  fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 1_000, max: 300_000 })).map(([at, size]): Mutation => (input) => {
    const start = position(input, at);
    return Buffer.concat([input.subarray(0, start), Buffer.alloc(size, 0x41), input.subarray(start)]); // a huge field
  }),
  fc.constant<Mutation>((input) => Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), input])), // a BOM
  fc.constant<Mutation>((input) => Buffer.from(input.toString('utf8'), 'latin1')), // declared UTF-8, re-encoded as Latin-1
  fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true })).map(([from, to]): Mutation => (input) => {
    const start = position(input, Math.min(from, to));
    const end = position(input, Math.max(from, to));
    return Buffer.concat([input.subarray(0, end), input.subarray(start, end), input.subarray(end)]); // a repeated stretch
  }),
);

/** A seed with up to `max` mutations applied. */
export function mutated(seeds: readonly Buffer[], max = 6): fc.Arbitrary<Buffer> {
  return fc.tuple(fc.constantFrom(...seeds), fc.array(mutation, { maxLength: max })).map(([seed, mutations]) => mutations.reduce((bytes, apply) => apply(bytes), seed));
}

/** Nested arrays/objects this deep (a JSON bomb): must end in a clean error, not a stack overflow. */
export const deepJson: fc.Arbitrary<Buffer> = fc.tuple(fc.integer({ min: 100, max: 200_000 }), fc.boolean()).map(([depth, objects]) => Buffer.from(objects
  ? `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`
  : `{"resourceType":"ChargeItem","extension":${'['.repeat(depth)}${']'.repeat(depth)}}`));

const contracts = new Map<string, ReturnType<typeof loadContract>>();
function contractOf(kind: string): ReturnType<typeof loadContract> {
  let contract = contracts.get(kind);
  if (!contract) {
    contract = loadContract(`schemas/partner/${kind}.avsc`);
    contracts.set(kind, contract);
  }
  return contract;
}

/**
 * The property every adapter keeps: `run` either returns canonical records, each valid against its
 * Avro contract (so the source can produce it), or throws a LifelineError with an LL_ code of the
 * allowed kinds — never a TypeError, a RangeError or anything a process would die of.
 */
export function cleanOutcome(run: () => readonly CanonicalRecord[], allowedCodes: readonly string[]): 'records' | 'rejected' {
  let records: readonly CanonicalRecord[];
  try {
    records = run();
  } catch (error) {
    if (!(error instanceof LifelineError)) throw new Error(`not a clean error: ${(error as Error)?.constructor?.name}: ${(error as Error)?.message}`, { cause: error });
    assert.ok(allowedCodes.includes(error.code), `unexpected code ${error.code}: ${error.message}`);
    assert.ok(error.message.length > 0);
    return 'rejected';
  }
  for (const record of records) {
    const paths: string[] = [];
    const valid = contractOf(record.kind).type.isValid(record.value, { errorHook: (path) => paths.push(path.join('.')) });
    assert.ok(valid, `${record.kind} does not match its Avro contract at ${paths.join(', ')}`);
  }
  return 'records';
}

export const FORMAT_CODES = ['LL_FORMAT_EMPTY', 'LL_FORMAT_ENCODING', 'LL_FORMAT_HL7_INVALID', 'LL_FORMAT_FHIR_INVALID', 'LL_FORMAT_CSV_INVALID', 'LL_FORMAT_UNSUPPORTED'] as const;
