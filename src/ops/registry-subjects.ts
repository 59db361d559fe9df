import { errorMessage } from '../errors.ts';
import { subjectFor, type SchemaRegistryConfig } from '../kafka/avro-serde.ts';

/**
 * What the schema registry says about a topic's value subject, through the Confluent API (which
 * Apicurio's ccompat and Confluent's registry both serve): its compatibility level (the subject's
 * own, or the registry's global one it falls back to) and how many versions it holds.
 */
export interface SubjectInfo {
  readonly subject: string;
  readonly registered: boolean;
  /** BACKWARD, FULL_TRANSITIVE, NONE…; null when the registry did not say. */
  readonly compatibility: string | null;
  readonly compatibilitySource: 'subject' | 'global' | null;
  readonly versions: number;
  readonly latestVersion: number | null;
  /** Why the registry could not be asked (unreachable, refused): the catalogue shows it instead. */
  readonly error?: string;
}

const TIMEOUT_MS = 5000;

async function getJson(config: SchemaRegistryConfig, path: string): Promise<{ status: number; body: unknown }> {
  const headers: Record<string, string> = { accept: 'application/vnd.schemaregistry.v1+json, application/json' };
  if (config.username !== undefined) headers.authorization = `Basic ${Buffer.from(`${config.username}:${config.password ?? ''}`).toString('base64')}`;
  const response = await fetch(`${config.url.replace(/\/$/, '')}${path}`, { headers, signal: AbortSignal.timeout(TIMEOUT_MS) });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // an error page, kept as text
  }
  return { status: response.status, body };
}

async function one(config: SchemaRegistryConfig, topic: string, global: () => Promise<string | null>): Promise<SubjectInfo> {
  const subject = subjectFor(topic);
  const encoded = encodeURIComponent(subject);
  try {
    const versions = await getJson(config, `/subjects/${encoded}/versions`);
    if (versions.status === 404) return { subject, registered: false, compatibility: null, compatibilitySource: null, versions: 0, latestVersion: null };
    if (versions.status !== 200 || !Array.isArray(versions.body)) throw new Error(`GET versions of ${subject}: HTTP ${versions.status}`);
    const numbers = (versions.body as unknown[]).filter((value): value is number => typeof value === 'number');
    const ownConfig = await getJson(config, `/config/${encoded}`);
    const level = (ownConfig.body as { compatibilityLevel?: unknown; compatibility?: unknown } | null);
    const own = ownConfig.status === 200 ? String(level?.compatibilityLevel ?? level?.compatibility ?? '') || null : null;
    const compatibility = own ?? await global();
    return {
      subject, registered: true, compatibility, compatibilitySource: own ? 'subject' : compatibility ? 'global' : null,
      versions: numbers.length, latestVersion: numbers.length > 0 ? Math.max(...numbers) : null,
    };
  } catch (error) {
    return { subject, registered: false, compatibility: null, compatibilitySource: null, versions: 0, latestVersion: null, error: `LL_REGISTRY_UNAVAILABLE: ${errorMessage(error)}` };
  }
}

/** Subject information for each topic, a few requests at a time. */
export async function subjectsInfo(config: SchemaRegistryConfig, topics: readonly string[], concurrency = 8): Promise<Map<string, SubjectInfo>> {
  let globalLevel: Promise<string | null> | undefined;
  const global = (): Promise<string | null> => {
    globalLevel ??= getJson(config, '/config').then(
      ({ status, body }) => (status === 200 ? String((body as { compatibilityLevel?: unknown })?.compatibilityLevel ?? '') || null : null),
      () => null,
    );
    return globalLevel;
  };
  const result = new Map<string, SubjectInfo>();
  const queue = [...topics];
  await Promise.all(Array.from({ length: Math.min(concurrency, queue.length) }, async () => {
    for (let topic = queue.shift(); topic !== undefined; topic = queue.shift()) result.set(topic, await one(config, topic, global));
  }));
  return result;
}
