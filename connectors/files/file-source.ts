import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, watch, type FSWatcher } from 'node:fs';
import { mkdir, open, readdir, rename, stat, writeFile } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import type { Logger } from 'pino';
import { LifelineError, errorCode, errorMessage, isRetriable } from '../../src/errors.ts';
import { defineSource, type Source, type SourceBatch, type SourceBatchOutcome, type SourceContext, type SourceRecord } from '../../src/component/component.ts';
import { DURATION_PATTERN, parseDuration } from '../../src/component/duration.ts';
import { newTraceparent } from '../../src/component/record-headers.ts';
import { OUTPUT_OF_KIND, PARTNER_FEED_OUTPUTS, errorLocation, type CanonicalRecord, type DeliveryContext } from '../formats/canonical.ts';
import { checkPartnerFormat, partnerFormatProperties, streamFileRecords, type FileItem } from '../formats/partner-format.ts';
import { PartnerFeedMetrics, canonicalSourceRecord, headersFor, partnerRoutingWarnings, quarantineRecords } from '../partner-feed.ts';

/**
 * `file_source`: partners drop files into an inbox folder; each file becomes canonical records.
 *
 * - **All or none per file.** A file is read and checked completely before any of it is produced:
 *   a file with a bad row, message or byte produces nothing, moves to `failed/` with an error
 *   report (`<name>.error.json`, every problem with its line and field) and its raw content goes to
 *   the quarantine output. A good file is produced and moved to `archive/`.
 * - **Bounded memory.** A file with up to `max_records_per_transaction` records is one Kafka
 *   transaction (records + cursor). A larger one is streamed in several transactions; the cursor
 *   records how many of its records are committed, so a crash mid-file resumes after the last
 *   committed record: every record exactly once, and the file was fully checked before the first
 *   of them was produced. (Consumers reading committed data may see the first part of such a file
 *   before the rest; for all-at-once visibility raise the limit, at the cost of memory.)
 * - **Exactly once per file.** The cursor (in `_lifeline.source-offsets`, committed with the
 *   records) keeps the sha256 of the last `remember_files` files handled, so a file dropped twice,
 *   or not yet moved when the process died, is not ingested twice: it is moved to `archive/`.
 * - **Taken only when complete.** A file is taken once this process has seen its size and
 *   modification time unchanged for `settle_time` (per partner, or the source's) — not merely an
 *   old mtime, which a file renamed into the inbox keeps while its writer still appends — and,
 *   with `ready_marker`, only once its companion marker (`<name><marker>`) exists. A file that
 *   changes while it is read produces nothing and is taken again once stable. A file that changes
 *   after it was taken (before it is archived, or within `watch_after_ingest` of being archived)
 *   is detected by its sha256 and reported: moved to `failed/` with an LL_FILE_CHANGED report and
 *   its content quarantined, never half-ingested in silence. Dropping the complete file again
 *   ingests it; the records already taken come out with the same idempotency keys and content, so
 *   dedup drops them as duplicates.
 */

const partnerSchema = Type.Object({
  ...partnerFormatProperties,
  inbox: Type.String({ minLength: 1, description: 'Folder the partner drops files into (absolute, or relative to the working directory).' }),
  archive_dir: Type.Optional(Type.String({ minLength: 1, description: 'Where ingested files go; <inbox>/archive by default.' })),
  failed_dir: Type.Optional(Type.String({ minLength: 1, description: 'Where rejected files and their error reports go; <inbox>/failed by default.' })),
  settle_time: Type.Optional(Type.String({ pattern: DURATION_PATTERN, description: 'This partner\'s settle time (overrides the source\'s).' })),
  ready_marker: Type.Optional(Type.String({
    pattern: '^\\.[A-Za-z0-9._-]+$',
    description: 'Suffix of a companion marker file the partner writes once a file is complete (e.g. ".done": `charges.csv` is taken only once `charges.csv.done` exists). The marker moves with its file.',
    examples: ['.done', '.ok'],
  })),
  max_record_bytes: Type.Integer({
    minimum: 1, default: 1_000_000,
    description: 'Largest record one row, HL7 message or FHIR resource of this partner may become (its canonical JSON size, an upper bound of its Avro size); a file holding a larger one is rejected whole (failed/, quarantine, LL_FILE_RECORD_TOO_LARGE naming where, the size and the limit). The default stays under Kafka\'s default max.message.bytes.',
  }),
  extensions: Type.Optional(Type.Array(Type.String({ pattern: '^\\.[A-Za-z0-9.]+$' }), {
    minItems: 1, description: 'File name endings taken (case-insensitive). Defaults: hl7v2 .hl7 .txt; fhir_r4 .json .ndjson; csv .csv .txt.',
  })),
}, { additionalProperties: false });

