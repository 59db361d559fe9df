import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Command } from 'commander';
import kafkajs, { type AclEntry, type Admin } from 'kafkajs';
import { LifelineError, errorMessage } from '../errors.ts';
import { AvroSerde } from '../kafka/avro-serde.ts';
import { createKafka, kafkaAccessProblem, type KafkaConnectionConfig } from '../kafka/client.ts';
import { ensureTopics } from '../kafka/topic-admin.ts';
import { createLogger, kafkaLogCreator } from '../observe/logger.ts';
import { AuditTrail } from '../ops/audit-trail.ts';
import { retry } from '../retry.ts';
import { AUDIT_TOPIC } from '../ops/ops-topics.ts';
import { LifelineRuntime } from '../runtime/lifeline-runtime.ts';
import { loadTopology } from '../topology/load-topology.ts';
import type { TopologyProblem } from '../topology/topology-problem.ts';
import { buildComponentRegistry } from './component-list.ts';

const { AclOperationTypes, AclPermissionTypes, AclResourceTypes, ResourcePatternTypes } = kafkajs;

interface ApplyOptions {
  topology: string;
  only?: string;
  principal?: string;
  execute?: boolean;
  reason?: string;
}

/** One ACL the runtime principal needs, printable and comparable. */
interface Grant {
  readonly resourceType: number;
  readonly resourceName: string;
  readonly patternType: number;
  readonly operation: number;
}

const TOPIC_OPERATIONS = [AclOperationTypes.READ, AclOperationTypes.WRITE, AclOperationTypes.DESCRIBE, AclOperationTypes.DESCRIBE_CONFIGS];

/**
 * `lifeline apply`: sets Kafka up for a topology as the admin principal — the topics with their
 * configs, the schemas, and the ACLs of the runtime principal (read and write its topics, its
 * groups, its transactional ids, idempotent writes: nothing else) — so that `lifeline run` needs
 * no administrative right. Prints the plan; changes only with --execute, audited in ops.audit.v1.
 */
