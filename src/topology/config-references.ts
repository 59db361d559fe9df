import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { errorMessage } from '../errors.ts';

/**
 * `${VAR}`, `${VAR:-default}` and `${file:path}` inside string values of topology.yaml, the way
 * docker-compose and shells read them, so secrets and per-environment values stay out of the file.
 * `$$` is a literal `$`. `${NAME}` is also set by a file named in `NAME_FILE` (container secrets).
 */
export interface ReferenceContext {
  readonly env: NodeJS.ProcessEnv;
  /** Relative `${file:…}` paths resolve against the topology file's folder. */
  readonly baseDir: string;
}

export interface ResolvedText {
  readonly value: string;
  /** What could not be resolved; empty when every reference was. */
  readonly problems: readonly string[];
}

const REFERENCE = /\$\$|\$\{([^}]*)\}/g;
const VARIABLE = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([\s\S]*))?$/;
const FILE_PREFIX = 'file:';

export function resolveReferences(text: string, context: ReferenceContext): ResolvedText {
  const problems: string[] = [];
  const value = text.replace(REFERENCE, (whole: string, inner: string | undefined) => {
    if (inner === undefined) return '$';
    if (inner.startsWith(FILE_PREFIX)) return readReferencedFile(inner.slice(FILE_PREFIX.length), context, problems);
    const variable = VARIABLE.exec(inner);
    if (!variable) {
      problems.push(`${whole} is not a reference; write \${NAME}, \${NAME:-default} or \${file:path} (and $$ for a literal $)`);
      return whole;
    }
    const name = variable[1] as string;
    const fallback = variable[2];
    const set = context.env[name] ?? fromFileVariable(name, context, problems);
    // Like a shell's `:-`, an empty variable counts as unset when there is a default.
    if (fallback !== undefined) return set === undefined || set === '' ? fallback : set;
    if (set === undefined) {
      problems.push(`environment variable ${name} is not set (set it, or write \${${name}:-default})`);
      return '';
    }
    return set;
  });
  return { value, problems };
}

/**
 * `NAME_FILE=/run/secrets/x` stands for `NAME` set to that file's content, the convention of
 * Docker's official images, so a container's secrets can be files without another topology.yaml.
 */
function fromFileVariable(name: string, context: ReferenceContext, problems: string[]): string | undefined {
  const file = context.env[`${name}_FILE`];
  if (file === undefined || file === '') return undefined;
  try {
    return readFileSync(isAbsolute(file) ? file : resolve(context.baseDir, file), 'utf8').trim();
  } catch (error) {
    problems.push(`cannot read file ${file} named by ${name}_FILE: ${errorMessage(error)}`);
    return '';
  }
}

function readReferencedFile(path: string, context: ReferenceContext, problems: string[]): string {
  const trimmedPath = path.trim();
  if (!trimmedPath) {
    problems.push('${file:} names no file');
    return '';
  }
  const absolute = isAbsolute(trimmedPath) ? trimmedPath : resolve(context.baseDir, trimmedPath);
  try {
    // Secret files usually end with a newline that is not part of the secret.
    return readFileSync(absolute, 'utf8').trim();
  } catch (error) {
    problems.push(`cannot read file ${trimmedPath} named by \${file:…}: ${errorMessage(error)}`);
    return '';
  }
}

const SECRET_KEYS = ['password', 'api_key', 'secret', 'secrets', 'token'];

/** Keys that carry secrets: the names themselves and compounds ending in them (`webhook_secret`, `access_token`). */
export function isSecretKey(key: string): boolean {
  const lower = key.toLowerCase();
  return SECRET_KEYS.some((name) => lower === name || lower.endsWith(`_${name}`));
}

const SECRET_REFERENCE = /^\$\{(?:file:[^}]+|[A-Za-z_][A-Za-z0-9_]*(?::-)?)\}$/;

/**
 * Why a secret-bearing value is unacceptable, or undefined if it is a lone reference. A default is
 * allowed only when empty (`${NAME:-}`, an optional secret): any other default is a literal secret.
 */
export function literalSecretProblem(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'string' && SECRET_REFERENCE.test(value)) return undefined;
  if (typeof value === 'string' && /^\$\{[A-Za-z_][A-Za-z0-9_]*:-[^}]+\}$/.test(value)) {
    return 'secrets must be ${ENV} or ${file:…} references, not literal values (a default would be a literal secret)';
  }
  return 'secrets must be ${ENV} or ${file:…} references, not literal values';
}
