import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Admin, Consumer, EachBatchPayload, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { errorCode, errorMessage } from '../errors.ts';
import { CONSUMER_MAX_WAIT_MS } from '../kafka/client.ts';
import { backoffDelay, DEFAULT_RETRY_POLICY, retry } from '../retry.ts';
import { changelogTopic, deadLetterTopic, phiPathsByTopic, repartitionTopic, type RuntimeSettings } from '../topology/model.ts';
import type { ProcessorDefinition, StoreSpec } from '../component/component.ts';
import { copartitionedAssigner } from './copartitioned-assigner.ts';
import type { HostOptions } from './host-options.ts';
import { LmdbStoreBackend } from './lmdb-store-backend.ts';
import { MemoryStoreBackend } from './memory-store-backend.ts';
import { LagMonitor } from './lag-monitor.ts';
import { ReferenceTable } from './reference-table.ts';
import { readSizeLimits, refreshSizeLimits, type SizeLimits } from './transaction-budget.ts';
import { DirectoryLocks, ProcessingHaltedError, ProcessorTask, type TaskEnvironment } from './processor-task.ts';
import { mustReopenTask } from './transaction-errors.ts';
import type { RestoreProgress } from './store-restorer.ts';
import { SharedTransaction } from './shared-transaction.ts';

export interface ProcessorHostOptions extends HostOptions {
  readonly admin: Admin;
  readonly definition: ProcessorDefinition;
  /** This process's own state directory (see state-directory.ts); runtime.state_dir when absent. */
  readonly stateDir?: string;
}

export type HostState = 'starting' | 'running' | 'paused' | 'stopping' | 'stopped' | 'failed';

/**
 * Hosts one processor: one consumer group (`<app_id>.<label>`), one task per assigned partition
 * number, exactly-once by default. Tasks are opened (fence, restore, init) when the group assigns
 * their partition and closed when it takes it away; batches wait for their task to be ready.
 */
export class ProcessorHost {
  state: HostState = 'starting';
  private consumer!: Consumer;
  private sharedProducer: Producer | undefined;
  /** `runtime.transactions: per_process` under exactly-once: the one transactional producer of this processor here. */
  private sharedTransaction: SharedTransaction | undefined;
  /** The last group generation this member joined, and its member id (see the GROUP_JOIN handler). */
  private lastJoin: { generationId: number; memberId: string } | undefined;
  /** Bumped when the member missed a generation: tasks created before are superseded (ProcessorTask.current). */
  private membershipEpoch = 0;
  private readonly tasks = new Map<number, Promise<ProcessorTask>>();
  /** Tasks whose last batch failed twice from the same offset (reported by describe() until they progress). */
  private readonly stalledTasks = new Set<ProcessorTask>();
  private readonly env: TaskEnvironment;
  readonly groupId: string;
  readonly label: string;
  private readonly logger: Logger;
  readonly stores: readonly StoreSpec[];
  private readonly tables = new Map<string, ReferenceTable>();
  private readonly repartitionTopics: Map<string, string>;
  private assigned = new Set<number>();
  private readonly restoring = new Map<number, RestoreProgress>();
  private readonly restoreFailures = new Map<number, string>();
  private readonly openFailures = new Map<number, number>();
  /** Partitions whose task is fencing, restoring or initialising: not ready yet. */
  private readonly opening = new Set<number>();

