import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { retry } from '../src/retry.ts';

/** Vite refuses a second build of the project while one runs (its command lock), whatever the output folder. */
const VITE_BUSY = /Found another Vite build process/;

/**
 * Builds the console page from the sources under test (`npm run build:console`: tsc, then vite)
 * into a folder of this test's own, and returns it. Not into console/dist: the runner runs two test
 * files at once, and a second `vite build --emptyOutDir` there empties the folder a first test's
 * server is serving from (seen in CI: the page loaded without its script and never showed the login).
 * A build started while another test's runs waits for it (vite allows one at a time).
 */
export async function buildConsolePage(): Promise<string> {
  const outDir = mkdtempSync(join(tmpdir(), 'lifeline-console-page-'));
  await retry(async () => {
    // npm hands the arguments after -- to the script's last command, `vite build console --emptyOutDir`.
    const build = spawnSync('npm', ['run', '--silent', 'build:console', '--', '--outDir', outDir, '--logLevel', 'warn'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    if (build.status !== 0) throw new Error(`npm run build:console failed:\n${build.stdout}\n${build.stderr}`);
  }, { retries: 30, initialDelayMs: 500, maxDelayMs: 3000, operation: 'building the console page', shouldRetry: (error) => VITE_BUSY.test(String(error)) });
  return outDir;
}
