import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { registerComponent, scaffoldComponent, templateNames } from '../../src/cli/scaffold.ts';

// `lifeline new` in a copy of the repository: what it generates registers, documents itself,
// typechecks, and its generated unit test passes as generated.

const repo = resolve('.');
const copy = mkdtempSync(join(tmpdir(), 'lifeline-scaffold-'));
after(() => rmSync(copy, { recursive: true, force: true }));
for (const path of ['package.json', 'tsconfig.json', 'bin', 'src', 'connectors', 'processors', 'dev', 'schemas', 'docs', 'tests/fixtures/schemas']) {
  cpSync(join(repo, path), join(copy, path), { recursive: true });
}
symlinkSync(join(repo, 'node_modules'), join(copy, 'node_modules'));

/** A child node in the copy; without NODE_TEST_CONTEXT, a nested test run reports as a top-level one. */
const run = (args: string[]) => {
  const { NODE_TEST_CONTEXT: _nested, ...env } = process.env;
  return spawnSync(process.execPath, args, { cwd: copy, encoding: 'utf8', env: { ...env, LIFELINE_TEST_TIER: 'unit' } });
};

test('names: snake_case types become camelCase definitions in kebab-case files; anything else is refused', () => {
  assert.deepEqual(templateNames('claim_router'), { type: 'claim_router', constant: 'claimRouter', file: 'claim-router' });
  for (const bad of ['ClaimRouter', 'claim-router', '9lives', 'claim__router', '']) assert.throws(() => templateNames(bad), /not a component type name: use snake_case/);
  const list = "import { dedup } from '../../processors/dedup.ts';\nimport { ComponentRegistry } from '../component/component-registry.ts';\n\nexport function build() {\n  return new ComponentRegistry([\n    dedup,\n  ]);\n}\n";
  assert.equal(registerComponent(list, 'claimRouter', '../../processors/claim-router.ts'),
    "import { dedup } from '../../processors/dedup.ts';\nimport { claimRouter } from '../../processors/claim-router.ts';\nimport { ComponentRegistry } from '../component/component-registry.ts';\n\nexport function build() {\n  return new ComponentRegistry([\n    dedup,\n    claimRouter,\n  ]);\n}\n");
});

test('lifeline new processor / connector: the component, its registration, its docs; the generated tests pass and the code typechecks', { timeout: 180_000 }, async () => {
  // The connectors are generated in process (the CLI runs the same code), the processor by the CLI,
  // which regenerates docs/components.md with all three.
  scaffoldComponent(copy, 'source', 'jsonl_source', { regenerateDocs: false });
  scaffoldComponent(copy, 'sink', 'json_folder_sink', { regenerateDocs: false });
  const created = run(['bin/lifeline.mjs', 'new', 'processor', 'claim_router']);
  assert.equal(created.status, 0, created.stderr);
  assert.match(created.stdout, /created processors\/claim-router\.ts/);
  assert.match(created.stdout, /created tests\/processors\/claim-router\.unit\.test\.ts/);
  assert.match(created.stdout, /changed docs\/components\.md/);
  assert.throws(() => scaffoldComponent(copy, 'processor', 'claim_router'), /processors\/claim-router\.ts exists already: pick another name/);

  const list = readFileSync(join(copy, 'src/cli/component-list.ts'), 'utf8');
  for (const constant of ['claimRouter', 'jsonlSource', 'jsonFolderSink']) assert.match(list, new RegExp(`^    ${constant},$`, 'm'));
  const reference = readFileSync(join(copy, 'docs/components.md'), 'utf8');
  for (const [type, kind] of [['claim_router', 'processor'], ['jsonl_source', 'source'], ['json_folder_sink', 'sink']]) {
    assert.match(reference, new RegExp(`\\| \\[\`${type}\`\\]\\(#${type}\\) \\| ${kind} \\|`), `${type} in docs/components.md`);
  }

  const generatedTests = ['tests/processors/claim-router.unit.test.ts', 'tests/connectors/jsonl-source/jsonl-source.unit.test.ts', 'tests/connectors/json-folder-sink/json-folder-sink.unit.test.ts'];
  // One process for the three files: each child process would load tsx and the sources again.
  const tested = run(['--import', 'tsx', '--test', '--test-isolation=none', '--test-reporter=spec', ...generatedTests]);
  assert.equal(tested.status, 0, `${tested.stdout}\n${tested.stderr}`);
  assert.match(tested.stdout, /ℹ pass 4/);

  writeFileSync(join(copy, 'tsconfig.scaffold.json'), JSON.stringify({ extends: './tsconfig.json', include: ['src/types', 'processors/claim-router.ts', 'connectors/jsonl-source', 'connectors/json-folder-sink', ...generatedTests] }));
  // --preserve-symlinks: node_modules here is a link, and tsc looks for its platform binary beside itself.
  const typecheck = run(['--preserve-symlinks', '--preserve-symlinks-main', 'node_modules/typescript/bin/tsc', '-p', 'tsconfig.scaffold.json']);
  assert.equal(typecheck.status, 0, `${typecheck.stdout}\n${typecheck.stderr}`);
  assert.ok(existsSync(join(copy, 'connectors/jsonl-source/jsonl-source.ts')));
});