const configSchema = Type.Object({
  poll_interval: Type.String({ pattern: DURATION_PATTERN, default: '1s', description: 'How often inboxes are listed (changes seen by the file watcher wake it earlier).' }),
  settle_time: Type.String({ pattern: DURATION_PATTERN, default: '2s', description: 'A file is taken only once its size and modification time have been seen unchanged for this long.' }),
  watch_after_ingest: Type.String({ pattern: DURATION_PATTERN, default: '1m', description: 'How long an archived file is still watched: if it changes (a writer that was still appending), it is reported as LL_FILE_CHANGED and moved to failed/.' }),
  max_records_per_transaction: Type.Integer({ minimum: 1, default: 2000, description: 'Records per Kafka transaction; a file with more is committed in several, resuming exactly after a crash.' }),
  remember_files: Type.Integer({ minimum: 1, default: 5000, description: 'How many handled files (sha256) the cursor remembers to refuse a second ingest of the same content.' }),
  max_json_bytes: Type.Integer({ minimum: 1, default: 67_108_864, description: 'Largest FHIR .json file (parsed whole); use .ndjson beyond.' }),
  quarantine_max_bytes: Type.Integer({ minimum: 0, default: 16_777_216, description: 'Raw bytes of a rejected file copied to quarantine at most; the whole file stays in failed/.' }),
  partners: Type.Array(partnerSchema, { minItems: 1, description: 'One entry per partner inbox.' }),
}, { additionalProperties: false });

type FileSourceConfig = Static<typeof configSchema>;
type PartnerConfig = Static<typeof partnerSchema>;

const DEFAULT_EXTENSIONS = { hl7v2: ['.hl7', '.txt'], fhir_r4: ['.json', '.ndjson'], csv: ['.csv', '.txt'] } as const;
/** Problems listed in an error report at most; the file is rejected at the first, the rest help fix it. */
const MAX_REPORTED_PROBLEMS = 50;
const HASH_PREFIX = 32;
/** Archived files watched for late changes at most (the oldest stop being watched first). */
const MAX_WATCHED_ARCHIVED = 1000;

/** What the cursor in `_lifeline.source-offsets` holds (JSON). */
export interface FileCursor {
  readonly version: 1;
  /** `<sha256 prefix>:<a|q>` (archived or quarantined), oldest first, at most remember_files. */
  readonly handled: readonly string[];
  /** A file committed in several transactions: how many of its records are committed so far. */
  readonly current?: { readonly partner: string; readonly name: string; readonly sha256: string; readonly committed: number; readonly total: number };
}

interface Partner {
  readonly config: PartnerConfig;
  readonly settleMs: number;
  readonly inbox: string;
  readonly archive: string;
  readonly failed: string;
  readonly extensions: readonly string[];
}

interface CandidateFile {
  readonly partner: Partner;
  readonly name: string;
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
}

interface Problem {
  readonly code: string;
  readonly message: string;
  readonly location: string | undefined;
}

/** A file being produced in several transactions. */
interface ActiveFile {
  readonly file: CandidateFile;
  readonly sha256: string;
  readonly total: number;
  readonly items: AsyncGenerator<FileItem>;
  committed: number;
  traceparent: string;
}

/** What acknowledge() does once a batch is committed. */
type BatchAction =
  | { readonly kind: 'part'; readonly file: CandidateFile; readonly counts: ReadonlyMap<string, number> }
  | { readonly kind: 'archive'; readonly file: CandidateFile; readonly sha256: string; readonly records: readonly CanonicalRecord[] | number; readonly counts: ReadonlyMap<string, number> }
  | { readonly kind: 'reject'; readonly file: CandidateFile; readonly sha256: string; readonly problems: readonly Problem[]; readonly partial: number };

export const fileSource = defineSource({
  kind: 'source',
  type: 'file_source',
  description: 'Ingests partner file drops (HL7 v2, FHIR R4, CSV) from inbox folders: each file all or nothing, exactly once, then archived; bad files go to failed/ and quarantine.',
  stateful: false,
  outputs: PARTNER_FEED_OUTPUTS,
  config: configSchema,
  create: (config) => new FileSource(config),
  warnings: (config, outputs) => partnerRoutingWarnings(config.partners, outputs, 'file_source'),
});

