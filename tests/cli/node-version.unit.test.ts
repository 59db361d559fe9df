import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
// @ts-expect-error plain ESM of bin/, no declarations (it runs before any TypeScript can)
import { pinnedNodeVersion, unsupportedNodeMessage } from '../../bin/node-version.mjs';

test('a Node older than the major pinned in .nvmrc gets a message that says what to run; the pinned major and newer pass', () => {
  const pinned = pinnedNodeVersion(new URL('../../', import.meta.url)) as string;
  assert.match(pinned, /^\d+\.\d+\.\d+$/);
  const major = Number(pinned.split('.')[0]);
  const message = unsupportedNodeMessage('20.20.2', pinned) as string;
  assert.match(message, new RegExp(`needs Node\\.js ${major} or newer \\(\\.nvmrc pins ${pinned.replaceAll('.', '\\.')}\\); this is Node 20\\.20\\.2`));
  assert.match(message, /\. bin\/pinned-node\.sh && lifeline_use_pinned_node/);
  assert.equal(unsupportedNodeMessage(`${major}.0.0`, pinned), undefined);
  assert.equal(unsupportedNodeMessage(`${major + 1}.1.0`, pinned), undefined);
  assert.equal(unsupportedNodeMessage('20.20.2', undefined), undefined, 'no .nvmrc (the image): no check');
});

test('lifeline on this (supported) Node starts past the check (its help answers)', () => {
  const run = spawnSync(process.execPath, ['bin/lifeline.mjs', '--help'], { encoding: 'utf8', env: { ...process.env, LIFELINE_FROM_DIST: '' } });
  assert.equal(run.status, 0, run.stderr);
  assert.doesNotMatch(run.stderr, /needs Node\.js/);
  assert.match(run.stdout, /Usage: lifeline/);
});
