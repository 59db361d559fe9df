import type { Command } from 'commander';
import type { Logger } from 'pino';
import { startConsole } from '../console/console-server.ts';
import { createLogger } from '../observe/logger.ts';
import { openOpsSession, parseInteger, topologyOption, type TopologyOptions } from './ops-session.ts';

interface ConsoleOptions extends TopologyOptions {
  port: string;
  host: string;
  identityHeader?: string;
  secureCookies?: boolean;
}

/**
 * `lifeline console`: the operators' console (web page and JSON API) for a topology. It reads
 * everything from Kafka and the registry and keeps nothing of its own; operators log in with the
 * identities and tokens of the operators file (LIFELINE_OPERATORS_FILE), as the CLI does.
 */
export function registerConsoleCommand(program: Command): void {
  program.command('console')
    .description('serve the operators\' console: flows, SLA board, trace, dead letters and replay, audit (same roles and audit as the CLI)')
    .option('--port <port>', 'port to listen on (0 = any free port)', process.env.LIFELINE_CONSOLE_PORT ?? '8080')
    .option('--host <host>', 'address to listen on (0.0.0.0 for all; put TLS in front)', '127.0.0.1')
    .option('--identity-header <name>', 'trust this header for the identity (set by a reverse proxy that verified the user, e.g. x-forwarded-user); roles still come from the operators file')
    .option('--secure-cookies', 'mark the session cookie Secure (served over TLS)')
    .addOption(topologyOption())
    .action(async (options: ConsoleOptions) => {
      const session = openOpsSession(options, 'console');
      const logger = createLogger({ level: session.topology.runtime.logLevel, name: 'lifeline-console' });
      const running = await startConsole({
        session, logger, host: options.host, port: parseInteger(options.port, '--port', 0),
        ...(options.identityHeader ? { trustedIdentityHeader: options.identityHeader.toLowerCase() } : {}),
        ...(options.secureCookies ? { secureCookies: true } : {}),
      });
      logger.info({ url: running.url }, `lifeline console at ${running.url}`);
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          void running.close().then(() => session.close()).then(resolve);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}

/**
 * The console embedded in `lifeline run --console-port N`: the same console, in the runtime's
 * process, for a single-process deployment (and `dev/start.sh`). Returns how to stop it.
 */
export async function embedConsole(topologyFile: string, port: number, host: string, logger: Logger): Promise<() => Promise<void>> {
  const session = openOpsSession({ topology: topologyFile }, 'run console');
  const running = await startConsole({ session, logger, host, port });
  logger.info({ url: running.url }, `lifeline console at ${running.url}`);
  return async () => {
    await running.close().catch(() => undefined);
    await session.close();
  };
}
