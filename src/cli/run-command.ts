import type { Command } from 'commander';
import { errorCode, errorMessage } from '../errors.ts';
import { createLogger } from '../observe/logger.ts';
import { LifelineRuntime } from '../runtime/lifeline-runtime.ts';
import { loadTopology } from '../topology/load-topology.ts';
import { buildComponentRegistry } from './component-list.ts';
import { embedConsole } from './console-command.ts';
import { planWorkers, superviseWorkers, watchSupervisor } from './run-workers.ts';

interface RunOptions {
  topology: string;
  only?: string;
  httpPort?: string;
  sessionTimeoutMs?: string;
  consolePort?: string;
  consoleHost: string;
  workers: string;
}

/** `lifeline run`: validate the topology (before connecting anywhere), then host its components until stopped. */
export function registerRunCommand(program: Command): void {
  program.command('run')
    .description('run the components of topology.yaml (all, or --only some) until SIGINT/SIGTERM')
    .option('--topology <file>', 'topology file', 'topology.yaml')
    .option('--only <labels>', 'comma-separated component labels to run in this process')
    .option('--http-port <port>', 'port of /metrics, /healthz, /readyz (overrides runtime.http_port; 0 = any free port)')
    .option('--session-timeout-ms <ms>', 'consumer group session timeout: how soon a crashed process\'s partitions move', '30000')
    .option('--console-port <port>', 'also serve the operators\' console on this port (as `lifeline console`; default: no console)', process.env.LIFELINE_CONSOLE_PORT)
    .option('--console-host <host>', 'address the embedded console listens on', '127.0.0.1')
    .option('--workers <n>', 'processes to run on this host, to use more than one core: processors and sinks in every one (Kafka spreads their partitions), sources in the first; worker i serves /metrics on the port + i', '1')
    .action(async (options: RunOptions) => {
      const registry = buildComponentRegistry();
      const topology = loadTopology(options.topology, registry);
      const logger = createLogger({ level: topology.runtime.logLevel, name: 'lifeline' });
      const only = options.only ? options.only.split(',').map((label) => label.trim()).filter(Boolean) : [];
      if (Number(options.workers) !== 1) {
        const plans = planWorkers(topology, registry, Number(options.workers), only, options.httpPort !== undefined ? Number(options.httpPort) : topology.runtime.httpPort);
        process.exitCode = await superviseWorkers(plans, {
          topologyFile: options.topology, sessionTimeoutMs: options.sessionTimeoutMs ?? '30000', consoleHost: options.consoleHost,
          ...(options.consolePort !== undefined ? { consolePort: options.consolePort } : {}), logger,
        });
        return;
      }
      const runtime = new LifelineRuntime({
        topology, registry, logger, only,
        ...(options.httpPort !== undefined ? { httpPort: Number(options.httpPort) } : {}),
        sessionTimeoutMs: Number(options.sessionTimeoutMs),
      });
      // Stop on the first SIGINT/SIGTERM (within the runtime's stop budget); a second one exits at once.
      let stopping = false;
      const stopWith = (code: number): Promise<number> => runtime.stop().then(() => code, () => code);
      const finished = new Promise<number>((resolve) => {
        const shutdown = (signal: NodeJS.Signals): void => {
          if (stopping) {
            logger.warn({ signal }, 'second signal: exiting without waiting');
            process.exit(130);
          }
          stopping = true;
          logger.info({ signal }, 'shutting down');
          void stopWith(0).then(resolve);
        };
        process.on('SIGINT', shutdown);
        process.on('SIGTERM', shutdown);
        watchSupervisor(() => shutdown('SIGTERM'));
        runtime.onFatal((error) => {
          if (stopping) return;
          stopping = true;
          logger.fatal({ err: errorMessage(error), code: errorCode(error) }, 'a component failed; stopping');
          void stopWith(1).then(resolve);
        });
      });
      // A start that fails for good has raised the fatal above (`finished` reports it); one that
      // failed before it could (the HTTP port taken, an unknown --only label) is reported here.
      const startFailure = await runtime.start().then(() => undefined, (error: unknown) => error);
      if (startFailure !== undefined && !stopping) {
        stopping = true;
        logger.fatal({ err: errorMessage(startFailure), code: errorCode(startFailure) }, 'lifeline could not start');
        process.exitCode = await stopWith(1);
      } else {
        const stopConsole = options.consolePort !== undefined && !stopping
          ? await embedConsole(options.topology, Number(options.consolePort), options.consoleHost, logger).catch((error: unknown) => {
            logger.error({ err: errorMessage(error), code: errorCode(error) }, 'the embedded console could not start; running without it');
            return undefined;
          })
          : undefined;
        process.exitCode = await finished;
        await stopConsole?.();
      }
      // Everything is closed; a client timer left behind must not keep a stopped process alive.
      setTimeout(() => process.exit(), 1_000).unref();
    });
}
