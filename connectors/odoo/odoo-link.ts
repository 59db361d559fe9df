import { LifelineError, errorCode, errorMessage } from '../../src/errors.ts';
import type { ConnectorContext } from '../../src/component/component.ts';
import { OdooClient } from './odoo-client.ts';
import { odooConnections } from './odoo-connection.ts';
import { OdooMetrics } from './odoo-metrics.ts';

/**
 * A connector's link to one Odoo: the client plus what every call reports — its duration, the
 * `lifeline_odoo_reachable` gauge, and the connector's health (`down` while Odoo cannot be
 * reached or refuses the login, `up` again at the first answer).
 */
export class OdooLink {
  readonly client: OdooClient;
  readonly metrics: OdooMetrics;

  constructor(private readonly context: ConnectorContext, connectionName: string, timeoutMs: number) {
    const declared = odooConnections(context.connections);
    const connection = declared[connectionName];
    if (!connection) {
      const known = Object.keys(declared);
      throw new LifelineError('LL_CONFIG_INVALID',
        `${context.label}: no Odoo connection named "${connectionName}" under connections.odoo (${known.length > 0 ? `known: ${known.join(', ')}` : 'none declared'})`);
    }
    this.client = OdooClient.fromConnection(connection, { timeoutMs, signal: context.signal });
    this.metrics = new OdooMetrics(context.metricsRegistry, context.label);
  }

  async call<T>(operation: string, fn: (client: OdooClient) => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      const result = await fn(this.client);
      this.metrics.answered(operation, (performance.now() - started) / 1000);
      this.context.setHealth('up');
      return result;
    } catch (error) {
      const code = errorCode(error);
      const unreachable = code === 'LL_ODOO_UNAVAILABLE' || code === 'LL_ODOO_PROTOCOL';
      this.metrics.failed(code, unreachable);
      if (unreachable || code === 'LL_ODOO_AUTH_FAILED' || code === 'LL_ODOO_ACCESS_DENIED' || code === 'LL_ODOO_TLS_UNTRUSTED') {
        this.context.setHealth('down', `Odoo ${this.client.describe}: ${errorMessage(error)}`.slice(0, 300));
      } else {
        // Odoo answered (with a fault about this call): the link itself is fine.
        this.metrics.answered(operation, (performance.now() - started) / 1000);
        this.context.setHealth('up');
      }
      throw error;
    }
  }

  close(): void {
    this.client.close();
  }
}
