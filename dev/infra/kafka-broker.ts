import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import { silenceNegativeTimeoutWarning } from '../../src/kafka/client.ts';
import { kafkaBootstrap, type LocalInfraSettings } from './settings.ts';
import {
  InfraError, assertPortFree, findJava, portAnswers, runMaven, runningPid, startDetached, stopProcess, waitUntil,
  type ManagedProcess,
} from './java-process.ts';

const POM = resolve(fileURLToPath(new URL('.', import.meta.url)), 'kafka-pom.xml');
const KAFKA_MIN_JAVA = 17;

export function kafkaProcess(s: LocalInfraSettings): ManagedProcess {
  return { name: 'kafka', pidFile: join(s.root, 'run', 'kafka.pid'), logFile: join(s.root, 'logs', 'kafka.stdout.log') };
}

export function kafkaJarsDir(s: LocalInfraSettings): string {
  return join(s.cacheDir, `kafka-${s.kafkaVersion}`);
}

/** Copies the broker, the tools and the log4j2 binding from Maven Central (through ~/.m2) once. */
export function fetchKafkaJars(s: LocalInfraSettings): string {
  const dir = kafkaJarsDir(s);
  const marker = join(dir, '.complete');
  if (existsSync(marker)) return dir;
  rmSync(dir, { recursive: true, force: true });
  runMaven(
    ['-f', POM, 'dependency:copy-dependencies', `-DoutputDirectory=${dir}`, '-DincludeScope=runtime',
      `-Dkafka.version=${s.kafkaVersion}`, `-Dlog4j.version=${s.log4jVersion}`],
    `Apache Kafka ${s.kafkaVersion}`,
  );
  writeFileSync(marker, new Date().toISOString());
  return dir;
}

function kafkaJava(): string {
  const java = findJava(KAFKA_MIN_JAVA);
  if (!java) throw new InfraError(`Java ${KAFKA_MIN_JAVA}+ is needed to run Kafka; install a JDK (Debian: apt-get install openjdk-17-jdk-headless) or set JAVA_HOME`);
  return java;
}

/** What a client of the secure broker needs (LIFELINE_KAFKA_SECURE=1). */
export interface SecureKafkaAccess {
  /** PEM of the self-signed CA that signed the broker's certificate. */
  readonly caFile: string;
  readonly admin: { readonly username: 'admin'; readonly password: string };
  readonly runtime: { readonly username: 'lifeline'; readonly password: string };
  /** The SASL mechanism of both users. */
  readonly mechanism: 'scram-sha-512';
}

function tlsDir(s: LocalInfraSettings): string {
  return join(s.root, 'kafka', 'tls');
}

/** The secure broker's users: random passwords made once, kept in <home>/kafka/credentials.json (mode 600). */
export function secureKafkaAccess(s: LocalInfraSettings): SecureKafkaAccess {
  const file = join(s.root, 'kafka', 'credentials.json');
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    const passwords = { admin: randomBytes(18).toString('base64url'), lifeline: randomBytes(18).toString('base64url') };
    writeFileSync(`${file}.partial`, `${JSON.stringify(passwords, null, 2)}\n`, { mode: 0o600 });
    renameSync(`${file}.partial`, file);
  }
  const passwords = JSON.parse(readFileSync(file, 'utf8')) as { admin: string; lifeline: string };
  return {
    caFile: join(tlsDir(s), 'ca.pem'),
    admin: { username: 'admin', password: passwords.admin },
    runtime: { username: 'lifeline', password: passwords.lifeline },
    mechanism: 'scram-sha-512',
  };
}

/**
 * A certificate authority and a broker certificate signed by it (for the broker's host, as DNS name
 * and IP), made once with the JDK's keytool: the keystore and truststore the broker uses, and
 * ca.pem for clients.
 */
