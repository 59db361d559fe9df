import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { parse as parseYaml } from 'yaml';
import { LifelineError, errorMessage } from '../errors.ts';

/**
 * Who may steer Lifeline. Identities and their roles come from an operators file
 * (LIFELINE_OPERATORS_FILE, YAML or JSON, or the same document inline in LIFELINE_OPERATORS for
 * platforms that hand secrets over as environment variables); the caller says who they are with
 * LIFELINE_OPERATOR and proves it with LIFELINE_OPERATOR_TOKEN. Tokens are compared as SHA-256
 * digests in constant time and are never logged, printed or audited.
 */

export const ROLES = ['viewer', 'operator', 'approver', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** Every control action Lifeline checks, and the roles that may take it. Reading masked data needs no role. */
export const ACTION_ROLES = {
  'offsets.reset': ['operator', 'admin'],
  'groups.pause': ['operator', 'admin'],
  'groups.resume': ['operator', 'admin'],
  'dlq.replay': ['operator', 'admin'],
  'replay.plan': ['operator', 'admin'],
  'replay.approve': ['approver', 'admin'],
  'replay.reject': ['approver', 'admin'],
  'produce': ['operator', 'admin'],
  'schemas.register': ['operator', 'admin'],
  // PHI leaves its mask only for the few who must see it, and every time is audited.
  'consume.reveal': ['admin'],
  'dlq.reveal': ['admin'],
  // One PHI field of one record (the console's message viewer); the other fields stay masked.
  'record.reveal': ['admin'],
} as const satisfies Record<string, readonly Role[]>;

export type ControlAction = keyof typeof ACTION_ROLES;

/** Replay plans with fewer records than this run without an approver unless the operators file says otherwise. */
export const DEFAULT_AUTO_APPROVE_BELOW = 100;

const OperatorEntry = Type.Object({
  roles: Type.Array(Type.Union(ROLES.map((role) => Type.Literal(role))), { minItems: 1, description: 'What the identity may do.' }),
  token_sha256: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$', description: 'Hex SHA-256 of the token (preferred: the file then holds no usable secret).' })),
  token: Type.Optional(Type.String({ minLength: 16, description: 'The token itself, for files that are secrets already.' })),
  name: Type.Optional(Type.String({ description: 'Who this is, for people reading the audit trail.' })),
}, { additionalProperties: false });

export const OperatorsFileSchema = Type.Object({
  policy: Type.Optional(Type.Object({
    auto_approve_below: Type.Optional(Type.Integer({ minimum: 0, description: 'Replay plans with fewer records than this need no approver.' })),
  }, { additionalProperties: false })),
  operators: Type.Record(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._@-]*$' }), OperatorEntry),
}, { additionalProperties: false });

export type OperatorsFile = Static<typeof OperatorsFileSchema>;

export interface OperatorDirectory {
  /** Where the directory came from, for messages. */
  readonly source: string;
  readonly autoApproveBelow: number;
  readonly operators: ReadonlyMap<string, { readonly roles: readonly Role[]; readonly tokenDigest: Buffer }>;
}

/** The identity a command runs as, once its token matched. */
export interface Operator {
  readonly identity: string;
  readonly roles: readonly Role[];
}

/** What the caller claims (from the environment); either part may be missing. */
export interface OperatorClaim {
  readonly identity?: string;
  readonly token?: string;
}

export function claimFromEnvironment(env: NodeJS.ProcessEnv = process.env): OperatorClaim {
  return {
    ...(env.LIFELINE_OPERATOR ? { identity: env.LIFELINE_OPERATOR } : {}),
    ...(env.LIFELINE_OPERATOR_TOKEN ? { token: env.LIFELINE_OPERATOR_TOKEN } : {}),
  };
}

/** The operators directory from LIFELINE_OPERATORS_FILE or LIFELINE_OPERATORS; undefined when neither is set. */
export function loadOperatorDirectory(env: NodeJS.ProcessEnv = process.env): OperatorDirectory | undefined {
  const file = env.LIFELINE_OPERATORS_FILE;
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new LifelineError('LL_OPERATORS_INVALID', `LIFELINE_OPERATORS_FILE ${file} cannot be read: ${errorMessage(error)}`, { cause: error });
    }
    return parseOperatorDirectory(text, file);
  }
  if (env.LIFELINE_OPERATORS) return parseOperatorDirectory(env.LIFELINE_OPERATORS, 'LIFELINE_OPERATORS');
  return undefined;
}

/** YAML is a superset of JSON, so one parser reads both forms. */
export function parseOperatorDirectory(text: string, source: string): OperatorDirectory {
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (error) {
    throw new LifelineError('LL_OPERATORS_INVALID', `${source}: not valid YAML or JSON: ${errorMessage(error)}`, { cause: error });
  }
  const problems = [...Value.Errors(OperatorsFileSchema, document)].map((error) => `${error.path || '/'}: ${error.message}`);
  if (problems.length > 0) throw new LifelineError('LL_OPERATORS_INVALID', `${source}: ${problems.slice(0, 5).join('; ')}`, { details: { problems } });
  const parsed = document as OperatorsFile;
  const operators = new Map<string, { roles: readonly Role[]; tokenDigest: Buffer }>();
  for (const [identity, entry] of Object.entries(parsed.operators)) {
    if ((entry.token === undefined) === (entry.token_sha256 === undefined)) {
      throw new LifelineError('LL_OPERATORS_INVALID', `${source}: /operators/${identity}: give exactly one of token_sha256 and token`);
    }
    const tokenDigest = entry.token_sha256 !== undefined ? Buffer.from(entry.token_sha256, 'hex') : sha256(entry.token as string);
    operators.set(identity, Object.freeze({ roles: Object.freeze([...new Set(entry.roles)]), tokenDigest }));
  }
  return Object.freeze({ source, autoApproveBelow: parsed.policy?.auto_approve_below ?? DEFAULT_AUTO_APPROVE_BELOW, operators });
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** Compared whether or not the identity exists, so timing says nothing about which identities do. */
const UNKNOWN_IDENTITY_DIGEST = sha256('lifeline: no such operator');

export type Authentication =
  | { readonly ok: true; readonly operator: Operator }
  | { readonly ok: false; readonly claimed: string; readonly why: string };

/** Checks a claim against the directory; never says which part of a bad claim was wrong beyond what an operator needs. */
export function authenticate(directory: OperatorDirectory | undefined, claim: OperatorClaim): Authentication {
  const claimed = claim.identity ?? 'anonymous';
  if (!directory) {
    return { ok: false, claimed, why: 'no operators are configured (set LIFELINE_OPERATORS_FILE to an operators file)' };
  }
  if (!claim.identity || !claim.token) {
    return { ok: false, claimed, why: 'set LIFELINE_OPERATOR and LIFELINE_OPERATOR_TOKEN to say who you are' };
  }
  const entry = directory.operators.get(claim.identity);
  const matches = timingSafeEqual(sha256(claim.token), entry?.tokenDigest ?? UNKNOWN_IDENTITY_DIGEST);
  if (!entry || !matches) return { ok: false, claimed, why: `unknown operator or wrong token for ${claim.identity}` };
  return { ok: true, operator: { identity: claim.identity, roles: entry.roles } };
}

export function isAllowed(operator: Operator, action: ControlAction): boolean {
  const allowed: readonly Role[] = ACTION_ROLES[action];
  return operator.roles.some((role) => allowed.includes(role));
}

export function rolesFor(action: ControlAction): readonly Role[] {
  return ACTION_ROLES[action];
}
