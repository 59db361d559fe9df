import pino from 'pino';
import { Registry } from 'prom-client';
import type { ConnectorHealth, OutputRecord, SinkContext, SourceContext } from '../../../src/component/component.ts';
import type { OdooConnection } from '../../../connectors/odoo/odoo-connection.ts';
import type { OdooSimulator } from '../../../dev/odoo-simulator/odoo-simulator.ts';

/** A connector context made by hand, for driving odoo_source and odoo_sink without the runtime. */
export interface TestConnectorContext {
  readonly health: Array<{ state: ConnectorHealth; detail?: string }>;
  readonly forwarded: Array<{ output: string; record: OutputRecord }>;
  readonly abort: AbortController;
  readonly registry: Registry;
  readonly source: (cursor?: unknown) => SourceContext;
  readonly sink: () => SinkContext;
}

export function simulatorConnection(simulator: OdooSimulator): OdooConnection {
  return { url: simulator.url, database: simulator.database, ...simulator.credentials };
}

export function testConnectorContext(connection: OdooConnection, label = 'odoo_under_test'): TestConnectorContext {
  const health: Array<{ state: ConnectorHealth; detail?: string }> = [];
  const forwarded: Array<{ output: string; record: OutputRecord }> = [];
  const abort = new AbortController();
  const registry = new Registry();
  const base = {
    label,
    logger: pino({ level: process.env.LIFELINE_TEST_LOG ?? 'silent' }),
    signal: abort.signal,
    connections: { odoo: { main: connection } },
    metricsRegistry: registry,
    setHealth: (state: ConnectorHealth, detail?: string) => {
      const last = health[health.length - 1];
      if (!last || last.state !== state) health.push(detail === undefined ? { state } : { state, detail });
    },
  };
  return {
    health, forwarded, abort, registry,
    source: (cursor?: unknown) => ({ ...base, cursor }),
    sink: () => ({ ...base, forward: (output, record) => { forwarded.push({ output, record }); } }),
  };
}