function ensureCertificates(s: LocalInfraSettings, java: string, storePassword: string): void {
  const dir = tlsDir(s);
  if (existsSync(join(dir, 'broker.p12'))) return;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const keytool = isAbsolute(java) ? join(dirname(java), 'keytool') : 'keytool';
  const run = (args: string[], input?: string): string => execFileSync(keytool, args, { encoding: 'utf8', ...(input !== undefined ? { input } : {}), stdio: ['pipe', 'pipe', 'pipe'] });
  const store = (file: string) => ['-storetype', 'PKCS12', '-keystore', join(dir, file), '-storepass', storePassword];
  run(['-genkeypair', '-alias', 'ca', '-dname', 'CN=Lifeline local Kafka CA', '-keyalg', 'EC', '-groupname', 'secp256r1', '-validity', '3650', '-ext', 'bc:c', ...store('ca.p12')]);
  const caPem = run(['-exportcert', '-rfc', '-alias', 'ca', ...store('ca.p12')]);
  writeFileSync(join(dir, 'ca.pem'), caPem);
  run(['-genkeypair', '-alias', 'broker', '-dname', `CN=${s.kafkaHost}`, '-keyalg', 'EC', '-groupname', 'secp256r1', '-validity', '825', ...store('broker.partial.p12')]);
  const request = run(['-certreq', '-alias', 'broker', ...store('broker.partial.p12')]);
  const san = /^\d+\.\d+\.\d+\.\d+$/.test(s.kafkaHost) ? `SAN=ip:${s.kafkaHost},dns:localhost` : `SAN=dns:${s.kafkaHost},dns:localhost,ip:127.0.0.1`;
  const signed = run(['-gencert', '-alias', 'ca', '-rfc', '-validity', '825', '-ext', san, '-ext', 'eku=serverAuth,clientAuth', ...store('ca.p12')], request);
  writeFileSync(join(dir, 'broker.pem'), signed);
  run(['-importcert', '-noprompt', '-alias', 'ca', '-file', join(dir, 'ca.pem'), ...store('broker.partial.p12')]);
  run(['-importcert', '-noprompt', '-alias', 'broker', '-file', join(dir, 'broker.pem'), ...store('broker.partial.p12')]);
  run(['-importcert', '-noprompt', '-alias', 'ca', '-file', join(dir, 'ca.pem'), ...store('truststore.p12')]);
  renameSync(join(dir, 'broker.partial.p12'), join(dir, 'broker.p12'));
}

export function kafkaClasspath(s: LocalInfraSettings): string {
  return `${kafkaJarsDir(s)}/*`;
}

