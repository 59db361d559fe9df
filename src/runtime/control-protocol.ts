import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

/**
 * The control topic through which operators steer running `lifeline run` processes without
 * stopping them. One partition, so every process sees commands and acknowledgements in one order.
 * Values are JSON (an internal topic read only by Lifeline), keyed by consumer group.
 *
 * The exchange for an offset reset of a running group:
 *   CLI → pause {group, lease}   every host owning the group leaves it, then → ack paused
 *   CLI waits until the group is Empty, sets the offsets
 *   CLI → resume {group}         the hosts rejoin (stores restore from changelogs) → ack resumed
 * A pause holds only for its lease: a CLI that dies mid-way cannot leave a group stopped for good.
 */
export const CONTROL_TOPIC = '_lifeline.control';

/** Kept a day: commands are acted on within seconds; the rest is for looking back. */
export const CONTROL_TOPIC_RETENTION_MS = 24 * 3600 * 1000;

const PauseCommand = Type.Object({
  type: Type.Literal('pause'),
  command_id: Type.String({ minLength: 1 }),
  group: Type.String({ minLength: 1 }),
  requested_by: Type.String(),
  /** Epoch ms after which the hosts resume on their own. */
  lease_until: Type.Number(),
  at: Type.Number(),
});

const ResumeCommand = Type.Object({
  type: Type.Literal('resume'),
  command_id: Type.String({ minLength: 1 }),
  group: Type.String({ minLength: 1 }),
  requested_by: Type.String(),
  at: Type.Number(),
});

const Acknowledgement = Type.Object({
  type: Type.Literal('ack'),
  command_id: Type.String({ minLength: 1 }),
  group: Type.String({ minLength: 1 }),
  /** Which `lifeline run` process answers: host name, pid and a random suffix. */
  instance: Type.String(),
  components: Type.Array(Type.String()),
  state: Type.Union([Type.Literal('paused'), Type.Literal('resumed'), Type.Literal('failed')]),
  detail: Type.String(),
  at: Type.Number(),
});

export const ControlMessageSchema = Type.Union([PauseCommand, ResumeCommand, Acknowledgement]);

export type PauseCommand = Static<typeof PauseCommand>;
export type ResumeCommand = Static<typeof ResumeCommand>;
export type ControlAcknowledgement = Static<typeof Acknowledgement>;
export type ControlMessage = Static<typeof ControlMessageSchema>;

/** Parses a control record; undefined for anything that is not a well-formed control message. */
export function parseControlMessage(bytes: Buffer | null): ControlMessage | undefined {
  if (!bytes) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  return Value.Check(ControlMessageSchema, parsed) ? parsed : undefined;
}

export function encodeControlMessage(message: ControlMessage): { key: string; value: string } {
  return { key: message.group, value: JSON.stringify(message) };
}
