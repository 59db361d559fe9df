import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { renderComponentDocs } from '../topology/component-docs.ts';
import { buildComponentRegistry } from './component-list.ts';

const COMPONENT_DOCS = 'docs/components.md';

/** `lifeline docs components [--write]`: the component reference, generated from the definitions. */
export function registerDocsCommands(program: Command): void {
  const docs = program.command('docs').description('generated reference documentation');

  docs.command('components')
    .description(`print the component reference, or write it to ${COMPONENT_DOCS} (run from the repository root)`)
    .option('--write', `write ${COMPONENT_DOCS} instead of printing`)
    .action((options: { write?: boolean }) => {
      const rendered = renderComponentDocs(buildComponentRegistry());
      if (!options.write) {
        process.stdout.write(rendered);
        return;
      }
      const unchanged = readIfExists(COMPONENT_DOCS) === rendered;
      if (!unchanged) writeFileSync(COMPONENT_DOCS, rendered);
      console.log(`${COMPONENT_DOCS} ${unchanged ? 'is up to date' : 'written'}`);
    });
}

function readIfExists(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