  constructor(private readonly options: ProcessorHostOptions) {
    const { topology, declaration, definition } = options;
    this.label = declaration.label;
    this.groupId = `${topology.runtime.appId}.${declaration.label}`;
    this.logger = options.logger.child({ component: declaration.label, type: declaration.type });
    this.stores = definition.stores?.(declaration.config as never) ?? [];
    const runtime: RuntimeSettings = topology.runtime;
    const partitionsByTopic = new Map(Object.values(topology.topics).map((topic) => [topic.name, topic.partitions]));
    const inputPartitions = Math.max(...declaration.inputs.map((input) => partitionsByTopic.get(input) ?? 1));
    this.repartitionTopics = new Map((definition.repartitions?.(declaration.config as never) ?? []).map((name) => [name, repartitionTopic(topology.runtime.appId, declaration.label, name)]));
    for (const topic of this.repartitionTopics.values()) partitionsByTopic.set(topic, inputPartitions);
    const serdeForTables = options.serde;
    const stateDir = options.stateDir ?? runtime.stateDir;
    for (const table of definition.tables?.(declaration.config as never) ?? []) {
      // A table re-reads its topic at every start: its folder (this process's own) is wiped on open.
      const backend = runtime.storeKind === 'lmdb'
        ? new LmdbStoreBackend(join(stateDir, declaration.label, 'tables', table.name), { fresh: true })
        : new MemoryStoreBackend();
      this.tables.set(table.name, new ReferenceTable(table.topic, options.kafka, serdeForTables, backend, this.logger.child({ table: table.name }), table.keyField,
        (records) => options.metrics.setTableRecords(declaration.label, table.name, records)));
    }
    this.env = {
      kafka: options.kafka,
      admin: options.admin,
      serde: options.serde,
      metrics: options.metrics,
      logger: this.logger,
      label: declaration.label,
      groupId: this.groupId,
      transactionalIdPrefix: `${topology.runtime.appId}.${declaration.label}`,
      exactlyOnce: declaration.guarantee === 'exactly_once',
      onError: declaration.onError,
      outputs: declaration.outputs,
      partitionsByTopic,
      inputPartitions,
      deadLetterTopic: deadLetterTopic(declaration.label),
      stores: this.stores,
      changelogTopic: (store) => changelogTopic(topology.runtime.appId, declaration.label, store),
      storeKind: runtime.storeKind,
      stateDir,
      commitMaxRecords: runtime.commitMaxRecords,
      commitIntervalMs: runtime.commitIntervalMs,
      commitConsumerOffsets: (offsets) => this.consumer.commitOffsets(offsets),
      fetchCommittedOffsets: (partition, requireStable) => this.fetchCommittedOffsets(partition, requireStable),
      createProcessor: () => definition.create(declaration.config as never),
      tables: this.tables,
      repartitionTopics: this.repartitionTopics,
      phiPathsByTopic: phiPathsByTopic(topology),
      preservesPartitioning: definition.preservesPartitioning?.(declaration.config as never) ?? false,
      restoreTimeoutMs: runtime.restoreTimeoutMs,
      directoryLocks: new DirectoryLocks(),
      onRestoreProgress: (partition, progress) => {
        if (progress) this.restoring.set(partition, progress);
        else this.restoring.delete(partition);
      },
      onFenced: (task) => this.dropTask(task),
      membershipEpoch: () => this.membershipEpoch,
    };
  }

  /** True lag (committed offset to last stable offset, markers excluded) of the partitions this host owns, on a timer. */
  private lagMonitor: LagMonitor | undefined;
  private get lag(): LagMonitor {
    this.lagMonitor ??= new LagMonitor({
      kafka: this.options.kafka, admin: this.options.admin, groupId: this.groupId, metrics: this.options.metrics, logger: this.logger,
      owned: () => [...this.options.declaration.inputs, ...this.repartitionTopics.values()].flatMap((topic) => [...this.assigned]
        .filter((partition) => partition < (this.env.partitionsByTopic.get(topic) ?? 0))
        .map((partition) => ({ topic, partition }))),
    });
    return this.lagMonitor;
  }

  /** Partitions every store changelog needs: as many as the inputs. */
  changelogTopics(): Array<{ name: string; partitions: number }> {
    return this.stores.map((store) => ({ name: this.env.changelogTopic(store.name), partitions: this.env.inputPartitions }));
  }

  /** Internal repartition topics, partitioned like the inputs. */
  internalTopics(): Array<{ name: string; partitions: number }> {
    return [...this.repartitionTopics.values()].map((name) => ({ name, partitions: this.env.inputPartitions }));
  }

