import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** A long-running JVM we start detached, remembered by a pid file, logging to a file. */
export interface ManagedProcess {
  readonly name: string;
  readonly pidFile: string;
  readonly logFile: string;
}

export class InfraError extends Error {
  override readonly name = 'InfraError';
}

export function readPid(proc: ManagedProcess): number | undefined {
  if (!existsSync(proc.pidFile)) return undefined;
  const pid = Number(readFileSync(proc.pidFile, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

export function isAlive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function runningPid(proc: ManagedProcess): number | undefined {
  const pid = readPid(proc);
  return isAlive(pid) ? pid : undefined;
}

export function startDetached(proc: ManagedProcess, command: string, args: string[], cwd: string): number {
  mkdirSync(dirname(proc.pidFile), { recursive: true });
  mkdirSync(dirname(proc.logFile), { recursive: true });
  const out = openSync(proc.logFile, 'a');
  const child = spawn(command, args, { cwd, detached: true, stdio: ['ignore', out, out] });
  closeSync(out);
  if (child.pid === undefined) throw new InfraError(`${proc.name}: could not start ${command}`);
  child.unref();
  writeFileSync(proc.pidFile, `${child.pid}\n`);
  return child.pid;
}

/** SIGTERM, wait for a clean exit, SIGKILL after the grace period. */
export async function stopProcess(proc: ManagedProcess, graceMs = 30_000): Promise<boolean> {
  const pid = readPid(proc);
  if (!isAlive(pid) || pid === undefined) {
    rmSync(proc.pidFile, { force: true });
    return false;
  }
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(100);
  if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  while (isAlive(pid)) await sleep(50);
  rmSync(proc.pidFile, { force: true });
  return true;
}

export function portAnswers(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Fails with a clear message when another program already listens on a port we need. */
export async function assertPortFree(host: string, port: number, purpose: string): Promise<void> {
  const free = await new Promise<boolean>((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
  if (!free) {
    throw new InfraError(
      `port ${host}:${port} (${purpose}) is already in use by another program; stop it or choose another port ` +
        `(see the LIFELINE_*_PORT settings in README.md)`,
    );
  }
}

export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  opts: { timeoutMs: number; proc: ManagedProcess },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    if (!isAlive(readPid(opts.proc))) {
      throw new InfraError(`${opts.proc.name} exited while starting; see ${opts.proc.logFile}:\n${tail(opts.proc.logFile)}`);
    }
    await sleep(250);
  }
  throw new InfraError(`${what} did not answer within ${opts.timeoutMs / 1000}s; see ${opts.proc.logFile}`);
}

export function tail(file: string, lines = 15): string {
  if (!existsSync(file)) return '(no log)';
  return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
}

/** Major version of a java binary, or undefined when it cannot be run. */
export function javaMajorVersion(javaBin: string): number | undefined {
  const result = spawnSync(javaBin, ['-version'], { encoding: 'utf8' });
  if (result.error) return undefined;
  return parseJavaVersion(`${result.stderr}${result.stdout}`);
}

function parseJavaVersion(text: string): number | undefined {
  const match = /version "(\d+)(?:\.(\d+))?/.exec(text);
  if (!match?.[1]) return undefined;
  const major = Number(match[1]);
  return major === 1 && match[2] ? Number(match[2]) : major;
}

/**
 * Finds a java binary of at least the given major version: JAVA_HOME, the PATH's java,
 * then any JDK under /usr/lib/jvm (Debian's layout), newest first.
 */
export function findJava(minMajor: number): string | undefined {
  const candidates: string[] = [];
  if (process.env.JAVA_HOME) candidates.push(join(process.env.JAVA_HOME, 'bin', 'java'));
  candidates.push('java');
  const jvmRoot = '/usr/lib/jvm';
  if (existsSync(jvmRoot)) {
    for (const entry of readdirSync(jvmRoot)) candidates.push(join(jvmRoot, entry, 'bin', 'java'));
  }
  let best: { bin: string; major: number } | undefined;
  for (const bin of candidates) {
    if (bin !== 'java' && !existsSync(bin)) continue;
    const major = javaMajorVersion(bin);
    if (major === undefined || major < minMajor) continue;
    if (bin === candidates[0] || bin === 'java') return bin; // the user's own choice wins when it is new enough
    if (!best || major > best.major) best = { bin, major };
  }
  return best?.bin;
}

export function requireMaven(): void {
  try {
    execFileSync('mvn', ['-v'], { stdio: 'ignore' });
  } catch {
    throw new InfraError('Apache Maven (mvn) is needed to fetch Kafka and the schema registry from Maven Central; install it (Debian: apt-get install maven)');
  }
}

export function runMaven(args: string[], what: string): void {
  requireMaven();
  try {
    execFileSync('mvn', ['-q', '-B', ...args], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  } catch (error) {
    const out = `${(error as { stdout?: string }).stdout ?? ''}${(error as { stderr?: string }).stderr ?? ''}`;
    const lines = out.split('\n').filter((line) => line.includes('ERROR')).slice(0, 8).join('\n');
    throw new InfraError(`Maven could not fetch ${what}:\n${lines}`);
  }
}
