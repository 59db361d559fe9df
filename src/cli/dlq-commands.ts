import type { Command } from 'commander';
import { LifelineError } from '../errors.ts';
import {
  describeSelection, readDeadLetters, readReplayMarkers, replayDeadLetters, selectDeadLetters,
  type DeadLetter,
} from '../ops/dead-letter-replay.ts';
import { RecordViewer } from '../ops/record-view.ts';
import { downstreamReach } from '../ops/topology-lineage.ts';
import { LIFELINE_HEADERS } from '../component/record-headers.ts';
import { deadLetterTopic } from '../topology/model.ts';
import { committedBacklog } from '../kafka/committed-backlog.ts';
import { requireReason } from '../ops/option-values.ts';
import { deadLetterFilter, replayLimits, resolveDeadLetterTopic, type DeadLetterFilterOptions } from '../ops/operator-requests.ts';
import { EXIT_CODES, parseInteger, printJson, printTable, runOpsCommand, topologyOption, type TopologyOptions } from './ops-session.ts';

interface ShowOptions extends TopologyOptions, DeadLetterFilterOptions {
  limit?: string;
  json?: boolean;
  reveal?: boolean;
  reason?: string;
}

interface ReplayOptions extends TopologyOptions, DeadLetterFilterOptions {
  max?: string;
  maxAttempts: string;
  includeReplayed?: boolean;
  dryRun?: boolean;
  execute?: boolean;
  reason?: string;
  json?: boolean;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, ...value.split(',').map((part) => part.trim()).filter(Boolean)];

/** Adds the dead-letter filter options to a command (shared by dlq show, dlq replay and replay plan). */
export function withDeadLetterFilters(command: Command): Command {
  return command
    .option('--error-class <class>', 'only these error classes, e.g. LL_ODOO_USER_ERROR (repeatable or comma-separated)', collect)
    .option('--since <iso>', 'only dead letters that failed at or after this time')
    .option('--until <iso>', 'only dead letters that failed at or before this time')
    .option('--key <key>', 'only records with this key')
    .option('--origin-topic <topic>', 'only records that came from this topic');
}

