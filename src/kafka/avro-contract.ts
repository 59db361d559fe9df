import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import avro from 'avsc';
import { LifelineError, errorMessage } from '../errors.ts';

/** An Avro schema as Lifeline uses it: the JSON, the compiled type, and the fields marked `"phi": true`. */
export interface AvroContract {
  readonly file?: string;
  readonly fullName: string;
  readonly json: AvroSchemaJson;
  readonly type: avro.Type;
  /** Dotted field paths (`patient.mrn`) whose values must never be logged or shown unmasked. */
  readonly phiPaths: readonly string[];
}

export type AvroSchemaJson = string | { readonly [key: string]: unknown } | readonly unknown[];

export function compileContract(json: AvroSchemaJson, file?: string): AvroContract {
  let type: avro.Type;
  try {
    type = avro.Type.forSchema(json as avro.Schema, { wrapUnions: false });
  } catch (error) {
    throw new LifelineError('LL_SCHEMA_INVALID', `${file ?? 'schema'}: not a valid Avro schema: ${errorMessage(error)}`, { cause: error, details: { file } });
  }
  return Object.freeze({
    ...(file ? { file } : {}),
    fullName: type.name ?? type.typeName,
    json,
    type,
    phiPaths: Object.freeze(collectPhiPaths(json, '')),
  });
}

export function loadContract(file: string): AvroContract {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new LifelineError('LL_SCHEMA_NOT_FOUND', `schema file ${file} cannot be read: ${errorMessage(error)}`, { cause: error, details: { file } });
  }
  let json: AvroSchemaJson;
  try {
    json = JSON.parse(text) as AvroSchemaJson;
  } catch (error) {
    throw new LifelineError('LL_SCHEMA_INVALID', `${file}: not valid JSON: ${errorMessage(error)}`, { cause: error, details: { file } });
  }
  return compileContract(json, file);
}

/** Every `*.avsc` under a folder, sorted, as paths relative to `base`. */
export function findSchemaFiles(folder: string, base: string = process.cwd()): string[] {
  const found: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) walk(path);
      else if (entry.endsWith('.avsc')) found.push(relative(base, path));
    }
  };
  walk(folder);
  return found.sort();
}

function collectPhiPaths(schema: unknown, prefix: string): string[] {
  if (Array.isArray(schema)) return schema.flatMap((branch) => collectPhiPaths(branch, prefix));
  if (schema === null || typeof schema !== 'object') return [];
  const node = schema as Record<string, unknown>;
  if (node.type === 'record' && Array.isArray(node.fields)) {
    const paths: string[] = [];
    for (const field of node.fields as Array<Record<string, unknown>>) {
      const path = prefix ? `${prefix}.${String(field.name)}` : String(field.name);
      if (field.phi === true) paths.push(path);
      else paths.push(...collectPhiPaths(field.type, path));
    }
    return paths;
  }
  if (node.type === 'array') return collectPhiPaths(node.items, `${prefix}[]`);
  if (node.type === 'map') return collectPhiPaths(node.values, `${prefix}{}`);
  if (typeof node.type === 'object') return collectPhiPaths(node.type, prefix);
  return [];
}
