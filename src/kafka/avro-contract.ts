import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
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
  return compileContract(extendBase(json, file, [resolve(file)]), file);
}

/** The key of a record schema that adds fields to the record of another schema file (relative path). */
export const EXTENDS_ATTRIBUTE = 'lifeline.extends';

/**
 * A record schema with `"lifeline.extends": "<file>"` is that file's record with this one's name,
 * namespace and doc and its fields appended: an enriched event declares only what enrichment adds
 * (which must be optional, with defaults) and stays in step with the event it enriches. The result
 * is a plain Avro schema; the attribute is not kept.
 */
function extendBase(json: AvroSchemaJson, file: string, chain: readonly string[]): AvroSchemaJson {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return json;
  const node = json as Record<string, unknown>;
  const baseFile = node[EXTENDS_ATTRIBUTE];
  if (baseFile === undefined) return json;
  const fail = (message: string): never => {
    throw new LifelineError('LL_SCHEMA_INVALID', `${file}: ${EXTENDS_ATTRIBUTE}: ${message}`, { details: { file } });
  };
  if (typeof baseFile !== 'string' || node.type !== 'record' || !Array.isArray(node.fields)) fail('goes on a record schema and names a schema file');
  const basePath = resolve(dirname(file), baseFile as string);
  if (chain.includes(basePath)) fail(`${baseFile as string} extends itself (${chain.join(' → ')})`);
  let baseText: string;
  try {
    baseText = readFileSync(basePath, 'utf8');
  } catch (error) {
    return fail(`${baseFile as string} cannot be read: ${errorMessage(error)}`);
  }
  let base: Record<string, unknown>;
  try {
    base = extendBase(JSON.parse(baseText) as AvroSchemaJson, basePath, [...chain, basePath]) as Record<string, unknown>;
  } catch (error) {
    if (error instanceof LifelineError) throw error;
    return fail(`${baseFile as string} is not valid JSON: ${errorMessage(error)}`);
  }
  if (base === null || typeof base !== 'object' || base.type !== 'record' || !Array.isArray(base.fields)) fail(`${baseFile as string} is not a record schema`);
  const baseFields = base.fields as Array<Record<string, unknown>>;
  const ownFields = node.fields as Array<Record<string, unknown>>;
  const clash = ownFields.find((field) => baseFields.some((baseField) => baseField.name === field.name));
  if (clash) fail(`field ${String(clash.name)} is already a field of ${baseFile as string}`);
  const { [EXTENDS_ATTRIBUTE]: _omitted, ...own } = node;
  return { ...own, fields: [...baseFields, ...ownFields] };
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