function listenerLines(s: LocalInfraSettings): string[] {
  if (!s.secure) {
    return [
      `listeners=PLAINTEXT://${s.kafkaHost}:${s.kafkaPort},CONTROLLER://${s.kafkaHost}:${s.controllerPort}`,
      `advertised.listeners=PLAINTEXT://${s.kafkaHost}:${s.kafkaPort}`,
      'controller.listener.names=CONTROLLER',
      'inter.broker.listener.name=PLAINTEXT',
      'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    ];
  }
  const access = secureKafkaAccess(s);
  const storePassword = access.admin.password;
  const dir = tlsDir(s);
  return [
    // Clients and the broker itself: SASL_SSL with SCRAM; the controller on the loopback only.
    `listeners=SASL_SSL://${s.kafkaHost}:${s.kafkaPort},CONTROLLER://${s.kafkaHost}:${s.controllerPort}`,
    `advertised.listeners=SASL_SSL://${s.kafkaHost}:${s.kafkaPort}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=SASL_SSL',
    'listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT',
    'sasl.enabled.mechanisms=SCRAM-SHA-512',
    'sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512',
    `listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${access.admin.password}";`,
    'ssl.keystore.type=PKCS12',
    `ssl.keystore.location=${join(dir, 'broker.p12')}`,
    `ssl.keystore.password=${storePassword}`,
    `ssl.key.password=${storePassword}`,
    'ssl.truststore.type=PKCS12',
    `ssl.truststore.location=${join(dir, 'truststore.p12')}`,
    `ssl.truststore.password=${storePassword}`,
    'authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer',
    'allow.everyone.if.no.acl.found=false',
    // admin: the broker itself and `lifeline apply`; ANONYMOUS: the loopback controller listener.
    'super.users=User:admin;User:ANONYMOUS',
  ];
}

function writeBrokerConfig(s: LocalInfraSettings): { serverProperties: string; log4j: string; dataDir: string } {
  const base = join(s.root, 'kafka');
  const dataDir = join(base, 'data');
  mkdirSync(dataDir, { recursive: true });
  mkdirSync(join(s.root, 'logs'), { recursive: true });
  const serverProperties = join(base, 'server.properties');
  writeFileSync(serverProperties, [
    '# Written by `lifeline dev up`; edits are overwritten.',
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.bootstrap.servers=${s.kafkaHost}:${s.controllerPort}`,
    ...listenerLines(s),
    `log.dirs=${dataDir}`,
    'auto.create.topics.enable=false',
    'num.partitions=1',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=10',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'transaction.state.log.num.partitions=10',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    // Local test runs create many short-lived transactional ids; expire them sooner than the default week.
    'transactional.id.expiration.ms=3600000',
    'log.retention.hours=168',
    'log.segment.bytes=67108864',
    'log.cleaner.dedupe.buffer.size=16777216',
    '',
  ].join('\n'));
  const log4j = join(base, 'log4j2.properties');
  writeFileSync(log4j, [
    'status = warn',
    'appender.file.type = RollingFile',
    'appender.file.name = FILE',
    `appender.file.fileName = ${join(s.root, 'logs', 'kafka.log')}`,
    `appender.file.filePattern = ${join(s.root, 'logs', 'kafka.log.%i')}`,
    'appender.file.layout.type = PatternLayout',
    'appender.file.layout.pattern = [%d] %p %m (%c)%n',
    'appender.file.policies.type = Policies',
    'appender.file.policies.size.type = SizeBasedTriggeringPolicy',
    'appender.file.policies.size.size = 50MB',
    'appender.file.strategy.type = DefaultRolloverStrategy',
    'appender.file.strategy.max = 3',
    'rootLogger.level = INFO',
    'rootLogger.appenderRef.file.ref = FILE',
    'logger.statechange.name = state.change.logger',
    'logger.statechange.level = WARN',
    '',
  ].join('\n'));
  return { serverProperties, log4j, dataDir };
}

async function brokerAnswers(s: LocalInfraSettings): Promise<boolean> {
  if (!(await portAnswers(s.kafkaHost, s.kafkaPort))) return false;
  silenceNegativeTimeoutWarning(); // Node 24 warns about a kafkajs timer (see src/kafka/client.ts)
  const access = s.secure ? secureKafkaAccess(s) : undefined;
  if (access && !existsSync(access.caFile)) return false;
  const admin = new Kafka({
    brokers: [kafkaBootstrap(s)], clientId: 'lifeline-dev-probe', logLevel: logLevel.NOTHING,
    retry: { retries: 0 }, connectionTimeout: 1000, requestTimeout: 2000,
    ...(access ? { ssl: { ca: [readFileSync(access.caFile, 'utf8')] }, sasl: { mechanism: access.mechanism, username: access.admin.username, password: access.admin.password } } : {}),
  }).admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return cluster.brokers.length > 0 && cluster.controller !== null;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

export interface ComponentStatus {
  readonly name: string;
  readonly running: boolean;
  readonly pid?: number;
  readonly endpoint: string;
  readonly answering: boolean;
}

export async function kafkaStatus(s: LocalInfraSettings): Promise<ComponentStatus> {
  const pid = runningPid(kafkaProcess(s));
  return {
    name: `kafka ${s.kafkaVersion}`, running: pid !== undefined, ...(pid !== undefined ? { pid } : {}),
    endpoint: kafkaBootstrap(s), answering: await brokerAnswers(s),
  };
}

/** Starts the broker unless it already runs; formats storage on first run. Returns whether it started it. */
export async function startKafka(s: LocalInfraSettings, log: (line: string) => void = () => undefined): Promise<boolean> {
  const proc = kafkaProcess(s);
  if (runningPid(proc) !== undefined) {
    await waitUntil(`Kafka on ${kafkaBootstrap(s)}`, () => brokerAnswers(s), { timeoutMs: 60_000, proc });
    return false;
  }
  const java = kafkaJava();
  await assertPortFree(s.kafkaHost, s.kafkaPort, 'Kafka broker');
  await assertPortFree(s.kafkaHost, s.controllerPort, 'Kafka controller');
  log(`Apache Kafka ${s.kafkaVersion}: jars from Maven Central (fetched on first use, then cached)`);
  const jars = fetchKafkaJars(s);
  const { serverProperties, log4j, dataDir } = writeBrokerConfig(s);
  const logConfig = `-Dlog4j2.configurationFile=${log4j}`;
  if (s.secure) ensureCertificates(s, java, secureKafkaAccess(s).admin.password);
  if (!existsSync(join(dataDir, 'meta.properties'))) {
    log(`formatting Kafka storage (first run)${s.secure ? ' with the SCRAM users admin and lifeline' : ''}`);
    const scram = s.secure
      ? [secureKafkaAccess(s).admin, secureKafkaAccess(s).runtime].flatMap((user) => ['--add-scram', `SCRAM-SHA-512=[name=${user.username},password=${user.password}]`])
      : [];
    execFileSync(java, [logConfig, '-cp', `${jars}/*`, 'kafka.tools.StorageTool', 'format', '-t', kafkaClusterId(),
      '-c', serverProperties, '--standalone', ...scram], { stdio: 'ignore' });
  }
  log(`starting Kafka on ${kafkaBootstrap(s)}`);
  startDetached(proc, java, [
    `-Xms${s.kafkaHeap}`, `-Xmx${s.kafkaHeap}`, ...s.kafkaJvmOptions, gcLog(s), logConfig,
    '-cp', `${jars}/*`, 'kafka.Kafka', serverProperties,
  ], s.root);
  await waitUntil(`Kafka on ${kafkaBootstrap(s)}`, () => brokerAnswers(s), { timeoutMs: 90_000, proc });
  return true;
}

/** The broker's GC log, as Kafka's start script keeps it (kafkaServer-gc.log), bounded: 5 files of 20 MB. */
function gcLog(s: LocalInfraSettings): string {
  return `-Xlog:gc*:file=${join(s.root, 'logs', 'kafkaServer-gc.log')}:time,tags:filecount=5,filesize=20M`;
}

export async function stopKafka(s: LocalInfraSettings, opts: { kill?: boolean } = {}): Promise<boolean> {
  return stopProcess(kafkaProcess(s), opts.kill ? 0 : 60_000);
}

/**
 * A random cluster id as Kafka's own `Uuid.randomUuid()` makes it: 16 bytes in URL-safe base64, never
 * starting with '-' (the storage tool would read such an id as an option and refuse to format: one
 * start in 64 failed so).
 */
export function kafkaClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}
