import { after, before } from 'node:test';
import { OdooClient } from '../connectors/odoo/odoo-client.ts';
import { startOdooSimulator, type OdooSimulator } from '../dev/odoo-simulator/odoo-simulator.ts';

/**
 * Registers before/after hooks for a test file: an Odoo simulator on a free port and a client
 * logged in to it, handed to `onStarted` (which usually assigns the file's own variables).
 */
export function useOdooSimulator(onStarted: (started: { simulator: OdooSimulator; odoo: OdooClient }) => void): void {
  let started: { simulator: OdooSimulator; odoo: OdooClient } | undefined;
  before(async () => {
    const simulator = await startOdooSimulator({ port: 0 });
    started = { simulator, odoo: new OdooClient({ url: simulator.url, database: simulator.database, ...simulator.credentials }) };
    onStarted(started);
  });
  after(async () => {
    started?.odoo.close();
    await started?.simulator.close();
  });
}
