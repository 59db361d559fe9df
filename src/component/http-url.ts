/** Why a configured URL is not an http(s) URL, or undefined when it is (or is empty: the schema says so). */
export function httpUrlProblem(value: unknown): string | undefined {
  if (typeof value !== 'string' || !value) return undefined;
  let protocol: string | undefined;
  try {
    protocol = new URL(value).protocol;
  } catch {
    protocol = undefined;
  }
  return protocol === 'http:' || protocol === 'https:' ? undefined : `"${value}" must be an http:// or https:// URL`;
}

/** The URL with any user and password taken out (a URL may carry them): for logs, describe output and the console. */
export function withoutCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    if (!parsed.username && !parsed.password) return url;
    parsed.username = '';
    parsed.password = '';
    return parsed.toString();
  } catch {
    return url;
  }
}
