import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { claimStateDirectory } from '../../../src/runtime/state-directory.ts';

test('each runtime gets a state directory of its own; a released or dead owner\'s slot is taken back', () => {
  const root = join(mkdtempSync(join(tmpdir(), 'lifeline-state-')), 'state');
  const first = claimStateDirectory(root);
  const second = claimStateDirectory(root);
  assert.deepEqual([first.slot, second.slot], [0, 1], 'two processes (or runtimes) on one topology never share a folder');
  assert.equal(JSON.parse(readFileSync(join(first.dir, 'LOCK'), 'utf8')).pid, process.pid);
  first.release();
  const again = claimStateDirectory(root);
  assert.equal(again.slot, 0, 'a restart finds its slot (and its checkpoints) again');

  // A lock left by a process that no longer runs (SIGKILL) is stale.
  const deadSlot = join(root, 'slot-2');
  mkdirSync(deadSlot, { recursive: true });
  writeFileSync(join(deadSlot, 'LOCK'), JSON.stringify({ pid: 2 ** 22 + 12345, host: hostname(), since: new Date().toISOString() }));
  const third = claimStateDirectory(root);
  assert.equal(third.slot, 2);
  for (const claimed of [second, again, third]) claimed.release();
});
