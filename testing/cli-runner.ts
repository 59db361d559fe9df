import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `lifeline <args>` as a child process, as an operator would, with stdin and environment of the test's choosing. */
export function runLifeline(args: readonly string[], options: { env?: Record<string, string>; input?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/lifeline.mjs', ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...withoutOperatorVariables(process.env), ...(options.env ?? {}) },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString('utf8'); });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8'); });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`lifeline ${args.join(' ')} did not finish within ${options.timeoutMs ?? 180_000} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, options.timeoutMs ?? 180_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

function withoutOperatorVariables(env: NodeJS.ProcessEnv): Record<string, string> {
  const copy: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) if (value !== undefined && !name.startsWith('LIFELINE_OPERATOR')) copy[name] = value;
  return copy;
}

export interface TestOperators {
  readonly file: string;
  /** The environment a command runs with as this identity. */
  as(identity: 'viola' | 'otto' | 'olga' | 'april' | 'adam'): Record<string, string>;
}

const ROLES = {
  viola: ['viewer'],
  otto: ['operator'],
  olga: ['operator'],
  april: ['approver'],
  adam: ['admin'],
} as const;

/**
 * An operators file with one identity per role (two operators, so one can plan and another try
 * to approve): viola viewer, otto and olga operators, april approver, adam admin. Tokens are
 * stored as SHA-256 digests, as in production.
 */
export function writeTestOperators(policy: { autoApproveBelow?: number } = {}): TestOperators {
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-operators-'));
  const tokens = Object.fromEntries(Object.keys(ROLES).map((identity) => [identity, `token-${identity}-${Math.random().toString(36).slice(2)}-0123456789`]));
  const document = {
    ...(policy.autoApproveBelow !== undefined ? { policy: { auto_approve_below: policy.autoApproveBelow } } : {}),
    operators: Object.fromEntries(Object.entries(ROLES).map(([identity, roles]) => [identity, {
      roles: [...roles],
      token_sha256: createHash('sha256').update(tokens[identity] as string).digest('hex'),
    }])),
  };
  const file = join(dir, 'operators.yaml');
  writeFileSync(file, stringify(document));
  return {
    file,
    as: (identity) => ({ LIFELINE_OPERATORS_FILE: file, LIFELINE_OPERATOR: identity, LIFELINE_OPERATOR_TOKEN: tokens[identity] as string }),
  };
}