export function registerApplyCommand(program: Command): void {
  program.command('apply')
    .description('as the Kafka admin principal (LIFELINE_KAFKA_ADMIN_USERNAME / LIFELINE_KAFKA_ADMIN_PASSWORD[_FILE]): create the topology\'s topics, register its schemas and grant the runtime principal its ACLs; prints the plan, changes only with --execute (audited)')
    .option('--topology <file>', 'topology file', 'topology.yaml')
    .option('--only <labels>', 'only what these components need (comma-separated)')
    .option('--principal <principal>', 'the runtime principal to grant (default: User:<connections.kafka.sasl.username>)')
    .option('--execute', 'apply the plan')
    .option('--reason <text>', 'why (goes to the audit trail)')
    .action(async (options: ApplyOptions) => {
      const registry = buildComponentRegistry();
      const warnings: TopologyProblem[] = [];
      const topology = loadTopology(options.topology, registry, process.env, { unsetSecrets: 'warn', warnings });
      const principal = options.principal ?? (topology.kafka.sasl ? `User:${topology.kafka.sasl.username}` : undefined);
      const adminConnection = adminKafkaConnection(topology.kafka);
      const logger = createLogger({ level: process.env.LIFELINE_CLI_LOG_LEVEL ?? 'silent', destination: process.stderr });
      const kafka = createKafka(adminConnection, kafkaLogCreator(logger));
      const admin = kafka.admin();
      try {
        await admin.connect();
        const only = options.only ? options.only.split(',').map((label) => label.trim()).filter(Boolean) : [];
        const runtime = new LifelineRuntime({ topology, registry, logger, only });
        const plan = runtime.setupPlan(admin);
        const existing = new Set(await admin.listTopics());
        const missingTopics = plan.topics.filter((topic) => !existing.has(topic.name));
        const wanted = principal ? runtimeGrants(plan) : [];
        const missingGrants = principal ? await grantsMissing(admin, principal, wanted) : [];

        console.log(`plan for ${options.topology} as ${adminConnection.sasl ? `User:${adminConnection.sasl.username}` : 'the connection\'s principal'} on ${adminConnection.brokers.join(', ')}:`);
        console.log(`  topics: ${plan.topics.length} needed, ${missingTopics.length} to create${missingTopics.length ? `: ${missingTopics.map((topic) => topic.name).join(', ')}` : ''}; configs of existing ones brought in line`);
        console.log(`  schemas: ${Object.keys(topology.topics).length} subjects <topic>-value registered (BACKWARD-compatible only)`);
        if (principal) {
          console.log(`  ACLs for ${principal}: ${wanted.length} needed, ${missingGrants.length} to add`);
          for (const grant of missingGrants) console.log(`    + ${describeGrant(grant)}`);
        } else {
          console.log('  ACLs: none (connections.kafka has no SASL user and no --principal was given)');
        }
        if (!options.execute) {
          console.log('nothing changed: run again with --execute (and --reason) to apply');
          return;
        }
        const who = `kafka:${adminConnection.sasl?.username ?? 'anonymous'}@${hostname()}`;
        await ensureTopics(admin, [{ name: AUDIT_TOPIC, partitions: 1 }]);
        const serde = new AvroSerde(topology.registry);
        const audit = new AuditTrail(kafka, admin, serde, 'apply');
        const actionId = audit.newActionId();
        const base = { actionId, who, action: 'kafka.apply', target: options.topology, ...(options.reason ? { reason: options.reason } : {}) };
        const parameters = { topics: missingTopics.map((topic) => topic.name), acls: missingGrants.map(describeGrant), principal: principal ?? null };
        await audit.record({ ...base, parameters, result: 'started' });
        try {
          const result = await ensureTopics(admin, plan.topics);
          // A registry that answers slowly once (a time-out, a 5xx) must not fail the whole apply: registering is idempotent.
          for (const topic of Object.values(topology.topics)) {
            await retry(() => serde.register(topic.name, topic.contract), { retries: 4, initialDelayMs: 500, maxDelayMs: 5_000, operation: `registering the schema of ${topic.name}` });
          }
          if (principal && missingGrants.length > 0) {
            await admin.createAcls({ acl: missingGrants.map((grant) => aclEntry(principal, grant)) });
          }
          const detail = `${result.created.length} topic(s) created, ${result.updated.length} reconfigured, ${Object.keys(topology.topics).length} schema(s) registered, ${missingGrants.length} ACL(s) added`;
          await audit.record({ ...base, parameters, result: 'succeeded', detail });
          console.log(`applied: ${detail}`);
        } catch (error) {
          await audit.record({ ...base, parameters, result: 'failed', detail: errorMessage(error) });
          throw error;
        } finally {
          await audit.close();
        }
      } catch (error) {
        throw kafkaAccessProblem(error, adminConnection, 'applying the plan') ?? error;
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    });
}

/** The topology's Kafka connection with the admin principal's credentials, when they are given. */
function adminKafkaConnection(connection: KafkaConnectionConfig): KafkaConnectionConfig {
  const username = process.env.LIFELINE_KAFKA_ADMIN_USERNAME;
  if (!username) return connection;
  const file = process.env.LIFELINE_KAFKA_ADMIN_PASSWORD_FILE;
  const password = process.env.LIFELINE_KAFKA_ADMIN_PASSWORD ?? (file ? readFileSync(file, 'utf8').trim() : undefined);
  if (password === undefined) throw new LifelineError('LL_SECRET_MISSING', 'LIFELINE_KAFKA_ADMIN_USERNAME is set but neither LIFELINE_KAFKA_ADMIN_PASSWORD nor LIFELINE_KAFKA_ADMIN_PASSWORD_FILE');
  return { ...connection, sasl: { mechanism: connection.sasl?.mechanism ?? 'scram-sha-512', username, password } };
}

/** What `lifeline run` does with Kafka, as ACLs: its topics, its groups, its transactional ids, idempotent writes. */
export function runtimeGrants(plan: { topics: ReadonlyArray<{ name: string }>; groupPrefixes: readonly string[]; transactionalIdPrefix: string }): Grant[] {
  const grants: Grant[] = [];
  for (const topic of plan.topics) {
    for (const operation of TOPIC_OPERATIONS) grants.push({ resourceType: AclResourceTypes.TOPIC, resourceName: topic.name, patternType: ResourcePatternTypes.LITERAL, operation });
  }
  for (const prefix of plan.groupPrefixes) {
    for (const operation of [AclOperationTypes.READ, AclOperationTypes.DESCRIBE]) grants.push({ resourceType: AclResourceTypes.GROUP, resourceName: prefix, patternType: ResourcePatternTypes.PREFIXED, operation });
  }
  // Lifeline deletes its own short-lived groups (restores, reference tables, control listener).
  grants.push({ resourceType: AclResourceTypes.GROUP, resourceName: '_lifeline.', patternType: ResourcePatternTypes.PREFIXED, operation: AclOperationTypes.DELETE });
  for (const operation of [AclOperationTypes.WRITE, AclOperationTypes.DESCRIBE]) {
    grants.push({ resourceType: AclResourceTypes.TRANSACTIONAL_ID, resourceName: plan.transactionalIdPrefix, patternType: ResourcePatternTypes.PREFIXED, operation });
  }
  // Idempotent producers; reading the brokers' size limits (the transaction budget).
  for (const operation of [AclOperationTypes.IDEMPOTENT_WRITE, AclOperationTypes.DESCRIBE_CONFIGS]) {
    grants.push({ resourceType: AclResourceTypes.CLUSTER, resourceName: 'kafka-cluster', patternType: ResourcePatternTypes.LITERAL, operation });
  }
  return grants;
}

async function grantsMissing(admin: Admin, principal: string, wanted: readonly Grant[]): Promise<Grant[]> {
  const described = await admin.describeAcls({
    resourceType: AclResourceTypes.ANY, resourcePatternType: ResourcePatternTypes.ANY, principal, host: '*',
    operation: AclOperationTypes.ANY, permissionType: AclPermissionTypes.ALLOW,
  } as Parameters<Admin['describeAcls']>[0]);
  const have = new Set<string>();
  for (const resource of described.resources) {
    for (const acl of resource.acls) have.add(grantKey({ resourceType: resource.resourceType, resourceName: resource.resourceName, patternType: resource.resourcePatternType, operation: acl.operation }));
  }
  return wanted.filter((grant) => !have.has(grantKey(grant)));
}

function grantKey(grant: Grant): string {
  return `${grant.resourceType}/${grant.patternType}/${grant.resourceName}/${grant.operation}`;
}

function describeGrant(grant: Grant): string {
  const name = (table: Record<string, string | number>, value: number) => Object.entries(table).find(([, code]) => code === value)?.[0] ?? String(value);
  return `${name(AclOperationTypes, grant.operation)} on ${name(AclResourceTypes, grant.resourceType)} ${grant.resourceName}${grant.patternType === ResourcePatternTypes.PREFIXED ? '*' : ''}`;
}

function aclEntry(principal: string, grant: Grant): AclEntry {
  return {
    resourceType: grant.resourceType, resourceName: grant.resourceName, resourcePatternType: grant.patternType,
    principal, host: '*', operation: grant.operation, permissionType: AclPermissionTypes.ALLOW,
  } as AclEntry;
}
