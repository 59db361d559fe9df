import type avro from 'avsc';
import { compileContract, type AvroSchemaJson } from '../kafka/avro-contract.ts';

/**
 * Avro values as the JSON operators read and write: unions unwrapped (as Lifeline decodes them, so
 * PHI paths reach through them), bytes and fixed as strings of byte-valued characters (the Avro
 * JSON encoding of bytes, which `fromJsonValue` reads back), records as plain objects.
 */
export function toJsonValue(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (Buffer.isBuffer(value)) return value.toString('latin1');
  if (Array.isArray(value)) return value.map(toJsonValue);
  if (typeof value === 'object') {
    const copy: Record<string, unknown> = {};
    for (const [key, field] of Object.entries(value)) copy[key] = toJsonValue(field);
    return copy;
  }
  return value;
}

/** JSON (as `toJsonValue` writes it, or as a person types it) to a value of `type`; invalid input is left for the encoder to explain. */
export function fromJsonValue(type: avro.Type, json: unknown): unknown {
  try {
    return type.clone(json, { coerceBuffers: true });
  } catch {
    return json; // AvroSerde.encode names the offending field
  }
}

/** PHI paths of a writer schema, from its `"phi": true` attributes (kept by the registry). */
export function phiPathsOfType(type: avro.Type): readonly string[] {
  return compileContract(type.schema({ exportAttrs: true }) as AvroSchemaJson).phiPaths;
}
