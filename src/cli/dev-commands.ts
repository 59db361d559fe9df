import type { Command } from 'commander';

// dev/ (the Maven launcher, the Odoo simulator) loads only when one of these commands runs: `lifeline run` loads no dev code.
const localInfra = () => import('../../dev/infra/local-infra.ts');
const infraSettings = () => import('../../dev/infra/settings.ts');
const odooSimulator = () => import('../../dev/odoo-simulator/odoo-simulator.ts');

/** `lifeline dev up|down|status`: the local Kafka broker and schema registry. */
export function registerDevCommands(program: Command): void {
  const dev = program.command('dev').description('local infrastructure: a single-node Kafka (KRaft) and a schema registry');

  dev.command('up')
    .description('fetch (first run only), start and wait for Kafka and the schema registry; does nothing if they run')
    .option('--secure', 'Kafka with SASL_SSL only (SCRAM users admin and lifeline, a self-signed CA) and ACLs; use its own LIFELINE_HOME and ports (LIFELINE_KAFKA_PORT, LIFELINE_KAFKA_CONTROLLER_PORT, LIFELINE_REGISTRY_PORT) beside a plaintext one (same as LIFELINE_KAFKA_SECURE=1)')
    .action(async (options: { secure?: boolean }) => {
      if (options.secure) process.env.LIFELINE_KAFKA_SECURE = '1';
      const [{ infraUp }, { kafkaBootstrap, localInfraSettings, registryUrl }] = await Promise.all([localInfra(), infraSettings()]);
      const settings = localInfraSettings();
      const result = await infraUp(settings, (line) => console.error(`lifeline dev: ${line}`));
      const verb = result.startedKafka || result.startedRegistry ? 'up' : 'already up';
      console.log(`${verb} in ${result.seconds.toFixed(1)}s: kafka ${kafkaBootstrap(settings)}${settings.secure ? ' (SASL_SSL, ACLs)' : ''}, registry ${registryUrl(settings)}`);
      console.log(`logs and data: ${settings.root}`);
      if (settings.secure) {
        const { secureKafkaAccess } = await import('../../dev/infra/kafka-broker.ts');
        const access = secureKafkaAccess(settings);
        console.log(`TLS: connections.kafka.tls.ca_file = ${access.caFile}`);
        console.log(`SASL ${access.mechanism}: runtime user ${access.runtime.username}, admin user ${access.admin.username} (for \`lifeline apply\`); passwords in ${settings.root}/kafka/credentials.json`);
      }
    });

  dev.command('down')
    .description('stop the local Kafka and schema registry (data is kept unless --wipe)')
    .option('--wipe', 'then delete every topic and schema (the next `dev up` starts empty; the jar cache is kept)')
    .action(async (options: { wipe?: boolean }) => {
      const { infraDown, infraWipe } = await localInfra();
      const stopped = await infraDown();
      console.log(`kafka: ${stopped.kafka ? 'stopped' : 'was not running'}; registry: ${stopped.registry ? 'stopped' : 'was not running'}`);
      if (options.wipe) console.log(`wiped: ${(await infraWipe()).join(', ')}`);
    });

  dev.command('odoo')
    .description('run the Odoo simulator: Odoo 17\'s XML-RPC API over an in-memory healthcare database (Ctrl-C stops)')
    .option('--port <port>', 'port to listen on', '8069')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--database <name>', 'database name')
    .action(async (options: { port: string; host: string; database?: string }) => {
      const { startOdooSimulator } = await odooSimulator();
      const simulator = await startOdooSimulator({ port: Number(options.port), host: options.host, ...(options.database ? { database: options.database } : {}) });
      console.log(`odoo simulator on ${simulator.url}: database ${simulator.database}, user ${simulator.credentials.username}, API key ${simulator.credentials.password}`);
      console.log(`failure switches: POST ${simulator.url}/__simulator/control, state: GET ${simulator.url}/__simulator/state`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await simulator.close();
    });

  dev.command('status')
    .description('show whether the local Kafka and schema registry run and answer')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      const { infraStatus } = await localInfra();
      const status = await infraStatus();
      if (options.json) {
        console.log(JSON.stringify(status, null, 2));
      } else {
        for (const component of status) {
          const state = component.answering ? 'answering' : component.running ? 'running, not answering' : 'stopped';
          console.log(`${component.name.padEnd(26)} ${state.padEnd(24)} ${component.endpoint}${component.pid ? ` pid ${component.pid}` : ''}`);
        }
      }
      if (!status.every((component) => component.answering)) process.exitCode = 1;
    });
}
