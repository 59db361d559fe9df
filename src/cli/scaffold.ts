import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { LifelineError } from '../errors.ts';
import {
  processorTemplate, processorTestTemplate, sinkTemplate, sinkTestTemplate, sourceTemplate, sourceTestTemplate, type TemplateNames,
} from './scaffold-templates.ts';

/**
 * `lifeline new processor|connector NAME`: a new component the way the project wants one — one
 * file from a template, one line in src/cli/component-list.ts, a unit test on the topology test
 * driver that passes as generated, and docs/components.md regenerated to include it.
 */
export type ScaffoldKind = 'processor' | 'source' | 'sink';

export interface ScaffoldResult {
  readonly names: TemplateNames;
  /** Repository-relative paths, created or changed. */
  readonly created: readonly string[];
  readonly changed: readonly string[];
}

const COMPONENT_LIST = 'src/cli/component-list.ts';
const TYPE_NAME = /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/;

export function templateNames(type: string): TemplateNames {
  if (!TYPE_NAME.test(type)) {
    throw new LifelineError('LL_CONFIG_INVALID', `"${type}" is not a component type name: use snake_case, e.g. claim_router (it is the type: in topology.yaml)`);
  }
  const parts = type.split('_');
  return {
    type,
    constant: parts.map((part, index) => (index === 0 ? part : part.charAt(0).toUpperCase() + part.slice(1))).join(''),
    file: parts.join('-'),
  };
}

/** Writes the component, its test and its registration under `root`, then regenerates the docs there. */
export function scaffoldComponent(root: string, kind: ScaffoldKind, type: string, options: { regenerateDocs?: boolean } = {}): ScaffoldResult {
  const names = templateNames(type);
  const [componentFile, testFile, component, test] = kind === 'processor'
    ? [`processors/${names.file}.ts`, `tests/processors/${names.file}.unit.test.ts`, processorTemplate(names), processorTestTemplate(names)]
    : [`connectors/${names.file}/${names.file}.ts`, `tests/connectors/${names.file}/${names.file}.unit.test.ts`,
      kind === 'source' ? sourceTemplate(names) : sinkTemplate(names), kind === 'source' ? sourceTestTemplate(names) : sinkTestTemplate(names)];
  const listPath = join(root, COMPONENT_LIST);
  if (!existsSync(listPath)) throw new LifelineError('LL_CONFIG_INVALID', `${root} is not a Lifeline repository (no ${COMPONENT_LIST}); run from its root or pass --root`);
  for (const file of [componentFile, testFile]) {
    if (existsSync(join(root, file))) throw new LifelineError('LL_CONFIG_INVALID', `${file} exists already: pick another name`);
  }
  const list = readFileSync(listPath, 'utf8');
  if (new RegExp(`\\b${names.constant}\\b`).test(list)) throw new LifelineError('LL_CONFIG_INVALID', `${COMPONENT_LIST} already registers ${names.constant}`);

  const registered = registerComponent(list, names.constant, `../../${componentFile}`);
  for (const [file, text] of [[componentFile, component], [testFile, test]] as const) {
    mkdirSync(dirname(join(root, file)), { recursive: true });
    writeFileSync(join(root, file), text, { flag: 'wx' });
  }
  writeFileSync(listPath, registered);
  const changed = [COMPONENT_LIST];
  if (options.regenerateDocs ?? true) {
    // A child process: this one loaded the component list before the new component existed.
    const docs = spawnSync(process.execPath, [join(root, 'bin', 'lifeline.mjs'), 'docs', 'components', '--write'], { cwd: root, encoding: 'utf8' });
    if (docs.status !== 0) throw new LifelineError('LL_CONFIG_INVALID', `the component was written, but docs/components.md was not regenerated: ${docs.stderr || docs.stdout}`);
    changed.push('docs/components.md');
  }
  return { names, created: [componentFile, testFile], changed };
}

/** Adds the import (after the last component import) and the entry (last in the list) to component-list.ts. */
export function registerComponent(list: string, constant: string, importPath: string): string {
  const lines = list.split('\n');
  const lastImport = lines.reduce((last, line, index) => (/^import .* from '\.\.\/\.\.\/(processors|connectors)\//.test(line) ? index : last), -1);
  const closing = lines.findIndex((line) => /^\s*\]\);\s*$/.test(line));
  if (lastImport < 0 || closing < 0) throw new LifelineError('LL_CONFIG_INVALID', `${COMPONENT_LIST} does not have the shape lifeline new expects (component imports, then new ComponentRegistry([ … ]))`);
  const indent = /^(\s*)\S/.exec(lines[closing - 1] ?? '')?.[1] ?? '    ';
  lines.splice(closing, 0, `${indent}${constant},`);
  lines.splice(lastImport + 1, 0, `import { ${constant} } from '${importPath}';`);
  return lines.join('\n');
}

export function describeScaffold(root: string, kind: ScaffoldKind, result: ScaffoldResult): string {
  const where = (file: string): string => relative(process.cwd(), join(root, file)) || file;
  return [
    `new ${kind} ${result.names.type}:`,
    ...result.created.map((file) => `  created ${where(file)}`),
    ...result.changed.map((file) => `  changed ${where(file)}`),
    '',
    'next:',
    `  node --import tsx --test ${where(result.created[1] as string)}   # passes as generated`,
    `  declare it in topology.yaml (type: ${result.names.type}), then: lifeline topology validate`,
  ].join('\n');
}
