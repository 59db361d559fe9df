import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import type { ComponentRegistry } from '../component/component-registry.ts';
import type { ComponentDefinition } from '../component/component.ts';
import { DURATION_PATTERN } from '../component/duration.ts';

/**
 * docs/components.md, rendered from the component definitions: the config schema that validates
 * topology.yaml is also the reference, so the two cannot drift (a test compares the committed file
 * with this output).
 */
export function renderComponentDocs(registry: ComponentRegistry): string {
  const definitions = registry.all();
  const lines = [
    '# Component reference',
    '',
    '<!-- Generated from the component definitions by `lifeline docs components --write`; do not edit by hand. -->',
    '',
    'Every component is declared in `topology.yaml` by a label: processors under `processors:`, sources and',
    'sinks under `connectors:`. Each names its `type`, its `inputs` (topics), its `outputs` (output name → topic)',
    'and its `config`, which is checked against the table below by `lifeline topology validate`: unknown keys,',
    'wrong types and missing required keys are errors, and absent keys take their defaults.',
    '',
    '| type | kind | description |',
    '| --- | --- | --- |',
    ...definitions.map((definition) => `| [\`${definition.type}\`](#${definition.type}) | ${definition.kind} | ${cell(definition.description)} |`),
    '',
  ];
  for (const definition of definitions) lines.push(...renderComponent(definition));
  return `${lines.join('\n').trimEnd()}\n`;
}

function renderComponent(definition: ComponentDefinition): string[] {
  const outputs = definition.outputs.map((output) => (output.endsWith('?') ? `\`${output.slice(0, -1)}\` (optional)` : `\`${output}\``));
  const stores = storeNames(definition);
  const lines = [
    `## ${definition.type}`,
    '',
    definition.description,
    '',
    `- kind: ${definition.kind}`,
    `- outputs: ${outputs.length > 0 ? outputs.join(', ') : 'none'}`,
    `- stateful: ${!definition.stateful ? 'no' : definition.repartitions
      ? 'yes — it repartitions its inputs by key through an internal topic, so they may be keyed differently'
      : 'yes — its inputs must be co-partitioned (same partition count and key)'}`,
    `- stores: ${stores.length > 0 ? stores.map((name) => `\`${name}\``).join(', ') : 'none'}`,
    '',
  ];
  const properties = Object.entries((definition.config.properties ?? {}) as Record<string, TSchema>);
  if (properties.length === 0) {
    lines.push('No config keys.', '');
    return lines;
  }
  const required = new Set<string>((definition.config.required ?? []) as string[]);
  lines.push('| config key | type | default | required | description |', '| --- | --- | --- | --- | --- |');
  for (const [key, schema] of properties) {
    const shape = schema as SchemaShape;
    const defaultValue = shape.default === undefined ? '' : `\`${JSON.stringify(shape.default)}\``;
    lines.push(`| \`${key}\` | ${cell(typeName(shape))} | ${defaultValue} | ${required.has(key) ? 'yes' : 'no'} | ${cell(describeKey(shape))} |`);
  }
  lines.push('');
  return lines;
}

/** Store names with the config defaults; a store list that needs real config says so instead. */
function storeNames(definition: ComponentDefinition): string[] {
  if (!definition.stores) return [];
  try {
    const defaults = Value.Default(definition.config, {}) as Parameters<NonNullable<typeof definition.stores>>[0];
    return definition.stores(defaults).map((store) => store.name);
  } catch {
    return ['(depends on config)'];
  }
}

export interface SchemaShape {
  readonly type?: string;
  readonly const?: unknown;
  readonly pattern?: string;
  readonly anyOf?: readonly SchemaShape[];
  readonly items?: SchemaShape;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly default?: unknown;
  readonly description?: string;
  readonly examples?: unknown;
}

export function typeName(schema: SchemaShape): string {
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  if (schema.anyOf) return schema.anyOf.map(typeName).join(' or ');
  switch (schema.type) {
    case 'string':
      if (schema.pattern === DURATION_PATTERN) return 'duration (e.g. 15m, 7d)';
      return schema.pattern ? `string matching \`${schema.pattern}\`` : 'string';
    case 'integer':
    case 'number': {
      const bounds = [
        ...(schema.minimum === undefined ? [] : [`≥ ${schema.minimum}`]),
        ...(schema.maximum === undefined ? [] : [`≤ ${schema.maximum}`]),
      ];
      return `${schema.type}${bounds.length > 0 ? ` ${bounds.join(', ')}` : ''}`;
    }
    case 'array': return `list of ${schema.items ? typeName(schema.items) : 'values'}`;
    case 'object': return 'mapping';
    case 'boolean': return 'boolean';
    default: return schema.type ?? 'any';
  }
}

export function describeKey(schema: SchemaShape): string {
  const examples = Array.isArray(schema.examples) ? schema.examples : schema.examples === undefined ? [] : [schema.examples];
  const example = examples.length > 0 ? ` Example: ${examples.map((value) => `\`${typeof value === 'string' ? value : JSON.stringify(value)}\``).join(', ')}.` : '';
  return `${schema.description ?? ''}${example}`.trim();
}

/** Table cells are one line and must not close the cell early. */
export function cell(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').replace(/\|/g, '\\|');
}