/** `lifeline dlq list|show|replay`: browse dead letters (PHI masked) and send them back to their origin topics once the cause is fixed. */
export function registerDlqCommands(program: Command): void {
  const dlq = program.command('dlq').description('dead letters: list, show (PHI masked), replay to their origin topics');

  dlq.command('list')
    .description('the dead-letter topic (ops.dlq.<label>.v1) of every component with its count, counts per error class, and how many were replayed')
    .option('--all', 'every dead-letter topic on the cluster, not only this topology\'s')
    .option('--json', 'print JSON')
    .addOption(topologyOption())
    .action(async (options: TopologyOptions & { all?: boolean; json?: boolean }) => {
      await runOpsCommand(options, 'dlq list', async (session) => {
        const admin = await session.admin();
        const existing = await admin.listTopics();
        const topics = [...new Set([
          ...(options.all ? existing.filter((topic) => /^ops\.dlq\..+\.v1$/.test(topic)) : []),
          ...Object.keys(session.topology.components).map(deadLetterTopic).filter((topic) => existing.includes(topic)),
        ])].sort();
        const markers = await readReplayMarkers(session.kafka, admin);
        const rows = [];
        for (const topic of topics) {
          const letters = await readDeadLetters(session.kafka, admin, topic);
          const byClass: Record<string, number> = {};
          for (const letter of letters) byClass[letter.errorClass] = (byClass[letter.errorClass] ?? 0) + 1;
          rows.push({ topic, component: topic.slice('ops.dlq.'.length, -'.v1'.length), deadLetters: letters.length, replayed: letters.filter((letter) => markers.has(letter.position)).length, byErrorClass: byClass });
        }
        // A dedup that maps a `conflicts` output routes same-key-other-content there instead of to its
        // dead-letter topic: those are shown beside the dead letters, counted as committed records.
        const conflictTopics = Object.entries(session.topology.components)
          .flatMap(([label, component]) => (component.outputs.conflicts && existing.includes(component.outputs.conflicts) ? [{ label, topic: component.outputs.conflicts }] : []));
        const conflicts = [];
        for (const { label, topic } of conflictTopics) {
          const partitions = session.topology.topics[topic]?.partitions ?? 1;
          const backlog = await committedBacklog(session.kafka, Array.from({ length: partitions }, (_, partition) => ({ topic, partition, from: null })));
          conflicts.push({ topic, component: label, conflicts: Number(backlog.reduce((sum, entry) => sum + entry.records, 0n)), exact: backlog.every((entry) => entry.exact) });
        }
        if (options.json) printJson([...rows.map((row) => ({ kind: 'dead_letters', ...row })), ...conflicts.map((row) => ({ kind: 'conflicts', ...row }))]);
        else {
          printTable(['DEAD-LETTER TOPIC', 'COMPONENT', 'DEAD LETTERS', 'REPLAYED', 'BY ERROR CLASS'], rows.map((row) => [
            row.topic, row.component, String(row.deadLetters), String(row.replayed), Object.entries(row.byErrorClass).map(([code, count]) => `${code}: ${count}`).join(', ') || '-',
          ]));
          if (conflicts.length > 0) {
            console.log('');
            printTable(['CONFLICTS TOPIC', 'COMPONENT', 'CONFLICTS'], conflicts.map((row) => [row.topic, row.component, `${row.exact ? '' : '~'}${row.conflicts}`]));
            console.log('(same key, other content: read them with `lifeline consume <topic>`)');
          }
        }
      });
    });

  withDeadLetterFilters(dlq.command('show')
    .description('the dead letters of a component: where they came from, the error, the record\'s headers and its value (PHI masked; --reveal for an admin, audited)')
    .argument('<component>', 'component label, or the dead-letter topic'))
    .option('--limit <n>', 'show at most this many (the oldest first)')
    .option('--json', 'print JSON lines')
    .option('--reveal', 'show PHI unmasked (admin role; audited)')
    .option('--reason <text>', 'why PHI is revealed (required with --reveal)')
    .addOption(topologyOption())
    .action(async (name: string, options: ShowOptions) => {
      await runOpsCommand(options, 'dlq show', async (session) => {
        const { topic } = resolveDeadLetterTopic(session.topology, name);
        const filter = deadLetterFilter(options);
        const show = async (reveal: boolean): Promise<number> => {
          const admin = await session.admin();
          const [letters, markers] = await Promise.all([readDeadLetters(session.kafka, admin, topic, filter), readReplayMarkers(session.kafka, admin)]);
          const limited = options.limit === undefined ? letters : letters.slice(0, parseInteger(options.limit, '--limit', 1));
          const viewer = new RecordViewer(session.serde, (origin) => session.topology.topics[origin]?.contract.phiPaths ?? [], reveal);
          for (const letter of limited) {
            const decoded = letter.value === null ? { value: null } : await viewer.valueView(letter.origin.topic, letter.value);
            const view = {
              ...describeLetter(letter), replayed: markers.get(letter.position) ?? null,
              ...(decoded.schemaId !== undefined ? { schemaId: decoded.schemaId } : {}),
              ...(decoded.error !== undefined ? { valueError: decoded.error } : { value: decoded.value }),
            };
            process.stdout.write(options.json ? `${JSON.stringify(view)}\n` : textOf(view));
          }
          session.progress(`${limited.length} of ${letters.length} dead letter(s) in ${topic}`);
          return limited.length;
        };
        if (!options.reveal) {
          await show(false);
          return EXIT_CODES.ok;
        }
        const reason = requireReason(options.reason);
        const parameters = { topic, filter };
        const operator = await session.authorise('dlq.reveal', topic, { reason, parameters });
        await session.audited(operator, 'dlq.reveal', topic, { reason, parameters }, async () => {
          const shown = await show(true);
          return { value: shown, detail: `${shown} dead letter(s) shown with PHI revealed` };
        });
        return EXIT_CODES.ok;
      });
    });

  withDeadLetterFilters(dlq.command('replay')
    .description('send dead letters back to their origin topics, with their own headers (idempotency key included) plus lifeline.replay.*; '
      + 'each batch commits in one transaction with a marker, so nothing is replayed twice unless --include-replayed. Operator role; audited')
    .argument('<component>', 'component label, or the dead-letter topic'))
    .option('--max <n>', 'replay at most this many now')
    .option('--max-attempts <n>', 'retry budget: leave records that were replayed this many times and failed again', '3')
    .option('--include-replayed', 'replay dead letters that were replayed before as well')
    .option('--dry-run', 'say what would be replayed; send nothing')
    .option('--execute', 'replay')
    .option('--reason <text>', 'why (required with --execute; goes to the audit trail)')
    .option('--json', 'print JSON')
    .addOption(topologyOption())
    .action(async (name: string, options: ReplayOptions) => {
      await runOpsCommand(options, 'dlq replay', async (session) => {
        if (Boolean(options.dryRun) === Boolean(options.execute)) throw new LifelineError('LL_CONFIG_INVALID', 'give exactly one of --dry-run and --execute');
        const { topic } = resolveDeadLetterTopic(session.topology, name);
        const filter = deadLetterFilter(options);
        const limits = replayLimits(options);
        const admin = await session.admin();
        if (options.dryRun) {
          const selection = await selectDeadLetters(session.kafka, admin, topic, filter, limits);
          const reach = downstreamReach(session.topology, { topics: [...new Set(selection.selected.map((letter) => letter.origin.topic))] });
          const summary = { topic, status: 'dry run: nothing was sent', selection: describeSelection(selection), toReplay: selection.selected.length, reaches: reach, records: selection.selected.map(describeLetter) };
          if (options.json) printJson(summary);
          else {
            process.stdout.write(`${topic}: ${summary.selection} (dry run: nothing was sent)\n`);
            process.stdout.write(`reaches components: ${reach.components.join(', ') || 'none'}; sinks: ${reach.sinks.join(', ') || 'none'}\n`);
            printTable(['DEAD LETTER', 'ERROR CLASS', 'KEY', 'ORIGIN'], selection.selected.map((letter) => [letter.position, letter.errorClass, letter.key ?? '-', `${letter.origin.topic}/${letter.origin.partition}@${letter.origin.offset}`]));
          }
          return EXIT_CODES.ok;
        }
        const reason = requireReason(options.reason);
        const parameters = { topic, filter, limits };
        const operator = await session.authorise('dlq.replay', topic, { reason, parameters });
        const outcome = await session.audited(operator, 'dlq.replay', topic, { reason, parameters }, async (actionId) => {
          const selection = await selectDeadLetters(session.kafka, admin, topic, filter, limits);
          // Source dead letters hold JSON: they are re-encoded with the origin topic's schema on the way back.
          const encode = (origin: string, value: unknown): Promise<Buffer> => session.serde.encode(origin, value);
          const result = await replayDeadLetters(session.kafka, admin, topic, selection.selected, { id: actionId, by: operator.identity }, (line) => session.progress(line), undefined, encode);
          return {
            value: { ...result, selection: describeSelection(selection) },
            detail: `${describeSelection(selection)}; replayed ${result.replayed}: ${Object.entries(result.byOriginTopic).map(([origin, count]) => `${count} to ${origin}`).join(', ') || 'none'}`,
            parameters: { ...parameters, replayed: selection.selected.map((letter) => letter.position) },
          };
        });
        if (options.json) printJson({ topic, ...outcome });
        else process.stdout.write(`${topic}: ${outcome.selection}; replayed ${outcome.replayed}${Object.keys(outcome.byOriginTopic).length > 0 ? ` (${Object.entries(outcome.byOriginTopic).map(([origin, count]) => `${count} to ${origin}`).join(', ')})` : ''}\n`);
        return EXIT_CODES.ok;
      });
    });
}

