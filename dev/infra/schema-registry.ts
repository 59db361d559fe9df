import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { registryUrl, type LocalInfraSettings } from './settings.ts';
import type { ComponentStatus } from './kafka-broker.ts';
import {
  InfraError, assertPortFree, findJava, runMaven, runningPid, startDetached, stopProcess, waitUntil, type ManagedProcess,
} from './java-process.ts';

// Apicurio Registry 3.x is compiled for Java 21 (class file 65).
const REGISTRY_MIN_JAVA = 21;

export function registryProcess(s: LocalInfraSettings): ManagedProcess {
  return { name: 'schema-registry', pidFile: join(s.root, 'run', 'registry.pid'), logFile: join(s.root, 'logs', 'registry.log') };
}

/** Fetches Apicurio Registry's runnable Quarkus bundle (`apicurio-registry-app:<v>:tar.gz:all`) once. */
export function fetchRegistry(s: LocalInfraSettings): string {
  const dir = join(s.cacheDir, `apicurio-registry-${s.registryVersion}`);
  const marker = join(dir, '.complete');
  if (existsSync(marker)) return dir;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const download = join(s.cacheDir, 'downloads');
  runMaven(
    ['dependency:copy', `-Dartifact=io.apicurio:apicurio-registry-app:${s.registryVersion}:tar.gz:all`, `-DoutputDirectory=${download}`],
    `Apicurio Registry ${s.registryVersion}`,
  );
  const archive = join(download, `apicurio-registry-app-${s.registryVersion}-all.tar.gz`);
  execFileSync('tar', ['xzf', archive, '-C', dir]);
  rmSync(archive, { force: true });
  if (!existsSync(join(dir, 'quarkus-run.jar'))) throw new InfraError(`Apicurio bundle ${archive} has no quarkus-run.jar`);
  writeFileSync(marker, new Date().toISOString());
  return dir;
}

async function registryAnswers(s: LocalInfraSettings): Promise<boolean> {
  try {
    const response = await fetch(`${registryUrl(s)}/subjects`, { signal: AbortSignal.timeout(2000) });
    return response.ok;
  } catch {
    return false;
  }
}

export async function registryStatus(s: LocalInfraSettings): Promise<ComponentStatus> {
  const pid = runningPid(registryProcess(s));
  return {
    name: `apicurio-registry ${s.registryVersion}`, running: pid !== undefined, ...(pid !== undefined ? { pid } : {}),
    endpoint: registryUrl(s), answering: await registryAnswers(s),
  };
}

export async function startRegistry(s: LocalInfraSettings, log: (line: string) => void = () => undefined): Promise<boolean> {
  const proc = registryProcess(s);
  if (runningPid(proc) !== undefined) {
    await waitUntil(`schema registry on ${registryUrl(s)}`, () => registryAnswers(s), { timeoutMs: 60_000, proc });
    return false;
  }
  const java = findJava(REGISTRY_MIN_JAVA);
  if (!java) {
    throw new InfraError(
      `Java ${REGISTRY_MIN_JAVA}+ is needed to run Apicurio Registry ${s.registryVersion}; install one (e.g. Temurin 21 or 25 under /usr/lib/jvm) or set JAVA_HOME`,
    );
  }
  await assertPortFree(s.kafkaHost, s.registryPort, 'schema registry');
  await assertPortFree(s.kafkaHost, s.registryManagementPort, 'schema registry management');
  log(`Apicurio Registry ${s.registryVersion}: bundle from Maven Central (fetched on first use, then cached)`);
  const dir = fetchRegistry(s);
  const dataDir = join(s.root, 'registry');
  mkdirSync(dataDir, { recursive: true });
  log(`starting the schema registry on ${registryUrl(s)}`);
  startDetached(proc, java, [
    `-Xms64m`, `-Xmx${s.registryHeap}`,
    `-Dquarkus.http.host=${s.kafkaHost}`, `-Dquarkus.http.port=${s.registryPort}`,
    // Schemas must outlive a registry restart, or the ids inside stored records stop resolving.
    `-Dapicurio.datasource.url=jdbc:h2:file:${join(dataDir, 'registry')};DB_CLOSE_ON_EXIT=FALSE`,
    '-Dquarkus.log.console.json=false',
    // The management interface (health, metrics) is fixed at build time; keep it on loopback, next to the API.
    `-Dquarkus.management.host=${s.kafkaHost}`, `-Dquarkus.management.port=${s.registryManagementPort}`,
    '-jar', join(dir, 'quarkus-run.jar'),
  ], dir);
  await waitUntil(`schema registry on ${registryUrl(s)}`, () => registryAnswers(s), { timeoutMs: 120_000, proc });
  return true;
}

export async function stopRegistry(s: LocalInfraSettings): Promise<boolean> {
  return stopProcess(registryProcess(s), 30_000);
}
