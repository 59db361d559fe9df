import type { TSchema } from '@sinclair/typebox';
import { Value, ValueErrorType, type ValueError } from '@sinclair/typebox/value';
import { DURATION_PATTERN } from '../component/duration.ts';
import { isSecretKey } from './config-references.ts';
import { pathFromPointer, type PathSegment, type PositionedYaml, type ProblemTarget } from './positioned-yaml.ts';
import type { TopologyProblem } from './topology-problem.ts';

/**
 * Validates `value` (found at `prefix` in the file) against a TypeBox schema and turns each error
 * into a problem that points at the YAML node and says what is expected in plain words.
 */
export function schemaProblems(schema: TSchema, value: unknown, prefix: readonly PathSegment[], yaml: PositionedYaml): TopologyProblem[] {
  const problems: TopologyProblem[] = [];
  const seen = new Set<string>();
  const add = (path: PathSegment[], message: string, target: ProblemTarget): void => {
    const problem = yaml.problem(path, message, target);
    const identity = `${problem.path}\u0000${message}`;
    if (seen.has(identity)) return;
    seen.add(identity);
    problems.push(problem);
  };
  const visit = (currentSchema: TSchema, currentValue: unknown, currentPrefix: readonly PathSegment[]): void => {
    for (const error of Value.Errors(currentSchema, currentValue)) {
      // A missing key also fails its own type check; "is required" says all there is to say.
      if (error.value === undefined && error.type !== ValueErrorType.ObjectRequiredProperty) continue;
      const path = pathFromPointer(error.path, currentValue, currentPrefix);
      if (error.type === ValueErrorType.Union) {
        const variant = matchingVariant(error.schema, error.value);
        // The value has the shape of exactly one variant (say, the mapping form of `tls`): explain against it.
        if (variant) {
          visit(variant, error.value, path);
          continue;
        }
      }
      add(path, explain(error, path), error.type === ValueErrorType.ObjectAdditionalProperties ? 'key' : 'value');
    }
  };
  visit(schema, value, prefix);
  return problems;
}

function explain(error: ValueError, path: readonly PathSegment[]): string {
  const schema = error.schema as SchemaShape;
  const got = describeValue(error.value, path);
  switch (error.type) {
    case ValueErrorType.ObjectAdditionalProperties: {
      const known = Object.keys(schema.properties ?? {});
      const key = String(path[path.length - 1]);
      const suggestion = closest(key, known);
      return `unknown key${suggestion ? ` (did you mean ${suggestion}?)` : ''}; expected one of: ${known.join(', ')}`;
    }
    case ValueErrorType.ObjectRequiredProperty: return 'is required';
    case ValueErrorType.Object: return `must be a mapping (got ${got})`;
    case ValueErrorType.Array: return `must be a list (got ${got})`;
    case ValueErrorType.String: return `must be a string (got ${got})`;
    case ValueErrorType.Integer: return `must be a whole number (got ${got})`;
    case ValueErrorType.Number: return `must be a number (got ${got})`;
    case ValueErrorType.Boolean: return `must be true or false (got ${got})`;
    case ValueErrorType.Literal: return `must be ${JSON.stringify(schema.const)} (got ${got})`;
    case ValueErrorType.StringPattern:
      return schema.pattern === DURATION_PATTERN ? `must match duration like 15m, 7d (got ${got})` : `must match ${schema.pattern} (got ${got})`;
    case ValueErrorType.StringMinLength: return schema.minLength === 1 ? 'must not be empty' : `must be at least ${schema.minLength} characters long`;
    case ValueErrorType.StringMaxLength: return `must be at most ${schema.maxLength} characters long`;
    case ValueErrorType.IntegerMinimum:
    case ValueErrorType.NumberMinimum: return `must be at least ${schema.minimum} (got ${got})`;
    case ValueErrorType.IntegerMaximum:
    case ValueErrorType.NumberMaximum: return `must be at most ${schema.maximum} (got ${got})`;
    case ValueErrorType.IntegerExclusiveMinimum:
    case ValueErrorType.NumberExclusiveMinimum: return `must be more than ${schema.exclusiveMinimum} (got ${got})`;
    case ValueErrorType.IntegerExclusiveMaximum:
    case ValueErrorType.NumberExclusiveMaximum: return `must be less than ${schema.exclusiveMaximum} (got ${got})`;
    case ValueErrorType.ArrayMinItems: return `must list at least ${schema.minItems} item${schema.minItems === 1 ? '' : 's'}`;
    case ValueErrorType.ArrayMaxItems: return `must list at most ${schema.maxItems} item${schema.maxItems === 1 ? '' : 's'}`;
    case ValueErrorType.ArrayUniqueItems: return 'must not list the same item twice';
    case ValueErrorType.Union: return `must be ${describeVariants(schema.anyOf ?? [])} (got ${got})`;
    default: return error.message;
  }
}