class FileSource implements Source {
  private readonly partners: Partner[];
  private readonly pollIntervalMs: number;
  private readonly settleMs: number;
  private cursor: FileCursor = { version: 1, handled: [] };
  private active: ActiveFile | undefined;
  /** A file whose batch failed for good (not Kafka being away): it is rejected next. */
  private poisoned: { file: CandidateFile; sha256: string; problem: Problem } | undefined;
  /** Files tried once more after Kafka refused one of their records as too large (bounded). */
  private readonly retriedTooLarge = new Set<string>();
  private readonly actions = new WeakMap<SourceBatch, BatchAction>();
  /** Inbox files by path: the size and mtime last seen, and since when they have not changed. */
  private readonly observed = new Map<string, { size: number; mtimeMs: number; since: number }>();
  /** Files archived lately, watched for changes until `until` (bounded by MAX_WATCHED_ARCHIVED). */
  private readonly archived: Array<{ file: CandidateFile; sha256: string; records: number; until: number }> = [];
  /** Files found changed after they were taken: reported (quarantine + failed/) next. */
  private readonly changed: Array<{ file: CandidateFile; sha256: string; problem: Problem }> = [];
  private readonly watchAfterIngestMs: number;
  private readonly watchers: FSWatcher[] = [];
  private wake: (() => void) | undefined;
  private context!: SourceContext;
  private logger!: Logger;
  private metrics!: PartnerFeedMetrics;

  constructor(private readonly config: FileSourceConfig) {
    this.pollIntervalMs = parseDuration(config.poll_interval) as number;
    this.settleMs = parseDuration(config.settle_time) as number;
    this.watchAfterIngestMs = parseDuration(config.watch_after_ingest) as number;
    this.partners = config.partners.map((partner, index) => {
      checkPartnerFormat(partner, `file_source partners[${index}]`);
      const inbox = resolve(partner.inbox);
      return {
        config: partner,
        settleMs: partner.settle_time === undefined ? this.settleMs : parseDuration(partner.settle_time) as number,
        inbox,
        archive: resolve(partner.archive_dir ?? join(inbox, 'archive')),
        failed: resolve(partner.failed_dir ?? join(inbox, 'failed')),
        extensions: (partner.extensions ?? DEFAULT_EXTENSIONS[partner.format]).map((extension) => extension.toLowerCase()),
      };
    });
  }

  async connect(context: SourceContext): Promise<void> {
    this.context = context;
    this.logger = context.logger;
    this.metrics = new PartnerFeedMetrics(context.metricsRegistry, context.label, 'file');
    this.cursor = readCursor(context.cursor);
    for (const partner of this.partners) {
      for (const dir of [partner.inbox, partner.archive, partner.failed]) {
        await mkdir(dir, { recursive: true }).catch((error: unknown) => { throw fileError(`cannot create ${dir}`, error); });
      }
      try {
        const watcher = watch(partner.inbox, () => this.wake?.());
        watcher.on('error', () => undefined); // polling still finds the files
        this.watchers.push(watcher);
      } catch {
        // Some filesystems (network mounts) cannot be watched: polling alone then.
      }
    }
    context.signal.addEventListener('abort', () => this.wake?.(), { once: true });
    context.setHealth('up');
    this.logger.info({ inboxes: this.partners.map((partner) => `${partner.config.name} ${partner.inbox}`), resuming: this.cursor.current?.name }, 'file source watching');
  }

  async produce(): Promise<SourceBatch | undefined> {
    if (this.poisoned) {
      const { file, sha256, problem } = this.poisoned;
      this.poisoned = undefined;
      return this.rejectionBatch(file, sha256, [problem]);
    }
    const changed = this.changed.shift();
    if (changed) return this.rejectionBatch(changed.file, changed.sha256, [changed.problem], 0, false);
    if (this.active) return this.nextPart(this.active);
    await this.checkArchived();
    if (this.changed.length > 0) return this.produce();
    const file = await this.nextFile();
    if (!file) {
      await this.idle();
      return undefined;
    }
    return this.startFile(file);
  }

  /** Waits for the poll interval, a change in an inbox, or the end. */
  private async idle(): Promise<void> {
    if (this.context.signal.aborted) return;
    await new Promise<void>((resolveWait) => {
      const timer = setTimeout(done, this.pollIntervalMs);
      function done(): void {
        clearTimeout(timer);
        resolveWait();
      }
      this.wake = done;
    });
    this.wake = undefined;
  }

