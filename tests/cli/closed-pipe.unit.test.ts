// Output to a reader that went away (`lifeline docs components | head -1`) ends the command quietly:
// no EPIPE stack trace, a clean exit.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';

test('a closed stdout ends a command quietly', { timeout: 60_000 }, async () => {
  const child = spawn(process.execPath, ['bin/lifeline.mjs', 'docs', 'components'], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.destroy(); // the reader is gone before the first write
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8'); });
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(stderr, '', 'nothing on stderr');
  assert.equal(code, 0);
});