  async start(): Promise<void> {
    const { kafka, declaration } = this.options;
    if (!this.env.exactlyOnce) {
      this.sharedProducer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      await this.sharedProducer.connect();
      (this.env as { sharedProducer?: Producer }).sharedProducer = this.sharedProducer;
    }
    const sizeLimits = await this.readSizeLimits();
    (this.env as { sizeLimits?: SizeLimits }).sizeLimits = sizeLimits;
    if (this.env.exactlyOnce && this.options.topology.runtime.transactions === 'per_process') {
      this.sharedTransaction = new SharedTransaction({
        kafka, transactionalId: this.sharedTransactionalId(), groupId: this.groupId, label: this.label,
        limits: () => sizeLimits, metrics: this.options.metrics, logger: this.logger,
        owns: (partition) => this.assigned.has(partition),
      });
      await this.sharedTransaction.start();
      (this.env as { sharedTransaction?: SharedTransaction }).sharedTransaction = this.sharedTransaction;
      this.logger.info({ transactionalId: this.sharedTransaction.transactionalId }, 'one transactional producer for every partition of this processor here (KIP-447)');
    }
    (this.env as { refreshSizeLimits?: () => Promise<void> }).refreshSizeLimits = () => refreshSizeLimits(sizeLimits, this.options.admin, this.limitedTopics(), this.logger);
    // Reference tables first: the first event may need them.
    for (const table of this.tables.values()) await table.start();
    for (const table of this.tables.values()) await table.waitReady(60_000);
    await this.startConsumer();
    this.state = 'running';
    this.options.metrics.setUp(this.label, true);
    this.logger.info({ group: this.groupId, inputs: declaration.inputs, guarantee: declaration.guarantee }, 'processor started');
  }

  /**
   * Stable per process slot on a host (`<app>.<label>.<host>.slot-<n>`: the runtime claims a slot of
   * state_dir for per-process transactions, whatever the store kind), so a restarted process fences
   * what its previous incarnation left open at once; a host built without a slot (in-process tests)
   * gets an id unique to the process, whose crash leaves a transaction open until its time-out.
   */
  private sharedTransactionalId(): string {
    const slot = this.options.stateDir ? basename(this.options.stateDir) : `pid-${process.pid}-${randomBytes(3).toString('hex')}`;
    return `${this.env.transactionalIdPrefix}.${hostname()}.${slot}`;
  }

  /** Byte limits of every topic this processor writes, read from the broker once (transaction-budget.ts). */
  private async readSizeLimits(): Promise<SizeLimits> {
    return readSizeLimits(this.options.admin, this.limitedTopics());
  }

  private limitedTopics(): string[] {
    return [
      ...Object.values(this.env.outputs), this.env.deadLetterTopic, ...this.repartitionTopics.values(),
      ...this.stores.map((store) => this.env.changelogTopic(store.name)),
    ];
  }