  /** The file to take next: the one a crash left half-committed first, then the oldest settled file. */
  private async nextFile(): Promise<CandidateFile | undefined> {
    const now = Date.now();
    const candidates: CandidateFile[] = [];
    const present = new Set<string>();
    for (const partner of this.partners) {
      let names: string[];
      try {
        names = await readdir(partner.inbox);
      } catch (error) {
        this.context.setHealth('degraded', `cannot list ${partner.inbox}: ${errorMessage(error)}`);
        continue;
      }
      for (const name of names) {
        const lower = name.toLowerCase();
        if (name.startsWith('.') || !partner.extensions.some((extension) => lower.endsWith(extension))) continue;
        const marker = partner.config.ready_marker;
        if (marker && lower.endsWith(marker.toLowerCase())) continue;
        const path = join(partner.inbox, name);
        const info = await stat(path).catch(() => undefined);
        if (!info?.isFile()) continue;
        present.add(path);
        // Stable = the same size and mtime seen for the settle time, by this process.
        const seen = this.observed.get(path);
        if (!seen || seen.size !== info.size || seen.mtimeMs !== info.mtimeMs) {
          this.observed.set(path, { size: info.size, mtimeMs: info.mtimeMs, since: now });
          if (partner.settleMs > 0) continue;
        } else if (now - seen.since < partner.settleMs) continue;
        if (now - info.mtimeMs < partner.settleMs) continue;
        if (marker && !(await stat(`${path}${marker}`).then((found) => found.isFile(), () => false))) continue;
        candidates.push({ partner, name, path, size: info.size, mtimeMs: info.mtimeMs });
      }
    }
    for (const path of this.observed.keys()) if (!present.has(path)) this.observed.delete(path);
    const current = this.cursor.current;
    if (current) {
      const resumed = candidates.find((candidate) => candidate.partner.config.name === current.partner && candidate.name === current.name);
      if (resumed) return resumed;
    }
    candidates.sort((a, b) => a.mtimeMs - b.mtimeMs || a.name.localeCompare(b.name));
    return candidates[0];
  }

  /** Hashes and checks a whole file, then produces it in one batch, or starts producing it in parts. */
  private async startFile(file: CandidateFile): Promise<SourceBatch | undefined> {
    const sha256 = await hashFile(file.path).catch((error: unknown) => { throw fileError(`cannot read ${file.path}`, error); });
    const handled = this.cursor.handled.find((entry) => entry.startsWith(`${sha256.slice(0, HASH_PREFIX)}:`));
    if (handled) {
      // Already committed: a second drop of the same content, or a crash before the move.
      const wasRejected = handled.endsWith(':q');
      await this.moveAway(file, wasRejected ? file.partner.failed : file.partner.archive, sha256);
      this.logger.info({ partner: file.partner.config.name, file: file.name, sha256 }, `file content was already ${wasRejected ? 'rejected' : 'ingested'}; moved without producing it again`);
      return undefined;
    }
    const current = this.cursor.current;
    const resumeFrom = current && current.name === file.name && current.partner === file.partner.config.name && current.sha256 === sha256 ? current.committed : 0;
    if (current && resumeFrom === 0 && current.name === file.name) {
      this.logger.warn({ partner: file.partner.config.name, file: file.name, committed: current.committed }, 'a partly committed file changed before it was finished; its committed records stay, the new content is ingested as a new file');
    }

    // Pass 1: read everything, keep the records only while the file fits in one transaction.
    const limit = this.config.max_records_per_transaction;
    const problems: Problem[] = [];
    let kept: CanonicalRecord[] | undefined = [];
    let total = 0;
    try {
      for await (const item of this.readFile(file, sha256)) {
        if (this.context.signal.aborted) return undefined;
        if ('error' in item) {
          problems.push(problemOf(item.error));
          if (problems.length >= MAX_REPORTED_PROBLEMS) break;
          continue;
        }
        const output = OUTPUT_OF_KIND[item.record.kind];
        if (this.context.hasOutput && !this.context.hasOutput(output)) {
          problems.push({
            code: 'LL_PARTNER_TYPE_UNROUTED',
            message: `the file holds ${item.record.kind} records, which this source does not route: topology.yaml maps no "${output}" output for ${this.context.label}`,
            location: item.position,
          });
          break;
        }
        const size = recordBytesOver(item.record, file.partner.config.max_record_bytes);
        if (size !== undefined) {
          problems.push({
            code: 'LL_FILE_RECORD_TOO_LARGE',
            message: `${item.position} becomes a ${item.record.kind} record of about ${size} bytes; partner ${file.partner.config.name} accepts ${file.partner.config.max_record_bytes} bytes a record at most (max_record_bytes)`,
            location: item.position,
          });
          if (problems.length >= MAX_REPORTED_PROBLEMS) break;
          continue;
        }
        total++;
        if (kept && total <= limit && resumeFrom === 0) kept.push(item.record);
        else kept = undefined;
      }
    } catch (error) {
      if (!(error instanceof LifelineError) || error.code === 'LL_FILE_IO') throw error;
      problems.push(problemOf(error));
    }
    if (!(await this.unchangedSinceTaken(file))) return undefined;
    if (problems.length > 0) return this.rejectionBatch(file, sha256, problems, resumeFrom);

    const traceparent = newTraceparent();
    if (kept) {
      const records = kept.map((record) => this.sourceRecord(file, sha256, record, traceparent));
      const batch: SourceBatch = { records, cursor: this.withHandled(sha256, 'a', undefined) };
      this.actions.set(batch, { kind: 'archive', file, sha256, records: kept, counts: countKinds(kept) });
      return batch;
    }
    this.logger.info({ partner: file.partner.config.name, file: file.name, records: total, resume_from: resumeFrom }, 'large file: producing it in several transactions');
    const items = this.readFile(file, sha256);
    for (let skipped = 0; skipped < resumeFrom;) {
      const next = await items.next();
      if (next.done) break;
      if ('record' in next.value) skipped++;
    }
    this.active = { file, sha256, total, items, committed: resumeFrom, traceparent };
    return this.nextPart(this.active);
  }

