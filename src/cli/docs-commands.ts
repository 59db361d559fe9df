import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { renderComponentDocs } from '../topology/component-docs.ts';
import { renderTopologyDocs, renderTopologyJsonSchema } from '../topology/topology-docs.ts';
import { renderCliDocs } from './cli-docs.ts';
import { buildComponentRegistry } from './component-list.ts';

/**
 * `lifeline docs components|topology|cli [--write]`: the reference documentation, generated from
 * what it documents (component definitions, the topology schema, the commands). Without --write it
 * prints; with it, it writes under docs/ (run from the repository root). Tests compare the files.
 */
export function registerDocsCommands(program: Command): void {
  const docs = program.command('docs').description('generated reference documentation');

  docs.command('components')
    .description('the component reference (docs/components.md), from the component definitions')
    .option('--write', 'write docs/components.md instead of printing')
    .action((options: { write?: boolean }) => {
      emit({ 'docs/components.md': renderComponentDocs(buildComponentRegistry()) }, options.write);
    });

  docs.command('topology')
    .description('the topology.yaml reference (docs/topology.md) and its JSON Schema for editors (docs/topology.schema.json)')
    .option('--write', 'write both files instead of printing the reference')
    .option('--schema', 'print the JSON Schema instead of the reference')
    .action((options: { write?: boolean; schema?: boolean }) => {
      const registry = buildComponentRegistry();
      const files = { 'docs/topology.md': renderTopologyDocs(registry), 'docs/topology.schema.json': renderTopologyJsonSchema(registry) };
      if (options.schema && !options.write) process.stdout.write(files['docs/topology.schema.json']);
      else emit(files, options.write);
    });

  docs.command('cli')
    .description('the CLI reference (docs/cli.md), from the commands themselves')
    .option('--write', 'write docs/cli.md instead of printing')
    .action((options: { write?: boolean }) => {
      emit({ 'docs/cli.md': renderCliDocs(program) }, options.write);
    });
}

/** Prints the first file, or writes every file that changed and says which. */
function emit(files: Readonly<Record<string, string>>, write: boolean | undefined): void {
  if (!write) {
    process.stdout.write(Object.values(files)[0] as string);
    return;
  }
  for (const [file, rendered] of Object.entries(files)) {
    const unchanged = readIfExists(file) === rendered;
    if (!unchanged) writeFileSync(file, rendered);
    console.log(`${file} ${unchanged ? 'is up to date' : 'written'}`);
  }
}

function readIfExists(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
