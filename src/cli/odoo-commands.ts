import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { OdooClient } from '../../connectors/odoo/odoo-client.ts';
import { odooConnections, type OdooConnection } from '../../connectors/odoo/odoo-connection.ts';
import { checkOdooSetup, checkProblems, formatCheck, parseSeedFile, seedOdoo, type OdooComponent } from '../../connectors/odoo/odoo-setup.ts';
import { LifelineError } from '../errors.ts';
import { EXIT_CODES, runOpsCommand, topologyOption, type TopologyOptions } from './ops-session.ts';

/**
 * `lifeline odoo check`: is this Odoo ready for the topology's Odoo sinks and sources (models,
 * fields, links, access rights, and with --seed the reference records), each problem with its fix.
 * `lifeline odoo seed --from FILE`: creates the reference partners, products and custom fields a
 * topology expects, idempotently by external id (as an administrator: ODOO_SEED_USERNAME /
 * ODOO_SEED_API_KEY, else the topology's connection).
 */
export function registerOdooCommands(program: Command): void {
  const odoo = program.command('odoo').description('check and prepare the Odoo a topology writes to');

  odoo.command('check')
    .description('log in as the configured user and check, per Odoo sink and source, every model, field, link and access right it needs (and with --seed the reference records), printing the fix for each problem; exit 1 when anything is missing')
    .addOption(topologyOption())
    .option('--seed <file>', 'also check that the seed file\'s partners and products exist')
    .action(async (options: TopologyOptions & { seed?: string }) => {
      await runOpsCommand(options, 'odoo check', async (session) => {
        const seed = options.seed ? parseSeedFile(readFileSync(options.seed, 'utf8'), options.seed) : undefined;
        const connections = odooConnections(session.topology.connections);
        const byConnection = new Map<string, OdooComponent[]>();
        for (const component of Object.values(session.topology.components)) {
          if (component.type !== 'odoo_sink' && component.type !== 'odoo_source') continue;
          const name = String(component.config.connection);
          byConnection.set(name, [...(byConnection.get(name) ?? []), { label: component.label, type: component.type, config: component.config }]);
        }
        if (byConnection.size === 0 && seed) byConnection.set(Object.keys(connections)[0] ?? 'main', []);
        let problems = 0;
        for (const [name, components] of byConnection) {
          const connection = connectionNamed(connections, name);
          const client = OdooClient.fromConnection(connection, { timeoutMs: 30_000 });
          try {
            const sections = await checkOdooSetup(client, connection.username, components, seed);
            process.stdout.write(formatCheck(sections));
            problems += checkProblems(sections).length;
          } finally {
            client.close();
          }
        }
        return problems === 0 ? EXIT_CODES.ok : EXIT_CODES.failed;
      });
    });

  odoo.command('seed')
    .description('create the seed file\'s partners, products and custom fields in Odoo, idempotently by external id (a demo or test database; run as an administrator via ODOO_SEED_USERNAME and ODOO_SEED_API_KEY)')
    .requiredOption('--from <file>', 'the seed file (YAML: module, partners, products, fields)')
    .option('--connection <name>', 'the connections.odoo entry to use', 'main')
    .addOption(topologyOption())
    .action(async (options: TopologyOptions & { from: string; connection: string }) => {
      await runOpsCommand(options, 'odoo seed', async (session) => {
        const seed = parseSeedFile(readFileSync(options.from, 'utf8'), options.from);
        const connection = connectionNamed(odooConnections(session.topology.connections), options.connection);
        const username = process.env.ODOO_SEED_USERNAME ?? connection.username;
        const password = process.env.ODOO_SEED_API_KEY ?? connection.password;
        const client = OdooClient.fromConnection({ ...connection, username, password }, { timeoutMs: 60_000 });
        try {
          const report = await seedOdoo(client, seed);
          process.stdout.write(`seeded ${client.describe} from ${options.from}: ${report.created} created, ${report.adopted} adopted (existing, given the external id), ${report.updated} updated, ${report.unchanged} unchanged; ${report.fieldsCreated} custom fields created\n`);
        } finally {
          client.close();
        }
      });
    });
}

function connectionNamed(connections: Readonly<Record<string, OdooConnection>>, name: string): OdooConnection {
  const connection = connections[name];
  if (!connection) throw new LifelineError('LL_CONFIG_INVALID', `no Odoo connection named "${name}" under connections.odoo (known: ${Object.keys(connections).join(', ') || 'none'})`);
  return connection;
}