  /** The next transaction's worth of a large file. */
  private async nextPart(active: ActiveFile): Promise<SourceBatch> {
    const records: SourceRecord[] = [];
    const counts = new Map<string, number>();
    while (records.length < this.config.max_records_per_transaction && active.committed + records.length < active.total) {
      const next = await active.items.next();
      if (next.done) break;
      if ('error' in next.value) throw next.value.error; // checked in pass 1: the file changed under us
      records.push(this.sourceRecord(active.file, active.sha256, next.value.record, active.traceparent));
      counts.set(next.value.record.kind, (counts.get(next.value.record.kind) ?? 0) + 1);
    }
    const committed = active.committed + records.length;
    const last = committed >= active.total;
    const cursor = last
      ? this.withHandled(active.sha256, 'a', undefined)
      : { ...this.cursor, current: { partner: active.file.partner.config.name, name: active.file.name, sha256: active.sha256, committed, total: active.total } };
    const batch: SourceBatch = { records, cursor };
    this.actions.set(batch, last
      ? { kind: 'archive', file: active.file, sha256: active.sha256, records: active.total, counts }
      : { kind: 'part', file: active.file, counts });
    return batch;
  }

  /**
   * Whether the file still has the size and mtime it was taken with; if not, it is left for the
   * next scan (to be taken once stable again) and nothing read from it is produced.
   */
  private async unchangedSinceTaken(file: CandidateFile): Promise<boolean> {
    const info = await stat(file.path).catch(() => undefined);
    if (info && info.size === file.size && info.mtimeMs === file.mtimeMs) return true;
    this.observed.delete(file.path);
    this.logger.warn({ partner: file.partner.config.name, file: file.name }, 'file changed while it was read: nothing produced; it is taken again once stable');
    return false;
  }

  /**
   * A file that changed after it was taken: its committed records came from the content hashed
   * then; the change is reported (quarantine, failed/ with an LL_FILE_CHANGED report).
   */
  private async reportIfChanged(file: CandidateFile, takenSha256: string, records: number): Promise<boolean> {
    const info = await stat(file.path).catch(() => undefined);
    if (!info || (info.size === file.size && info.mtimeMs === file.mtimeMs)) return false;
    const now = await hashFile(file.path).catch(() => undefined);
    if (now === undefined || now === takenSha256) return false;
    this.changed.push({
      file: { ...file, size: info.size, mtimeMs: info.mtimeMs },
      sha256: now,
      problem: {
        code: 'LL_FILE_CHANGED',
        message: `the file changed after it was taken: ${records} record(s) of its earlier content (sha256 ${takenSha256.slice(0, 16)}…, ${file.size} bytes) were ingested, `
          + `the content it has now (sha256 ${now.slice(0, 16)}…, ${info.size} bytes) was not. Drop the complete file again to ingest it: the records already ingested come again with the same idempotency keys and are dropped as duplicates`,
        location: undefined,
      },
    });
    this.logger.error({ partner: file.partner.config.name, file: file.name, taken_sha256: takenSha256, sha256: now }, 'file changed after it was taken: reported as LL_FILE_CHANGED');
    return true;
  }

