import type { TSchema } from '@sinclair/typebox';
import type { ComponentRegistry } from '../component/component-registry.ts';
import type { ComponentDefinition } from '../component/component.ts';
import { cell, describeKey, typeName, type SchemaShape } from './component-docs.ts';
import { TopologyFileSchema } from './topology-file-schema.ts';

/**
 * docs/topology.md and docs/topology.schema.json, generated from the schema that validates
 * topology.yaml (src/topology/topology-file-schema.ts) and from the registered components (their
 * connection kinds and config schemas), so the reference, the editor schema and validation cannot
 * drift apart. `lifeline docs topology --write` writes both; a unit test compares them.
 */

interface ObjectShape extends SchemaShape {
  readonly properties?: Readonly<Record<string, ObjectShape>>;
  readonly required?: readonly string[];
  readonly patternProperties?: Readonly<Record<string, ObjectShape>>;
  readonly additionalProperties?: boolean | ObjectShape;
  readonly anyOf?: readonly ObjectShape[];
}

const SECTIONS = TopologyFileSchema.properties as unknown as Record<string, ObjectShape>;

export function renderTopologyDocs(registry: ComponentRegistry): string {
  const kinds = [...registry.connectionKinds().values()];
  const lines = [
    '# topology.yaml reference',
    '',
    '<!-- Generated from the topology schema and the registered components by `lifeline docs topology --write`; do not edit by hand. -->',
    '',
    '`topology.yaml` declares everything one Lifeline application runs: how to reach Kafka, the schema',
    'registry and outside systems (`connections`), runtime settings, the topic catalogue (`topics`), and',
    'the components (`processors`, `connectors`) by label. `lifeline topology validate` checks it before',
    'anything connects; every problem names file, line, column and path, e.g.',
    '`topology.yaml:42:7 processors.charge_dedup.config.ttl: must match duration like 15m, 7d`.',
    'Component `config` keys are in [components.md](components.md). For completion and validation in an',
    'editor, point it at [topology.schema.json](topology.schema.json) (generated with this page); with the',
    'YAML language server, the first line of the file does it:',
    '',
    '```yaml',
    '# yaml-language-server: $schema=docs/topology.schema.json',
    '```',
    '',
    '| key | type | default | required | description |',
    '| --- | --- | --- | --- | --- |',
    ...rows(TopologyFileSchema as unknown as ObjectShape, '', false),
    '',
    '## connections',
    '',
    '`kafka` and `registry` are Lifeline\'s own. Every other key is a kind of connection that a',
    'registered connector declares with its own schema (the core names no outside system): the',
    'connector picks one by name (`connection: main`) and gets it validated, with its secrets resolved.',
    '',
    '| key | type | default | required | description |',
    '| --- | --- | --- | --- | --- |',
    ...rows(SECTIONS.connections as ObjectShape, 'connections', true),
    '',
  ];
  for (const kind of kinds.sort((a, b) => a.kind.localeCompare(b.kind))) {
    const users = registry.all().filter((definition) => definition.connections?.includes(kind)).map((definition) => `[\`${definition.type}\`](components.md#${definition.type})`);
    lines.push(
      `### connections.${kind.kind}`,
      '',
      `${kind.description} Declared by ${users.join(', ')}.`,
      '',
      '| key | type | default | required | description |',
      '| --- | --- | --- | --- | --- |',
      ...rows(kind.schema as unknown as ObjectShape, `connections.${kind.kind}.<name>`, true),
      '',
    );
  }
  lines.push(
    '## runtime',
    '',
    '| key | type | default | required | description |',
    '| --- | --- | --- | --- | --- |',
    ...rows(SECTIONS.runtime as ObjectShape, 'runtime', true),
    '',
    '## topics',
    '',
    'Topic names look like `<domain>.<entity>.<event>.v<major>` (lower case, e.g.',
    '`partner.service_charge.received.v1`), `ops.<name>.v<major>` for operational topics, or start with',
    '`_lifeline.` (internal). A component\'s dead-letter topic `ops.dlq.<label>.v1` belongs to the runtime',
    'and needs no declaration. A topic has one writer unless `shared_writers: true`.',
    '',
    '| key | type | default | required | description |',
    '| --- | --- | --- | --- | --- |',
    ...rows(SECTIONS.topics as ObjectShape, 'topics', true),
    '',
    '## processors',
    '',
    `Processors read and write topics only. Types: ${typesOf(registry, 'processor')}.`,
    '',
    '| key | type | default | required | description |',
    '| --- | --- | --- | --- | --- |',
    ...rows(SECTIONS.processors as ObjectShape, 'processors', true),
    '',
    '## connectors',
    '',
    `Sources bring records in, sinks write them out. Sources: ${typesOf(registry, 'source')}. Sinks: ${typesOf(registry, 'sink')}.`,
    '',
    '| key | type | default | required | description |',
    '| --- | --- | --- | --- | --- |',
    ...rows(SECTIONS.connectors as ObjectShape, 'connectors', true),
    '',
    '## Values: references and secrets',
    '',
    'String values may use `${VAR}`, `${VAR:-default}` and `${file:path}` (the file\'s contents, trimmed;',
    'relative to the topology file, like every path in it); `$$` is a literal `$`. Keys that carry',
    'secrets (`password`, `api_key`, `secret`, `secrets`, `token`, and names ending in `_password`,',
    '`_token`, …) accept only such references, never literal values. Names chosen by the author (topic',
    'names, labels, connection names, output names) are never taken for secret-bearing keys.',
    '',
    '## What `lifeline topology validate` checks',
    '',
    '- YAML syntax; unknown keys (with "did you mean"), types and enums everywhere — component `config`',
    '  against the component\'s own schema, whose defaults are applied, and `connections.<kind>` against',
    '  the schema of the connector that declares the kind;',
    '- unknown component types and connection kinds (naming the known ones); processors declared as',
    '  connectors and vice versa;',
    '- undeclared topics; outputs a component does not have, or required outputs left unmapped;',
    '- value schemas that are missing or do not compile; topic names; a topic with several writers',
    '  unless `shared_writers: true`; `retention` together with `compact`;',
    '- stateful components whose inputs are not co-partitioned (unless the component repartitions them);',
    '- labels and connection names (`^[a-z][a-z0-9_]*$`), broker addresses, URLs, TLS files.',
    '',
    'None of it connects to anything: `validate`, `describe` and `graph` work without Kafka.',
  );
  return `${lines.join('\n').trimEnd()}\n`;
}

