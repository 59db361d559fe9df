import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { Logger } from 'pino';
import { DEFAULT_INCIDENT_SETTINGS, type IncidentSettings } from '../console/incident-watcher.ts';
import { startConsole } from '../console/console-server.ts';
import { LifelineError, errorMessage } from '../errors.ts';
import { createLogger } from '../observe/logger.ts';
import { AlertWebhook } from '../ops/alert-webhook.ts';
import { DEFAULT_INCIDENT_POLICY } from '../ops/incidents.ts';
import { durationMs } from '../ops/option-values.ts';
import { openOpsSession, parseInteger, topologyOption, type TopologyOptions } from './ops-session.ts';

interface ConsoleOptions extends TopologyOptions {
  port: string;
  host: string;
  identityHeader?: string;
  secureCookies?: boolean;
  alertWebhook?: string;
  publicUrl?: string;
  incidentQuiet?: string;
  incidentInterval?: string;
  incidentGrace?: string;
  lagThreshold?: string;
  incidents: boolean;
}

/**
 * Incidents and where their alerts go, from the options or the environment (the embedded console
 * of `lifeline run` reads the environment only). The webhook's secret is never an option: it is
 * LIFELINE_ALERT_WEBHOOK_SECRET or the file named by LIFELINE_ALERT_WEBHOOK_SECRET_FILE.
 */
export function incidentSettings(options: Partial<Pick<ConsoleOptions, 'alertWebhook' | 'publicUrl' | 'incidentQuiet' | 'incidentInterval' | 'incidentGrace' | 'lagThreshold' | 'incidents'>>, env: NodeJS.ProcessEnv = process.env): IncidentSettings | false {
  if (options.incidents === false || env.LIFELINE_INCIDENTS === 'off') return false;
  const url = options.alertWebhook ?? env.LIFELINE_ALERT_WEBHOOK_URL;
  let secret = env.LIFELINE_ALERT_WEBHOOK_SECRET;
  const secretFile = env.LIFELINE_ALERT_WEBHOOK_SECRET_FILE;
  if (secret === undefined && secretFile) {
    try {
      secret = readFileSync(secretFile, 'utf8').trim();
    } catch (error) {
      throw new LifelineError('LL_SECRET_MISSING', `cannot read file ${secretFile} named by LIFELINE_ALERT_WEBHOOK_SECRET_FILE: ${errorMessage(error)}`, { cause: error });
    }
  }
  const publicUrl = options.publicUrl ?? env.LIFELINE_CONSOLE_PUBLIC_URL;
  const quiet = options.incidentQuiet ?? env.LIFELINE_INCIDENT_QUIET;
  const interval = options.incidentInterval ?? env.LIFELINE_INCIDENT_INTERVAL;
  const lag = options.lagThreshold ?? env.LIFELINE_INCIDENT_LAG_THRESHOLD;
  const grace = options.incidentGrace ?? env.LIFELINE_INCIDENT_GRACE;
  return {
    ...DEFAULT_INCIDENT_SETTINGS,
    policy: { ...DEFAULT_INCIDENT_POLICY, ...(quiet ? { quietMs: durationMs(quiet, '--incident-quiet') } : {}) },
    ...(interval ? { intervalMs: Math.max(500, durationMs(interval, '--incident-interval')) } : {}),
    ...(lag ? { lagThreshold: parseInteger(lag, '--lag-threshold', 1) } : {}),
    ...(grace ? { graceMs: durationMs(grace, '--incident-grace') } : {}),
    ...(url ? { webhook: new AlertWebhook({ url, ...(secret ? { secret } : {}), ...(publicUrl ? { consoleUrl: publicUrl } : {}) }) } : {}),
  };
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
    .option('--alert-webhook <url>', 'POST one alert per incident (opened, resolved) to this URL (LIFELINE_ALERT_WEBHOOK_URL; signed with LIFELINE_ALERT_WEBHOOK_SECRET[_FILE] when set)')
    .option('--public-url <url>', 'the console\'s address as operators reach it, for links in alerts (LIFELINE_CONSOLE_PUBLIC_URL)')
    .option('--incident-quiet <duration>', 'an incident resolves when none of its failures was seen for this long (LIFELINE_INCIDENT_QUIET, default 2m)')
    .option('--incident-interval <duration>', 'how often the flows and the SLA board are looked at for incidents (LIFELINE_INCIDENT_INTERVAL, default 10s)')
    .option('--incident-grace <duration>', 'a state (Odoo unreachable, not running, lag) counts once it has lasted this long, so restarts open no incident (LIFELINE_INCIDENT_GRACE, default 30s)')
    .option('--lag-threshold <records>', 'a component further behind than this is failing (LIFELINE_INCIDENT_LAG_THRESHOLD, default 1000)')
    .option('--no-incidents', 'do not track incidents nor send alerts (LIFELINE_INCIDENTS=off), e.g. on all consoles of an app but one')
    .addOption(topologyOption())
    .action(async (options: ConsoleOptions) => {
      const incidents = incidentSettings(options);
      const session = openOpsSession(options, 'console', { connections: true });
      const logger = createLogger({ level: session.topology.runtime.logLevel, name: 'lifeline-console' });
      const running = await startConsole({
        session, logger, host: options.host, port: parseInteger(options.port, '--port', 0),
        ...(options.identityHeader ? { trustedIdentityHeader: options.identityHeader.toLowerCase() } : {}),
        ...(options.secureCookies ? { secureCookies: true } : {}),
        incidents,
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
  const incidents = incidentSettings({});
  const session = openOpsSession({ topology: topologyFile }, 'run console', { connections: true });
  const running = await startConsole({ session, logger, host, port, incidents });
  logger.info({ url: running.url }, `lifeline console at ${running.url}`);
  return async () => {
    await running.close().catch(() => undefined);
    await session.close();
  };
}
