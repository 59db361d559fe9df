import { setTimeout as sleep } from 'node:timers/promises';
import type { LifelineProcess } from './runtime-fixture.ts';

/** Polls until `check` holds (or throws naming `what` after `timeoutMs`). */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** The runtime's HTTP port (/metrics, /readyz), from its log line. */
export async function runtimePort(lifeline: LifelineProcess): Promise<number> {
  const line = await lifeline.waitForLine(/serving \/metrics/);
  return (JSON.parse(line) as { port: number }).port;
}

export async function readyStatus(port: number): Promise<number> {
  return (await fetch(`http://127.0.0.1:${port}/readyz`)).status;
}

/** The value of a counter sample with exactly these labels (0 when absent). */
export async function metricValue(port: number, name: string, labels: Readonly<Record<string, string>>): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const matches = Object.entries(labels).every(([label, value]) => line.includes(`${label}="${value}"`));
    if (matches) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}
