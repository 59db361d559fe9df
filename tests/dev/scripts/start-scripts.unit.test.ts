// The shell side of a fresh machine: bin/pinned-node.sh puts the pinned Node (.nvmrc) first on PATH
// when the machine's Node is older, and dev/start.sh run a second time says where Lifeline already
// runs, without touching the running one's files. Both run in a copy of the scripts in a temp dir,
// with a stand-in `node` for the old system Node and a pre-filled cache (no download).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const pinned = readFileSync('.nvmrc', 'utf8').trim();

/** A checkout-shaped temp dir with the scripts, and a bin dir whose `node` claims to be Node 20. */
function sandbox(): { root: string; oldNodeBin: string; cache: string } {
  const root = mkdtempSync(join(tmpdir(), 'lifeline-scripts-'));
  for (const file of ['bin/pinned-node.sh', 'dev/start.sh', '.nvmrc']) {
    mkdirSync(join(root, file, '..'), { recursive: true });
    copyFileSync(file, join(root, file));
  }
  const oldNodeBin = join(root, 'old-node');
  mkdirSync(oldNodeBin);
  writeFileSync(join(oldNodeBin, 'node'), '#!/bin/sh\n# the machine\'s old Node\ncase "$*" in *process.versions*) echo 20 ;; *-v*) echo v20.20.2 ;; *) exit 1 ;; esac\n');
  chmodSync(join(oldNodeBin, 'node'), 0o755);
  // The pinned Node "already fetched": the Node running this test stands in for it.
  const cache = join(root, 'node-cache');
  mkdirSync(join(cache, pinned, 'bin'), { recursive: true });
  symlinkSync(process.execPath, join(cache, pinned, 'bin', 'node'));
  return { root, oldNodeBin, cache };
}

test('pinned-node.sh puts the pinned Node first on PATH when the machine\'s Node is older, and leaves a new enough one alone', () => {
  const { root, oldNodeBin, cache } = sandbox();
  const script = '. bin/pinned-node.sh && lifeline_use_pinned_node && command -v node && node -p process.version';
  const old = spawnSync('bash', ['-c', script], { cwd: root, encoding: 'utf8', env: { ...process.env, PATH: `${oldNodeBin}:/usr/bin:/bin`, LIFELINE_NODE_CACHE: cache } });
  assert.equal(old.status, 0, old.stderr);
  assert.equal(old.stdout.trim().split('\n')[0], join(cache, pinned, 'bin', 'node'));
  assert.match(old.stderr, new RegExp(`using the pinned Node .* from ${cache}`));
  const current = spawnSync('bash', ['-c', script], { cwd: root, encoding: 'utf8', env: { ...process.env, PATH: `${join(process.execPath, '..')}:/usr/bin:/bin`, LIFELINE_NODE_CACHE: join(root, 'unused') } });
  assert.equal(current.status, 0, current.stderr);
  assert.equal(current.stdout.trim().split('\n')[0], process.execPath, 'a Node as new as the pin is used as it is');
  assert.equal(current.stderr, '');
});

test('dev/start.sh run a second time says Lifeline already runs and where, and leaves the running one\'s log alone', () => {
  const { root, cache } = sandbox();
  mkdirSync(join(root, '.lifeline'));
  // This test's own process plays the running dev/start.sh.
  writeFileSync(join(root, '.lifeline/start.pid'), `${process.pid} metrics http://127.0.0.1:9464/readyz, webhooks http://127.0.0.1:8088, started 2026-12-02T01:00:00Z\n`);
  writeFileSync(join(root, '.lifeline/odoo-simulator.log'), 'the running simulator\'s log\n');
  const second = spawnSync('bash', ['dev/start.sh'], { cwd: root, encoding: 'utf8', env: { ...process.env, LIFELINE_NODE_CACHE: cache } });
  assert.equal(second.status, 1);
  assert.match(second.stderr, new RegExp(`Lifeline already runs from this checkout \\(dev/start.sh pid ${process.pid}; metrics http://127.0.0.1:9464/readyz`));
  assert.equal(readFileSync(join(root, '.lifeline/odoo-simulator.log'), 'utf8'), 'the running simulator\'s log\n');
  assert.match(readFileSync(join(root, '.lifeline/start.pid'), 'utf8'), new RegExp(`^${process.pid} `), 'the running one\'s pid file stays');
});
