import type { Command } from 'commander';
import { createLogger } from '../observe/logger.ts';
import { LifelineRuntime } from '../runtime/lifeline-runtime.ts';
import { loadTopology } from '../topology/load-topology.ts';
import { buildComponentRegistry } from './component-list.ts';

interface RunOptions {
  topology: string;
  only?: string;
  httpPort?: string;
  sessionTimeoutMs?: string;
}

/** `lifeline run`: validate the topology (before connecting anywhere), then host its components until stopped. */
export function registerRunCommand(program: Command): void {
  program.command('run')
    .description('run the components of topology.yaml (all, or --only some) until SIGINT/SIGTERM')
    .option('--topology <file>', 'topology file', 'topology.yaml')
    .option('--only <labels>', 'comma-separated component labels to run in this process')
    .option('--http-port <port>', 'port of /metrics, /healthz, /readyz (overrides runtime.http_port; 0 = any free port)')
    .option('--session-timeout-ms <ms>', 'consumer group session timeout: how soon a crashed process\'s partitions move', '30000')
    .action(async (options: RunOptions) => {
      const registry = buildComponentRegistry();
      const topology = loadTopology(options.topology, registry);
      const logger = createLogger({ level: topology.runtime.logLevel, name: 'lifeline' });
      const only = options.only ? options.only.split(',').map((label) => label.trim()).filter(Boolean) : [];
      const runtime = new LifelineRuntime({
        topology, registry, logger, only,
        ...(options.httpPort !== undefined ? { httpPort: Number(options.httpPort) } : {}),
        sessionTimeoutMs: Number(options.sessionTimeoutMs),
      });
      const finished = new Promise<number>((resolve) => {
        const shutdown = (signal: string): void => {
          logger.info({ signal }, 'shutting down');
          void runtime.stop().then(() => resolve(0));
        };
        process.once('SIGINT', () => shutdown('SIGINT'));
        process.once('SIGTERM', () => shutdown('SIGTERM'));
        runtime.onFatal((error) => {
          logger.fatal({ err: error.message }, 'a component failed; stopping');
          void runtime.stop().then(() => resolve(1));
        });
      });
      await runtime.start();
      process.exitCode = await finished;
    });
}