function describeLetter(letter: DeadLetter): Record<string, unknown> {
  return {
    deadLetter: letter.position,
    failedAt: new Date(letter.failedAt).toISOString(),
    errorClass: letter.errorClass,
    errorMessage: letter.errorMessage,
    component: letter.component,
    attempts: letter.attempts,
    replayCount: letter.replayCount,
    origin: letter.origin,
    key: letter.key,
    idempotencyKey: letter.headers[LIFELINE_HEADERS.idempotencyKey] ?? null,
    headers: letter.headers,
  };
}

function textOf(view: Record<string, unknown>): string {
  const origin = view.origin as DeadLetter['origin'];
  const replayed = view.replayed as { replay_id: string; by: string; at: number } | null;
  const lines = [
    `${String(view.deadLetter)}  failed ${String(view.failedAt)}  ${String(view.errorClass)}`,
    `  error        ${String(view.errorMessage)}`,
    `  origin       ${origin.topic}/${origin.partition}@${origin.offset}`,
    `  key          ${String(view.key ?? '-')}   idempotency key ${String(view.idempotencyKey ?? '-')}`,
    `  replayed     ${replayed ? `by ${replayed.by} at ${new Date(replayed.at).toISOString()} (${replayed.replay_id})` : 'no'}${Number(view.replayCount) > 0 ? `; this record had been replayed ${String(view.replayCount)} time(s) before it failed` : ''}`,
    `  value        ${view.valueError !== undefined ? String(view.valueError) : JSON.stringify(view.value)}`,
  ];
  return `${lines.join('\n')}\n\n`;
}
