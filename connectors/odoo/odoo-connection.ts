import { Type, type Static } from '@sinclair/typebox';
import { defineConnectionKind } from '../../src/component/component.ts';
import { httpUrlProblem, withoutCredentials } from '../../src/component/http-url.ts';

/**
 * `connections.odoo.<name>` in topology.yaml: the Odoo server a connector talks to. The Odoo
 * connectors declare this kind, so the core validates it before anything connects without knowing
 * what Odoo is, and hands it to them as `context.connections.odoo[name]`.
 */
export const OdooConnectionSchema = Type.Object({
  url: Type.String({ minLength: 1, description: 'Base URL of the Odoo server.' }),
  database: Type.String({ minLength: 1, description: 'Odoo database name.' }),
  username: Type.String({ minLength: 1, description: 'Odoo login.' }),
  password: Type.String({ description: 'API key or password; a ${ENV} or ${file:…} reference.' }),
  ca_file: Type.Optional(Type.String({ description: 'PEM file of a private CA to trust for an https:// url, besides the system\'s; relative to topology.yaml. Empty means none (e.g. "${ODOO_CA_FILE:-}").' })),
}, { additionalProperties: false });

export type OdooConnection = Static<typeof OdooConnectionSchema>;

export const odooConnectionKind = defineConnectionKind({
  kind: 'odoo',
  description: 'An Odoo server reached over XML-RPC (Odoo 8-18), by name: connectors pick one with `connection:`.',
  schema: OdooConnectionSchema,
  check: (connection) => {
    const problem = httpUrlProblem(connection.url);
    return problem ? [{ key: 'url', message: problem }] : [];
  },
  summary: (connection) => `${withoutCredentials(connection.url)} database ${connection.database}`,
});

/** The connections.odoo entries a connector received, typed (the core validated them against the schema above). */
export function odooConnections(connections: Readonly<Record<string, Readonly<Record<string, Readonly<Record<string, unknown>>>>>>): Readonly<Record<string, OdooConnection>> {
  return (connections[odooConnectionKind.kind] ?? {}) as Readonly<Record<string, OdooConnection>>;
}

