import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import type { ComponentRegistry } from '../component/component-registry.ts';
import { LifelineError } from '../errors.ts';
import type { Topology } from '../topology/model.ts';

export interface WorkerPlan {
  readonly index: number;
  /** Component labels this worker runs. */
  readonly labels: readonly string[];
  /** Its /metrics port: the configured port + index, or 0 (any free port) when that is 0. */
  readonly httpPort: number;
}

/**
 * `lifeline run --workers N`: N processes on one host, so a topology uses more than one core.
 * Processors and sinks run in every worker: they are consumer groups, so Kafka spreads their
 * partitions over the workers (and moves them when one stops). Sources run in worker 0 only — a
 * webhook listens on one port, a file inbox and an Odoo cursor have one reader. Each worker claims
 * its own state directory slot. Worker i serves /metrics on the configured port + i.
 */
export function planWorkers(topology: Topology, registry: ComponentRegistry, workers: number, only: readonly string[], httpPort: number): WorkerPlan[] {
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) {
    throw new LifelineError('LL_CONFIG_INVALID', `--workers must be a whole number from 1 to 64, got ${workers}`);
  }
  const selected = only.length > 0 ? only : Object.keys(topology.components);
  for (const label of selected) {
    if (!topology.components[label]) throw new LifelineError('LL_CONFIG_INVALID', `--only names ${label}, which topology.yaml does not declare`);
  }
  const isSource = (label: string): boolean => registry.get((topology.components[label] as { type: string }).type).kind === 'source';
  const shared = selected.filter((label) => !isSource(label));
  return Array.from({ length: workers }, (_, index) => ({
    index,
    labels: index === 0 ? selected : shared,
    httpPort: httpPort === 0 ? 0 : httpPort + index,
  })).filter((plan) => plan.labels.length > 0);
}

/**
 * Starts the planned workers as child `lifeline run` processes and supervises them: SIGINT/SIGTERM
 * go to every worker, and the first worker to exit on its own stops the others and gives its exit
 * code (a process manager restarts the whole). Resolves with the exit code.
 */
export function superviseWorkers(plans: readonly WorkerPlan[], options: {
  topologyFile: string;
  sessionTimeoutMs: string;
  consolePort?: string;
  consoleHost: string;
  logger: Logger;
}): Promise<number> {
  const { logger } = options;
  const children = new Map<number, ChildProcess>();
  let stopping = false;
  let exitCode: number | undefined;
  return new Promise((resolveExit) => {
    const stopAll = (signal: NodeJS.Signals): void => {
      for (const child of children.values()) child.kill(signal);
    };
    for (const plan of plans) {
      const args = [process.argv[1] as string, 'run', '--topology', options.topologyFile, '--only', plan.labels.join(','),
        '--http-port', String(plan.httpPort), '--session-timeout-ms', options.sessionTimeoutMs,
        ...(plan.index === 0 && options.consolePort !== undefined ? ['--console-port', options.consolePort, '--console-host', options.consoleHost] : [])];
      // Its own process group: a Ctrl-C in the terminal reaches the supervisor only, which passes one
      // signal on (a worker given two would stop without waiting). A worker whose supervisor is gone stops itself.
      const child = spawn(process.execPath, [...process.execArgv, ...args], {
        stdio: 'inherit', detached: true, env: { ...process.env, LIFELINE_WORKER: String(plan.index), LIFELINE_SUPERVISOR_PID: String(process.pid) },
      });
      children.set(plan.index, child);
      logger.info({ worker: plan.index, pid: child.pid, components: plan.labels.length, httpPort: plan.httpPort }, 'worker started');
      child.on('exit', (code, signal) => {
        children.delete(plan.index);
        const result = code ?? (signal ? 128 : 1);
        if (!stopping) {
          stopping = true;
          exitCode = result === 0 ? 1 : result;
          logger.error({ worker: plan.index, code, signal }, 'a worker exited on its own; stopping the others');
          stopAll('SIGTERM');
        }
        if (children.size === 0) resolveExit(exitCode ?? 0);
        else if (stopping && result !== 0 && exitCode === 0) exitCode = result;
      });
    }
    const shutdown = (signal: NodeJS.Signals): void => {
      if (stopping) {
        stopAll('SIGKILL');
        return;
      }
      stopping = true;
      exitCode = 0;
      logger.info({ signal, workers: children.size }, 'stopping the workers');
      stopAll(signal);
    };
    process.on('SIGINT', shutdown);
    process.on('SIGTERM', shutdown);
  });
}

/** In a worker: stop (as on SIGTERM) when the supervisor that started it is gone. */
export function watchSupervisor(onGone: () => void): void {
  const supervisor = Number(process.env.LIFELINE_SUPERVISOR_PID ?? 0);
  if (!supervisor) return;
  const timer = setInterval(() => {
    if (process.ppid !== supervisor) {
      clearInterval(timer);
      onGone();
    }
  }, 1000);
  timer.unref();
}