  /** Archived files still watched: a writer that kept appending after the file was taken is reported. */
  private async checkArchived(): Promise<void> {
    const now = Date.now();
    for (let index = this.archived.length - 1; index >= 0; index--) {
      const entry = this.archived[index] as (typeof this.archived)[number];
      if (now > entry.until) {
        this.archived.splice(index, 1);
        continue;
      }
      if (await this.reportIfChanged(entry.file, entry.sha256, entry.records)) this.archived.splice(index, 1);
    }
  }

  private async rejectionBatch(file: CandidateFile, sha256: string, problems: readonly Problem[], partial = 0, remember = true): Promise<SourceBatch> {
    const first = problems[0] as Problem;
    const records = quarantineRecords({
      source: this.context.label,
      partner: file.partner.config.name,
      channel: 'FILE',
      reasonCode: first.code,
      message: problems.length > 1 ? `${first.message} (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''}: see failed/${file.name}.error.json)` : first.message,
      location: first.location,
      receivedAt: Math.floor(file.mtimeMs),
      contentType: file.partner.config.format,
      deliveryId: file.name,
      raw: await readPrefix(file.path, this.config.quarantine_max_bytes).catch((error: unknown) => { throw fileError(`cannot read ${file.path}`, error); }),
      originalSize: file.size,
      sha256,
      truncated: file.size > this.config.quarantine_max_bytes,
      headers: { file_name: file.name, inbox: file.partner.inbox, format: file.partner.config.format, size_bytes: String(file.size) },
    }, headersFor({
      idempotencyKey: `${file.partner.config.name}|${sha256}:quarantine`,
      correlationId: `${file.name}@${sha256.slice(0, 12)}`,
      ingestedAt: new Date().toISOString(),
      source: this.context.label,
    }));
    // A changed file's new content is not remembered as handled: dropping it again complete ingests it.
    const batch: SourceBatch = { records, cursor: remember ? this.withHandled(sha256, 'q', undefined) : { ...this.cursor } };
    this.actions.set(batch, { kind: 'reject', file, sha256, problems, partial });
    return batch;
  }

  async acknowledge(batch: SourceBatch, outcome?: SourceBatchOutcome): Promise<void> {
    if (batch.cursor !== undefined) this.cursor = batch.cursor as FileCursor;
    const action = this.actions.get(batch);
    this.actions.delete(batch);
    if (!action) return;
    this.context.setHealth('up');
    const partner = action.file.partner.config.name;
    const deadLettered = outcome?.deadLettered ?? [];
    if (deadLettered.length > 0) {
      // Kept in the dead-letter topic (e.g. a record larger than its topic accepts): said here, so the file's fate is not read as whole.
      this.logger.warn({ partner, file: action.file.name, dead_lettered: deadLettered.length, codes: [...new Set(deadLettered.map((failure) => failure.code))] },
        'records of a file were dead-lettered; replay them with lifeline dlq replay once the cause is fixed');
    }
    const seconds = Math.max(0, (Date.now() - action.file.mtimeMs) / 1000);
    if (action.kind === 'part') {
      for (const [kind, count] of action.counts) this.metrics.recordsAccepted(partner, kind, count);
      if (this.active) this.active.committed = (this.cursor.current?.committed ?? this.active.committed);
      return;
    }
    if (action.kind === 'archive') {
      this.active = undefined;
      if (Array.isArray(action.records)) this.metrics.deliveryAccepted(partner, action.records, seconds);
      else {
        for (const [kind, count] of action.counts) this.metrics.recordsAccepted(partner, kind, count);
        this.metrics.deliveryAcceptedWithoutRecords(partner, seconds);
      }
      const records = typeof action.records === 'number' ? action.records : action.records.length;
      // Committed from the content hashed when it was taken; if it changed since, say so instead of archiving it.
      if (await this.reportIfChanged(action.file, action.sha256, records)) return;
      const target = await this.moveAway(action.file, action.file.partner.archive, action.sha256);
      if (target) {
        this.archived.push({ file: { ...action.file, path: target }, sha256: action.sha256, records, until: Date.now() + this.watchAfterIngestMs });
        if (this.archived.length > MAX_WATCHED_ARCHIVED) this.archived.shift();
      }
      this.logger.info({ partner, file: action.file.name, records }, 'file ingested and archived');
      return;
    }
    this.active = undefined;
    this.metrics.deliveryRejected(partner, (action.problems[0] as Problem).code, seconds);
    const report = {
      file: action.file.name,
      partner,
      sha256: action.sha256,
      size_bytes: action.file.size,
      rejected_at: new Date().toISOString(),
      outcome: action.partial > 0
        ? `rejected; ${action.partial} records of an earlier copy of this file name were already committed`
        : 'rejected: no record of this file was produced; its raw content is in the quarantine topic',
      problems: action.problems,
    };
    // The file is moved first and the report written last, under a temporary name and renamed: whoever
    // watches failed/ never reads half a report, and once the report is there the file is out of the inbox.
    await this.moveAway(action.file, action.file.partner.failed, action.sha256);
    const reportPath = join(action.file.partner.failed, `${action.file.name}.error.json`);
    await writeFile(`${reportPath}.partial`, `${JSON.stringify(report, null, 2)}\n`)
      .then(() => rename(`${reportPath}.partial`, reportPath))
      .catch((error: unknown) => this.logger.error({ err: errorMessage(error) }, 'cannot write the error report'));
    this.logger.warn({ partner, file: action.file.name, code: report.problems[0]?.code, location: report.problems[0]?.location, problems: action.problems.length }, 'file rejected: moved to failed/ and quarantined');
  }