/** The parts of a JSON schema the messages read. */
interface SchemaShape {
  readonly type?: string;
  readonly const?: unknown;
  readonly pattern?: string;
  readonly properties?: Record<string, unknown>;
  readonly anyOf?: readonly SchemaShape[];
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly exclusiveMinimum?: number;
  readonly exclusiveMaximum?: number;
  readonly minItems?: number;
  readonly maxItems?: number;
}

type ValueKind = 'mapping' | 'list' | 'string' | 'number' | 'boolean' | 'null';

function kindOfValue(value: unknown): ValueKind {
  if (value === null || value === undefined) return 'null';
  if (Array.isArray(value)) return 'list';
  if (typeof value === 'object') return 'mapping';
  if (typeof value === 'number' || typeof value === 'bigint') return 'number';
  if (typeof value === 'boolean') return 'boolean';
  return 'string';
}

function kindOfSchema(schema: SchemaShape): ValueKind | undefined {
  if (schema.const !== undefined) return kindOfValue(schema.const);
  switch (schema.type) {
    case 'object': return 'mapping';
    case 'array': return 'list';
    case 'integer':
    case 'number': return 'number';
    case 'string': return 'string';
    case 'boolean': return 'boolean';
    case 'null': return 'null';
    default: return undefined;
  }
}

function matchingVariant(schema: TSchema, value: unknown): TSchema | undefined {
  const variants = ((schema as SchemaShape).anyOf ?? []) as readonly SchemaShape[];
  if (variants.every((variant) => variant.const !== undefined)) return undefined;
  const kind = kindOfValue(value);
  const matching = variants.filter((variant) => kindOfSchema(variant) === kind);
  return matching.length === 1 ? (matching[0] as TSchema) : undefined;
}

function describeVariants(variants: readonly SchemaShape[]): string {
  if (variants.length > 0 && variants.every((variant) => variant.const !== undefined)) {
    return `one of: ${variants.map((variant) => String(variant.const)).join(', ')}`;
  }
  const words = variants.map((variant) => {
    if (variant.const !== undefined) return JSON.stringify(variant.const);
    switch (kindOfSchema(variant)) {
      case 'mapping': return 'a mapping';
      case 'list': return 'a list';
      case 'boolean': return 'true or false';
      case 'number': return 'a number';
      case 'string': return 'a string';
      default: return 'nothing';
    }
  });
  return words.length > 1 ? `${words.slice(0, -1).join(', ')} or ${words[words.length - 1]}` : (words[0] ?? 'something else');
}

/** How a wrong value is shown; values under secret keys never are. */
function describeValue(value: unknown, path: readonly PathSegment[]): string {
  const kind = kindOfValue(value);
  if (kind === 'mapping') return 'a mapping';
  if (kind === 'list') return 'a list';
  if (kind === 'null') return 'nothing';
  if (path.some((segment) => typeof segment === 'string' && isSecretKey(segment))) return `a ${kind}`;
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** A known key within two edits of a mistyped one (`guarantees` → `guarantee`). */
function closest(key: string, known: readonly string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const name of known) {
    const distance = editDistance(key, name);
    if (distance <= 2 && (!best || distance < best.distance)) best = { name, distance };
  }
  return best?.name;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const substitution = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] as number;
}