function typesOf(registry: ComponentRegistry, kind: ComponentDefinition['kind']): string {
  const types = registry.all().filter((definition) => definition.kind === kind).map((definition) => `[\`${definition.type}\`](components.md#${definition.type})`);
  return types.length > 0 ? types.join(', ') : 'none registered';
}

/** Table rows for an object's keys, nested objects flattened to dotted paths and maps shown as `<name>`. */
function rows(schema: ObjectShape, prefix: string, descend: boolean): string[] {
  const map = schema.patternProperties ? Object.values(schema.patternProperties)[0] : undefined;
  if (map && descend) {
    const segment = prefix.startsWith('topics') ? '<topic>' : prefix.startsWith('connections.') ? '' : '<label>';
    return rows(map, segment ? `${prefix}.${segment}` : prefix, true);
  }
  const required = new Set(schema.required ?? []);
  const result: string[] = [];
  for (const [key, property] of Object.entries(schema.properties ?? {})) {
    const path = prefix ? `${prefix}.${key}` : key;
    const defaultValue = property.default === undefined ? '' : `\`${JSON.stringify(property.default)}\``;
    result.push(`| \`${path}\` | ${cell(typeName(property))} | ${defaultValue} | ${required.has(key) ? 'yes' : 'no'} | ${cell(describeKey(property))} |`);
    if (!descend) continue;
    const nested = property.properties ? property : property.anyOf?.find((member) => member.properties);
    if (nested?.properties) result.push(...rows(nested, path, true));
  }
  if (descend && typeof schema.additionalProperties === 'object' && prefix === 'connections') {
    result.push(`| \`connections.<kind>.<name>\` | mapping |  | no | ${cell(schema.additionalProperties.description ?? '')} |`);
  }
  return result;
}

/**
 * A JSON Schema of topology.yaml for editors (draft 2020-12): the file schema, each connection kind
 * a registered connector declares, and per component type its config schema (chosen by `type`),
 * so completion and validation in the editor know every key `lifeline topology validate` knows.
 */
export function topologyJsonSchema(registry: ComponentRegistry): Record<string, unknown> {
  const plain = <T>(schema: T): T => JSON.parse(JSON.stringify(schema)) as T;
  const root = plain(TopologyFileSchema) as unknown as Record<string, unknown> & { properties: Record<string, Record<string, unknown>> };
  const connections = root.properties.connections as Record<string, unknown> & { properties: Record<string, unknown> };
  for (const kind of registry.connectionKinds().values()) {
    connections.properties[kind.kind] = {
      type: 'object',
      description: kind.description,
      additionalProperties: plain(kind.schema as TSchema),
    };
  }
  connections.additionalProperties = false;
  const byType = (kinds: ReadonlyArray<ComponentDefinition['kind']>): Record<string, unknown> => {
    const definitions = registry.all().filter((definition) => kinds.includes(definition.kind));
    return {
      properties: { type: { enum: definitions.map((definition) => definition.type) } },
      allOf: definitions.map((definition) => ({
        if: { properties: { type: { const: definition.type } }, required: ['type'] },
        then: { properties: { config: { ...plain(definition.config as TSchema), description: definition.description } } },
      })),
    };
  };
  const entry = (section: string): Record<string, unknown> => {
    const record = root.properties[section] as { patternProperties: Record<string, Record<string, unknown>> };
    return Object.values(record.patternProperties)[0] as Record<string, unknown>;
  };
  Object.assign(entry('processors'), merge(entry('processors'), byType(['processor'])));
  Object.assign(entry('connectors'), merge(entry('connectors'), byType(['source', 'sink'])));
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://lifeline.invalid/topology.schema.json',
    title: 'Lifeline topology.yaml',
    description: 'Generated by `lifeline docs topology --write` from the topology schema and the registered components; see docs/topology.md.',
    ...root,
  };
}

function merge(entry: Record<string, unknown>, typed: Record<string, unknown>): Record<string, unknown> {
  const properties = entry.properties as Record<string, Record<string, unknown>>;
  const typeProperty = (typed.properties as Record<string, Record<string, unknown>>).type as Record<string, unknown>;
  return { ...entry, properties: { ...properties, type: { ...properties.type, ...typeProperty } }, allOf: typed.allOf };
}

export function renderTopologyJsonSchema(registry: ComponentRegistry): string {
  return `${JSON.stringify(topologyJsonSchema(registry), null, 2)}\n`;
}