  async fail(batch: SourceBatch, error: unknown, committedCursor: unknown): Promise<void> {
    const action = this.actions.get(batch);
    this.actions.delete(batch);
    this.cursor = readCursor(committedCursor);
    // Start over from what is committed: the file is checked again and resumed after its last committed record.
    await this.active?.items.return(undefined).catch(() => undefined);
    this.active = undefined;
    if (isRetriable(error)) {
      this.context.setHealth('degraded', `file not committed: ${errorMessage(error)}`);
      return;
    }
    // Kafka refused a record as too large that the limits read at start let through (a topic's limit
    // lowered while running): the host has read them again, so the file is tried once more and that
    // record is dead-lettered like any record too large for its topic (LL_RECORD_TOO_LARGE).
    if (action && action.kind !== 'reject' && refusedAsTooLarge(error) && !this.retriedTooLarge.has(action.file.path)) {
      this.retriedTooLarge.add(action.file.path);
      if (this.retriedTooLarge.size > MAX_WATCHED_ARCHIVED) this.retriedTooLarge.delete(this.retriedTooLarge.values().next().value as string);
      this.logger.warn({ partner: action.file.partner.config.name, file: action.file.name }, 'Kafka refused a record of the file as too large; trying the file once more with the limits read again');
      return;
    }
    // Not Kafka being away but something about this file's records: reject the file, or it would be retried for ever.
    if (action && action.kind !== 'reject') {
      this.poisoned = { file: action.file, sha256: 'sha256' in action ? action.sha256 : await hashFile(action.file.path), problem: { code: errorCode(error), message: errorMessage(error), location: undefined } };
    }
  }

  async close(): Promise<void> {
    for (const watcher of this.watchers.splice(0)) watcher.close();
    await this.active?.items.return(undefined).catch(() => undefined);
    this.active = undefined;
    this.wake?.();
  }

  private readFile(file: CandidateFile, sha256: string): AsyncGenerator<FileItem> {
    const delivery: DeliveryContext = {
      partner: file.partner.config.name,
      channel: 'FILE',
      deliveryId: `${file.name}@${sha256.slice(0, 12)}`,
      // The file's modification time, not the read time: records come out the same after a restart.
      receivedAt: Math.floor(file.mtimeMs),
      defaultCurrency: file.partner.config.default_currency,
    };
    const chunks = createReadStream(file.path, { highWaterMark: 256 * 1024 });
    return streamFileRecords(readChunks(chunks, file.path), file.name, file.partner.config, delivery, this.config.max_json_bytes);
  }

  private sourceRecord(file: CandidateFile, sha256: string, record: CanonicalRecord, traceparent: string): SourceRecord {
    return canonicalSourceRecord(record, headersFor({
      idempotencyKey: record.value.idempotency_key,
      correlationId: record.value.correlation_id ?? `${file.name}@${sha256.slice(0, 12)}`,
      ingestedAt: new Date().toISOString(),
      source: this.context.label,
      traceparent,
    }));
  }

