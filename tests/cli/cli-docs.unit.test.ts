import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { Command } from 'commander';
import { commandPaths, renderCliDocs } from '../../src/cli/cli-docs.ts';

test('docs/cli.md is what the commands render to (lifeline docs cli)', () => {
  const printed = spawnSync(process.execPath, ['bin/lifeline.mjs', 'docs', 'cli'], { encoding: 'utf8' });
  assert.equal(printed.status, 0, printed.stderr);
  assert.equal(readFileSync('docs/cli.md', 'utf8'), printed.stdout, 'docs/cli.md is out of date: run `node bin/lifeline.mjs docs cli --write` and commit the result');
});

test('each command gets its usage, arguments, options and defaults', () => {
  const program = new Command('lifeline');
  const group = program.command('groups').description('consumer groups');
  group.command('pause').description('pause a group').argument('<group>', 'the group id').option('--for <duration>', 'how long', '5m').requiredOption('--reason <text>', 'why');
  program.command('run').description('run it');
  assert.deepEqual(commandPaths(program), ['groups pause', 'run']);
  const rendered = renderCliDocs(program);
  assert.match(rendered, /^\| \[`lifeline groups pause`\]\(#lifeline-groups-pause\) \| pause a group \|$/m);
  assert.match(rendered, /^lifeline groups pause \[options\] <group>$/m);
  assert.match(rendered, /^\| `<group>` \| the group id \|$/m);
  assert.match(rendered, /^\| `--for <duration>` \| how long \| `"5m"` \|$/m);
  assert.match(rendered, /^\| `--reason <text>` \| why \(required\) \| {2}\|$/m);
});