  /** A fresh consumer joins the group (at start, and when an operator resumes the group). */
  private async startConsumer(): Promise<void> {
    const { kafka, declaration } = this.options;
    this.consumer = kafka.consumer({
      groupId: this.groupId,
      // Sticky: at each join the member reports the partitions it holds open tasks for, and keeps them when it can.
      partitionAssigners: [copartitionedAssigner(() => [...this.tasks.keys()])],
      readUncommitted: false,
      sessionTimeout: this.options.sessionTimeoutMs ?? 30_000,
      heartbeatInterval: Math.max(500, Math.floor((this.options.sessionTimeoutMs ?? 30_000) / 10)),
      rebalanceTimeout: 60_000,
      maxBytesPerPartition: 1024 * 1024,
      // consumer.stop() waits for the fetch in flight: an idle long poll of kafkajs's default 5 s
      // alone would break the 5 s stop budget.
      maxWaitTimeInMs: CONSUMER_MAX_WAIT_MS,
    });
    this.consumer.on(this.consumer.events.GROUP_JOIN, (event) => {
      const { generationId, memberId } = event.payload;
      const last = this.lastJoin;
      this.lastJoin = { generationId, memberId };
      // Out of the group for a generation or more (a frozen or partitioned member whose session
      // expired rejoins under a new member id): another member may have processed our partitions
      // meanwhile, and the sticky assignment may hand them back. A task kept from before would go on
      // from its own stale state (counts would repeat) and, under per_process transactions, commit
      // with the new generation. Every task is superseded (it commits nothing more) and reopened from
      // its checkpoint and changelog tail.
      if (last && (memberId !== last.memberId || generationId !== last.generationId + 1)) {
        this.logger.warn({ generationId, previousGenerationId: last.generationId, memberIdChanged: memberId !== last.memberId }, 'rejoined the group after missing a generation; reopening every task from its checkpoint and changelog');
        this.membershipEpoch++;
        this.dropAllTasks();
      }
      // Before the assignment is applied: offsets committed from now on carry the new generation.
      this.sharedTransaction?.setGeneration({ generationId, memberId });
      this.onAssignment(event.payload.memberAssignment);
      void this.lag.refresh();
    });
    this.consumer.on(this.consumer.events.CRASH, (event) => {
      this.logger.error({ err: errorMessage(event.payload.error), restart: event.payload.restart }, 'consumer crashed');
    });
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [...declaration.inputs, ...this.repartitionTopics.values()], fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: Math.max(1, this.env.inputPartitions * (declaration.inputs.length + this.repartitionTopics.size)),
      eachBatch: (payload) => this.eachBatch(payload),
    });
    this.lag.start();
  }

  /** Every task closed without a commit (their membership epoch is over); onAssignment opens the assigned ones again. */
  private dropAllTasks(): void {
    for (const [partition, task] of this.tasks) {
      this.tasks.delete(partition);
      void task.then((open) => open.exclusive(() => open.close({ commit: false }))).catch(() => undefined);
    }
  }

  /** A task fenced outside a batch (its timer): dropped; reopened when the group still assigns its partition here. */
  private dropTask(task: ProcessorTask): void {
    // Closed in any case (its state directories released); reopened only if it is still this partition's task.
    void task.exclusive(() => task.close({ commit: false })).catch(() => undefined);
    void this.tasks.get(task.partition)?.then((current) => {
      if (current !== task) return;
      this.tasks.delete(task.partition);
      this.reopenLater(task.partition);
    }, () => undefined);
  }

  /** Opens an assigned partition's task again after a failed open or a fence, even if no batch arrives. */
  private reopenLater(partition: number): void {
    const failures = (this.openFailures.get(partition) ?? 0) + 1;
    this.openFailures.set(partition, failures);
    const timer = setTimeout(() => {
      if (this.state === 'running' && this.assigned.has(partition) && !this.tasks.has(partition)) void this.taskFor(partition).catch(() => undefined);
    }, Math.min(30_000, 500 * 2 ** Math.min(failures, 6)));
    timer.unref();
  }

  private onAssignment(assignment: Record<string, number[]>): void {
    const assigned = new Set(Object.values(assignment).flat());
    this.assigned = assigned;
    for (const partition of this.restoreFailures.keys()) if (!assigned.has(partition)) this.restoreFailures.delete(partition);
    this.logger.info({ partitions: [...assigned].sort((a, b) => a - b) }, 'partitions assigned');
    for (const [partition, task] of this.tasks) {
      if (assigned.has(partition)) continue;
      this.tasks.delete(partition);
      void task.then((open) => open.exclusive(() => open.close({ commit: false }))).catch(() => undefined);
    }
    // Open new tasks right away: restoring before the first batch, and running their timers even if no record arrives.
    for (const partition of assigned) void this.taskFor(partition).catch(() => undefined);
  }

  private taskFor(partition: number): Promise<ProcessorTask> {
    let task = this.tasks.get(partition);
    if (!task) {
      const created = new ProcessorTask(this.env, partition);
      this.opening.add(partition);
      task = created.open().then(() => {
        this.opening.delete(partition);
        this.restoreFailures.delete(partition);
        this.openFailures.delete(partition);
        return created;
      });
      task.catch((error: unknown) => {
        this.opening.delete(partition);
        this.logger.error({ partition, err: errorMessage(error), code: errorCode(error) }, 'task failed to open');
        if (errorCode(error) === 'LL_RESTORE_TIMEOUT') this.restoreFailures.set(partition, errorMessage(error));
        if (this.tasks.get(partition) === task) this.tasks.delete(partition);
        void created.close({ commit: false });
        this.reopenLater(partition);
      });
      this.tasks.set(partition, task);
    }
    return task;
  }

  private async eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, heartbeat, isRunning, isStale } = payload;
    const taskPromise = this.taskFor(batch.partition);
    // Restoring a large store can outlast the session timeout; keep the membership alive meanwhile.
    let ready = false;
    void taskPromise.then(() => { ready = true; }, () => { ready = true; });
    while (!ready) {
      await Promise.race([taskPromise.catch(() => undefined), sleep(1000)]);
      if (!ready) await heartbeat().catch(() => undefined);
    }
    let task: ProcessorTask;
    try {
      task = await taskPromise;
    } catch {
      await sleep(500);
      this.consumer.seek({ topic: batch.topic, partition: batch.partition, offset: batch.firstOffset() ?? '0' });
      return;
    }
    await task.exclusive(async () => {
      if (task.closed || !isRunning() || isStale()) return;
      this.sharedTransaction?.batchStarted();
      try {
        await this.processBatch(task, payload);
      } finally {
        this.sharedTransaction?.batchEnded();
      }
    });
  }

  /** A fetched batch on its task (the task's lock held): records handled, committed, and on failure resumed from the last commit. */
  private async processBatch(task: ProcessorTask, payload: EachBatchPayload): Promise<void> {
    const { batch, heartbeat, isRunning, isStale, resolveOffset } = payload;
    let lastHandled: string | undefined;
    try {
      for (const message of batch.messages) {
        if (!isRunning() || isStale()) break;
        if (BigInt(message.offset) < task.nextOffset(batch.topic)) {
          lastHandled = message.offset; // committed by us or a previous owner: passed over, but resolved so the consumer moves on
          continue;
        }
        await task.handle(batch.topic, message);
        lastHandled = message.offset;
        if (task.shouldCommit()) {
          await task.commit();
          resolveOffset(message.offset);
          await heartbeat();
        }
      }
      await task.commit();
      if (lastHandled !== undefined) resolveOffset(lastHandled);
    } catch (error) {
      task.abortTransaction();
      if (error instanceof ProcessingHaltedError) {
        this.fail(error);
        return;
      }
      this.options.metrics.recordRetry(this.label, 'batch');
      // The failure is counted (and a stall reported in /metrics) before afterFailedTransaction's
      // first await; /readyz says so from the same moment, not only once a new producer is connected.
      const recovering = task.afterFailedTransaction(`${batch.topic}/${batch.partition}@${task.committedOffset(batch.topic)}`, error);
      if (task.progress.stalled) this.stalledTasks.add(task);
      await recovering;
      this.logger.warn({ partition: batch.partition, err: errorMessage(error), code: errorCode(error) }, 'batch failed; resuming from the last commit');
      if (mustReopenTask(error)) {
        // Another owner fenced us, our producer is unusable, or a commit may or may not have happened:
        // drop the task; if we still own the partition it is reopened from its committed offsets and changelogs.
        // A superseded task was dropped already, and the partition's entry may be its successor's.
        if (task.current) this.tasks.delete(batch.partition);
        await task.close({ commit: false });
      }
      // The member rejoined after missing a generation: the consumer resumes from the group's committed
      // offsets, and the successor task from its own; this task's offsets are stale.
      if (!task.current) return;
      await sleep(backoffDelay(Math.min(this.failures++, 6), DEFAULT_RETRY_POLICY));
      const resume = task.committedOffset(batch.topic);
      this.consumer.seek({ topic: batch.topic, partition: batch.partition, offset: resume >= 0n ? resume.toString() : (batch.firstOffset() ?? '0') });
      return;
    }
    this.failures = 0;
  }

  private failures = 0;

  private fail(error: Error): void {
    if (this.state === 'failed') return;
    this.state = 'failed';
    this.options.metrics.setUp(this.label, false);
    this.logger.error({ err: error.message }, 'processor halted');
    this.options.onFatal(error);
  }

  private async fetchCommittedOffsets(partition: number, requireStable = false): Promise<Map<string, bigint>> {
    const topics = [...this.options.declaration.inputs, ...this.repartitionTopics.values()];
    // UNSTABLE_OFFSET_COMMIT: an open transaction (an older owner's) still holds offsets of the group;
    // asked again until it ends (committed, aborted, or timed out by the broker).
    const result = await retry(() => this.options.admin.fetchOffsets({ groupId: this.groupId, topics, requireStable }), {
      retries: 40, initialDelayMs: 50, maxDelayMs: 2000, operation: `${this.label} stable offsets of partition ${partition}`,
      shouldRetry: (error) => (error as { type?: string }).type === 'UNSTABLE_OFFSET_COMMIT',
    });
    const offsets = new Map<string, bigint>();
    for (const topic of result) {
      const entry = topic.partitions.find((candidate) => candidate.partition === partition);
      if (entry && Number(entry.offset) >= 0) offsets.set(topic.topic, BigInt(entry.offset));
    }
    return offsets;
  }

  /**
   * Health detail for /readyz: not ready ('restoring') while a partition restores its stores, with
   * progress; and not ready with the reason when a restore passed its deadline, until one succeeds.
   */
  describe(): { state: string; detail: string } {
    const base = `${this.tasks.size} partition task(s) [${[...this.tasks.keys()].sort((a, b) => a - b).join(',')}], group ${this.groupId}`;
    if (this.state === 'running' && this.restoreFailures.size > 0) {
      return { state: 'restore_failed', detail: `${base}; ${[...this.restoreFailures].map(([partition, reason]) => `partition ${partition}: ${reason}`).join('; ')}` };
    }
    if (this.state === 'running' && (this.restoring.size > 0 || this.opening.size > 0)) {
      const now = Date.now();
      const parts = [...this.restoring].map(([partition, progress]) => `partition ${partition} restoring ${progress.stores.join(', ')}: ${progress.read} of ~${progress.toRead} records, ${Math.round((now - progress.startedAt) / 1000)} s of ${Math.round((progress.deadlineAt - progress.startedAt) / 1000)} s`);
      const waiting = [...this.opening].filter((partition) => !this.restoring.has(partition));
      if (waiting.length > 0) parts.push(`opening partition(s) ${waiting.sort((a, b) => a - b).join(', ')}`);
      return { state: 'restoring', detail: `${base}; ${parts.join('; ')}` };
    }
    for (const task of this.stalledTasks) if (!task.progress.stalled || task.closed) this.stalledTasks.delete(task);
    const stalled = [...this.stalledTasks].map((task) => task.partition);
    if (this.state === 'running' && stalled.length > 0) {
      const causes = [...new Set([...this.stalledTasks].map((task) => task.progress.cause).filter((cause) => cause !== undefined))];
      return { state: 'degraded', detail: `${base}; no progress on partition(s) ${stalled.join(', ')} (LL_NO_PROGRESS: a batch failed twice${causes.length > 0 ? `, last with ${causes.join(', ')}` : ''}; committing it in smaller transactions)` };
    }
    return { state: this.state, detail: base };
  }

  /**
   * Leaves the group so an operator can reset its offsets (see control-listener.ts): the batch in
   * flight finishes, open transactions commit, tasks close; stores are rebuilt on resume.
   */
  async suspendConsumer(): Promise<void> {
    if (this.state !== 'running') return;
    this.state = 'paused';
    await this.consumer.stop().catch(() => undefined);
    const tasks = [...this.tasks.values()];
    this.tasks.clear();
    for (const task of tasks) {
      const open = await task.catch(() => undefined);
      if (open) await open.exclusive(() => open.close({ commit: true }));
    }
    await this.consumer.disconnect().catch(() => undefined);
    this.options.metrics.setUp(this.label, false);
    this.logger.warn({ group: this.groupId }, 'processor paused by an operator');
  }

  async resumeConsumer(): Promise<void> {
    if (this.state !== 'paused') return;
    await this.startConsumer();
    this.state = 'running';
    this.options.metrics.setUp(this.label, true);
    this.logger.info({ group: this.groupId }, 'processor resumed');
  }

  /** Finishes open transactions, closes tasks and leaves the group. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    const previous = this.state;
    this.state = 'stopping';
    await this.consumer?.stop().catch(() => undefined);
    const tasks = [...this.tasks.values()];
    this.tasks.clear();
    for (const task of tasks) {
      const open = await task.catch(() => undefined);
      if (open) await open.exclusive(() => open.close({ commit: previous !== 'failed' }));
    }
    await this.consumer?.disconnect().catch(() => undefined);
    await this.lagMonitor?.stop();
    await this.sharedProducer?.disconnect().catch(() => undefined);
    await this.sharedTransaction?.stop();
    for (const table of this.tables.values()) await table.close();
    this.state = 'stopped';
    this.options.metrics.setUp(this.label, false);
    this.logger.info('processor stopped');
  }
}