  private withHandled(sha256: string, outcome: 'a' | 'q', current: FileCursor['current']): FileCursor {
    const handled = [...this.cursor.handled, `${sha256.slice(0, HASH_PREFIX)}:${outcome}`].slice(-this.config.remember_files);
    return current ? { version: 1, handled, current } : { version: 1, handled };
  }

  /**
   * Moves a handled file (and its ready marker) out of the inbox; a name already taken there gets a
   * suffix rather than being overwritten. Returns where it went, or undefined when it could not move.
   */
  private async moveAway(file: CandidateFile, dir: string, sha256: string): Promise<string | undefined> {
    let target = join(dir, file.name);
    if (await stat(target).then(() => true, () => false)) {
      const extension = extname(file.name);
      target = join(dir, `${basename(file.name, extension)}.${sha256.slice(0, 8)}-${randomBytes(2).toString('hex')}${extension}`);
    }
    this.observed.delete(file.path);
    try {
      await rename(file.path, target);
    } catch (error) {
      // Committed already, so nothing is lost: the next scan finds the file, knows its hash and moves it then.
      this.logger.error({ file: file.name, err: errorMessage(error) }, 'cannot move a handled file out of the inbox; will retry');
      return undefined;
    }
    const marker = file.partner.config.ready_marker;
    if (marker) await rename(`${file.path}${marker}`, `${target}${marker}`).catch(() => undefined);
    return target;
  }
}

function readCursor(value: unknown): FileCursor {
  if (value && typeof value === 'object' && (value as FileCursor).version === 1 && Array.isArray((value as FileCursor).handled)) return value as FileCursor;
  return { version: 1, handled: [] };
}

/** Kafka refused the batch as too large (the error itself, or what a kafkajs wrapper carries). */
function refusedAsTooLarge(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    if (['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE'].includes(errorCode(current))) return true;
    current = (current as { originalError?: unknown }).originalError ?? current.cause;
  }
  return false;
}

/**
 * A record's size as its canonical JSON (bigints as digits, an upper bound of its Avro encoding)
 * when it is over `limit`, else undefined. Most records are far below: a walk that allocates
 * nothing rules them out (an upper bound of the JSON size); only the rest are serialised.
 */
function recordBytesOver(record: CanonicalRecord, limit: number): number | undefined {
  if (jsonBytesAtMost(record.value) <= limit) return undefined;
  const size = Buffer.byteLength(JSON.stringify(record.value, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value)));
  return size > limit ? size : undefined;
}

/** An upper bound of a value's JSON size, walked without serialising (a UTF-8 byte becomes at most a 6-byte escape). */
function jsonBytesAtMost(value: unknown): number {
  if (value === null || value === undefined) return 4;
  if (typeof value === 'string') return Buffer.byteLength(value) * 6 + 2;
  if (typeof value === 'number' || typeof value === 'bigint') return 32;
  if (typeof value === 'boolean') return 5;
  if (value instanceof Uint8Array) return value.length * 12 + 32;
  let size = 2;
  if (Array.isArray(value)) {
    for (const item of value) size += jsonBytesAtMost(item) + 1;
    return size;
  }
  for (const key in value as Record<string, unknown>) size += key.length * 6 + 4 + jsonBytesAtMost((value as Record<string, unknown>)[key]);
  return size;
}

function problemOf(error: LifelineError): Problem {
  return { code: error.code, message: error.message, location: errorLocation(error) };
}

function countKinds(records: readonly CanonicalRecord[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const record of records) counts.set(record.kind, (counts.get(record.kind) ?? 0) + 1);
  return counts;
}

async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The first `limit` bytes of a file (a rejected file's content for quarantine). */
async function readPrefix(path: string, limit: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(limit);
    let filled = 0;
    while (filled < limit) {
      const { bytesRead } = await handle.read(buffer, filled, limit - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return buffer.subarray(0, filled);
  } finally {
    await handle.close();
  }
}

async function* readChunks(stream: AsyncIterable<Buffer | string>, path: string): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of stream) yield typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
  } catch (error) {
    throw fileError(`cannot read ${path}`, error);
  }
}

function fileError(message: string, cause: unknown): LifelineError {
  return new LifelineError('LL_FILE_IO', `${message}: ${errorMessage(cause)}`, { cause });
}
